"""Who may do what on the bus: the embedded nats-server's users, each an nkey with NATS's own
subject permissions.

Why per-user permissions in one account (and not accounts with exports and imports, nor
auth callout): every tenant subject already carries the tenant as a token
(``botyard.turn.<tenant>.<bot>``, ``botyard.admin.<tenant>.<verb>``, ...), so one allow list
per tenant expresses the wall; the nodes keep one connection that serves every tenant (no
per-account imports to keep in step with tenants coming and going); and a credential is an
nkey whose public key alone is written into the server's configuration, so nothing secret is
stored, and issuing or revoking one is a config reload (the server applies new permissions
to connected clients and disconnects users it no longer knows). docs/security.md has the
permissions and the operator/JWT setup for an existing NATS deployment.

Three kinds of user: ``node`` (everything: the nodes' internal subjects, heartbeats, alias
notifications, forwarding and the queue group are theirs alone), ``operator`` (every
tenant's turns, admin and streams; nothing internal), and one per tenant credential (its
own subjects, its own inbox prefix ``_INBOX_<tenant>``, and answers to requests it receives).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping

import nkeys

from botyard import protocol
from botyard.ops.turn_stream import tenant_stream

OPERATOR_INBOX = "_INBOX__operator"
"""The operator's inbox prefix (a tenant name cannot start with ``_``, so no tenant's inbox
``_INBOX_<tenant>`` can be this)."""


def tenant_inbox(tenant: str) -> str:
    """The inbox prefix a tenant's client must use (nats-py ``inbox_prefix``, nats.go
    ``CustomInboxPrefix``): replies to its requests come there, and only it may read them."""
    return f"_INBOX_{tenant}"


def new_seed() -> tuple[str, str]:
    """A new user nkey: (seed ``SU...``, the secret; public key ``U...``)."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode(), nkeys.from_seed(seed).public_key.decode()


def public_key(seed: str) -> str:
    return nkeys.from_seed(seed.encode()).public_key.decode()


def tenant_permissions(tenant: str) -> dict:
    t, stream = tenant, tenant_stream(tenant)
    return {
        "publish": {"allow": [
            f"{protocol.TURN_PREFIX}.{t}.*", f"{protocol.ADMIN_PREFIX}.{t}.*", f"{protocol.AGENT_PREFIX}.{t}.*",
            f"{protocol.MESSAGE_PREFIX}.{t}.*",
            # its turn stream: read-only use of its own stream, consumers of its own
            "$JS.API.INFO", f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>",
            f"$JS.API.CONSUMER.CREATE.{stream}", f"$JS.API.CONSUMER.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.*", f"$JS.API.CONSUMER.INFO.{stream}.*",
            f"$JS.API.CONSUMER.DELETE.{stream}.*", f"$JS.API.CONSUMER.MSG.NEXT.{stream}.*", f"$JS.API.CONSUMER.NAMES.{stream}",
            f"$JS.API.CONSUMER.LIST.{stream}", f"$JS.ACK.{stream}.>", f"$JS.FC.{stream}.>",
        ]},
        "subscribe": {"allow": [
            f"{tenant_inbox(t)}.>", f"{protocol.OUT_PREFIX}.{t}.>", f"{protocol.HANDOFF_PREFIX}.{t}.*",
            f"{ACTION_PREFIX}.{t}.>", f"{STREAM_PREFIX}.{t}.>",
        ]},
        "allow_responses": True,
    }


ACTION_PREFIX = "botyard.action"
STREAM_PREFIX = "botyard.stream"

OPERATOR_PERMISSIONS = {
    "publish": {"allow": [f"{protocol.TURN_PREFIX}.>", f"{protocol.ADMIN_PREFIX}.>", f"{protocol.AGENT_PREFIX}.>",
                          f"{protocol.MESSAGE_PREFIX}.>", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>",
                          # alias notifications are nudges to read the event log (a CLI's promote sends one)
                          f"{protocol.ALIAS_PREFIX}.>"]},
    "subscribe": {"allow": [f"{OPERATOR_INBOX}.>", f"{protocol.OUT_PREFIX}.>", f"{protocol.HANDOFF_PREFIX}.>",
                            f"{STREAM_PREFIX}.>"]},
    "allow_responses": True,
}
NODE_PERMISSIONS = None
"""The nodes may do everything: no permissions block at all, so the server checks nothing on
their messages (an allow list of ``>`` is still matched against every reply subject, each a
new inbox, on every reply)."""


