"""Open the stores a configuration names: events (SQLite/PostgreSQL), snapshots (directory/NATS)."""

from __future__ import annotations

from botyard.actors.bridge import NatsBridge
from botyard.events.store import EventStore
from botyard.ops.bus_auth import connect_options
from botyard.ops.config import Config
from botyard.snapshots.store import LocalSnapshotStore, SnapshotStore


def open_snapshots(config: Config, nats_url: str | None = None, *, bridge: NatsBridge | None = None) -> SnapshotStore:
    """The configured snapshot store; a NATS one runs on ``bridge`` (the node's), else on a
    connection of its own to ``nats_url``."""
    if config.snapshot_store == "nats":
        from botyard.snapshots.nats_store import NatsSnapshotStore

        if bridge is not None:
            return NatsSnapshotStore(bridge, bucket=config.snapshot_bucket)
        url = nats_url or config.nats_url
        if not url:
            from botyard.ops.errors import ConfigError

            raise ConfigError("BOTYARD_SNAPSHOT_STORE", "the nats snapshot store needs a NATS URL (BOTYARD_NATS_URL or a running node)")
        return nats_snapshots(url, bucket=config.snapshot_bucket, options=connect_options(config))
    return LocalSnapshotStore(config.snapshots_path)


def nats_snapshots(servers: str | list[str], *, bucket: str | None = None, options: dict | None = None):
    """A NATS object-store snapshot store with a connection (and loop thread) of its own."""
    from botyard.snapshots.nats_store import DEFAULT_BUCKET, NatsSnapshotStore

    bridge = NatsBridge(servers.split(",") if isinstance(servers, str) else list(servers), name="botyard-snapshots",
                        options=options)
    bridge.start()
    return NatsSnapshotStore(bridge, bucket=bucket or DEFAULT_BUCKET, on_close=bridge.stop)


def open_events(config: Config) -> EventStore:
    return EventStore(config.events_url, config.data_dir)


def close(store: object) -> None:
    closer = getattr(store, "close", None)
    if closer is not None:
        closer()
