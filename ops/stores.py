"""Open the stores a configuration names: events (SQLite/PostgreSQL), snapshots (directory/NATS)."""

from __future__ import annotations

from botyard.events.store import EventStore
from botyard.ops.config import Config
from botyard.snapshots.store import LocalSnapshotStore, SnapshotStore


def open_snapshots(config: Config, nats_url: str | None = None) -> SnapshotStore:
    if config.snapshot_store == "nats":
        from botyard.snapshots.nats_store import NatsSnapshotStore

        url = nats_url or config.nats_url
        if not url:
            from botyard.ops.errors import ConfigError

            raise ConfigError("BOTYARD_SNAPSHOT_STORE", "the nats snapshot store needs a NATS URL (BOTYARD_NATS_URL or a running node)")
        return NatsSnapshotStore(url.split(","), bucket=config.snapshot_bucket)
    return LocalSnapshotStore(config.snapshots_path)


def open_events(config: Config) -> EventStore:
    return EventStore(config.events_url, config.data_dir)


def close(store: object) -> None:
    closer = getattr(store, "close", None)
    if closer is not None:
        closer()
