"""The Tenant aggregate: the API tokens and NATS keys of one tenant.

Only a token's SHA-256 digest is recorded (``TokenIssued``), never the token; a revoked
token (``TokenRevoked``) stops working on every node at its next look. A token reads
``byt_<tenant>_<secret>``, so the tenant to check it against is in the token itself.

A NATS credential is an nkey pair: only its public key is recorded (``NatsKeyIssued``), and
the node that runs the embedded nats-server writes it into the server's users with the
tenant's permissions (:mod:`botyard.ops.bus_auth`); ``NatsKeyRevoked`` removes it.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

TOKEN_PREFIX = "byt_"


def tenant_uuid(tenant: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"botyard:tenant:{tenant}")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(tenant: str) -> str:
    return f"{TOKEN_PREFIX}{tenant}_{secrets.token_hex(24)}"  # hex: no "_" in the secret


def token_tenant(token: str) -> str | None:
    """The tenant a token names (not yet checked), or None for a string that is no token."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    tenant, sep, secret = token[len(TOKEN_PREFIX) :].rpartition("_")
    return tenant if sep and tenant and len(secret) >= 16 else None


class Tenant(Aggregate):
    TOPIC = "botyard:Tenant"

    class Created(Aggregate.Created):
        """Never recorded (``Registered`` is the first event); named because with explicit topics the
        library wants a topic on every event class of the aggregate, this inherited one too."""

        TOPIC = "botyard:Tenant.Created"

    class Registered(Aggregate.Created):
        """The tenant's first event (stable name: ``Tenant.Registered`` v1)."""

        TOPIC = "botyard:Tenant.Registered"
        class_version = 1
        tenant: str

    class TokenIssued(Aggregate.Event):
        """A token was issued (stable name: ``Tenant.TokenIssued`` v1); ``digest`` is its SHA-256."""

        TOPIC = "botyard:Tenant.TokenIssued"
        class_version = 1
        digest: str
        name: str
        actor: str

    class TokenRevoked(Aggregate.Event):
        """A token stops working (stable name: ``Tenant.TokenRevoked`` v1)."""

        TOPIC = "botyard:Tenant.TokenRevoked"
        class_version = 1
        digest: str
        actor: str

    class NatsKeyIssued(Aggregate.Event):
        """A NATS credential was issued (stable name: ``Tenant.NatsKeyIssued`` v1): its nkey's
        public key (``U...``; the seed is given to the tenant, never recorded)."""

        TOPIC = "botyard:Tenant.NatsKeyIssued"
        class_version = 1
        tenant: str
        public_key: str
        name: str
        actor: str

    class NatsKeyRevoked(Aggregate.Event):
        """A NATS credential stops working (stable name: ``Tenant.NatsKeyRevoked`` v1)."""

        TOPIC = "botyard:Tenant.NatsKeyRevoked"
        class_version = 1
        tenant: str
        public_key: str
        actor: str

    @staticmethod
    def create_id(tenant: str) -> UUID:
        return tenant_uuid(tenant)

    @event(Registered)
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.tokens: dict[str, dict[str, Any]] = {}

    @event(TokenIssued)
    def issue(self, digest: str, name: str, actor: str) -> None:
        self.tokens[digest] = {"name": name, "actor": actor}

    @event(TokenRevoked)
    def revoke(self, digest: str, actor: str) -> None:
        self.tokens.pop(digest, None)

    @event(NatsKeyIssued)
    def issue_nats_key(self, tenant: str, public_key: str, name: str, actor: str) -> None:
        self.nats_keys()[public_key] = {"name": name, "actor": actor}

    @event(NatsKeyRevoked)
    def revoke_nats_key(self, tenant: str, public_key: str, actor: str) -> None:
        self.nats_keys().pop(public_key, None)

    def nats_keys(self) -> dict[str, dict[str, Any]]:
        """Public key -> {name, actor} of the NATS credentials in force (a tenant recorded
        before they existed, or read from an old aggregate snapshot, has none yet)."""
        keys = self.__dict__.get("_nats_keys")
        if keys is None:
            keys = self.__dict__["_nats_keys"] = {}
        return keys

    def accepts(self, token: str) -> bool:
        return digest(token) in self.tokens