def users(node_key: str, operator_key: str, tenant_keys: Mapping[str, Iterable[str]]) -> list[dict]:
    """The server's users: the node's and the operator's keys, and each tenant's keys."""
    out = [{"nkey": node_key}, {"nkey": operator_key, "permissions": OPERATOR_PERMISSIONS}]
    for tenant in sorted(tenant_keys):
        out += [{"nkey": key, "permissions": tenant_permissions(tenant)} for key in sorted(tenant_keys[tenant])]
    return out


class BusAuth:
    """The embedded server's authorization files in ``directory`` (the node's ``nats/``):
    ``auth.conf`` (given to the server with ``-c``), ``users.conf`` (rewritten when the keys
    change), and the node's and operator's seeds (``node.nk``, ``operator.nk``, mode 0600)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.node_seed = self._seed("node.nk")
        self.operator_seed = self._seed("operator.nk")
        self.config_file = self.directory / "auth.conf"
        self.users_file = self.directory / "users.conf"
        self.config_file.write_text('authorization {\n  include "users.conf"\n}\n')
        if not self.users_file.exists():
            self.write({})

    @property
    def operator_seed_file(self) -> Path:
        return self.directory / "operator.nk"

    def _seed(self, name: str) -> str:
        path = self.directory / name
        if path.exists():
            return path.read_text().strip()
        seed, _ = new_seed()
        write_secret(path, seed + "\n")
        return seed

    def write(self, tenant_keys: Mapping[str, Iterable[str]]) -> bool:
        """Write the users for these tenant keys; True when the file changed (reload the server)."""
        text = "users = " + json.dumps(users(public_key(self.node_seed), public_key(self.operator_seed), tenant_keys), indent=1) + "\n"
        if self.users_file.exists() and self.users_file.read_text() == text:
            return False
        tmp = self.users_file.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.users_file)
        return True


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class TenantKeys:
    """The tenants' NATS keys in force, from the event log (``Tenant.NatsKeyIssued`` and
    ``NatsKeyRevoked``), read incrementally: :meth:`update` reads what was recorded since."""

    TOPICS = ("botyard:Tenant.NatsKeyIssued", "botyard:Tenant.NatsKeyRevoked")

    def __init__(self) -> None:
        self.by_tenant: dict[str, set[str]] = {}
        self.position = 0

    def update(self, store) -> bool:
        """Read the key events recorded since the last call; True if any."""
        from botyard.events.tenant import Tenant
        from botyard.events.turns import notifications

        changed = False
        for n in notifications(store, self.TOPICS, self.position, None):
            e = store.mapper.to_domain_event(n)
            keys = self.by_tenant.setdefault(e.tenant, set())
            if isinstance(e, Tenant.NatsKeyIssued):
                keys.add(e.public_key)
            else:
                keys.discard(e.public_key)
            self.position, changed = n.id, True
        return changed


def connect_options(config, *, role: str = "operator") -> dict:
    """What a botyard process passes to ``nats.connect``: an nkey (``BOTYARD_NATS_SEED_FILE``,
    else, for the embedded server with authorization on, the data directory's own key of
    ``role``: ``node`` or ``operator``) and its inbox prefix."""
    options: dict = {}
    seed_file = Path(config.nats_seed_file) if config.nats_seed_file else None
    inbox = config.nats_inbox_prefix
    if seed_file is None and not config.nats_url and config.nats_auth:
        candidate = Path(config.data_dir) / "nats" / f"{role}.nk"
        if candidate.exists():
            seed_file = candidate
            inbox = inbox or (OPERATOR_INBOX if role == "operator" else "")
    if seed_file is not None:
        options["nkeys_seed_str"] = seed_file.read_text().strip()
    if inbox:
        options["inbox_prefix"] = inbox
    return options


def issue_credentials(events, tenant: str, name: str, out: Path, actor: str) -> tuple[str, str]:
    """Record a new admin HTTP API token and NATS key of ``tenant`` named ``name``; write the
    key's seed to ``out`` (mode 0600). Returns (the HTTP token, the NATS public key): neither
    secret is stored anywhere else."""
    from botyard.events.tenant import digest, new_token

    token = new_token(tenant)
    seed, key = new_seed()

    def issue(t) -> None:
        t.issue(digest(token), name, actor)
        t.issue_nats_key(tenant, key, name, actor)

    events.change_tenant(tenant, issue)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_secret(out, seed + "\n")
    return token, key
