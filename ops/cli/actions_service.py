"""The processes ``botyard demo`` runs beside its node: the example bot's action service
(docs/actions.md), started with the tenant's NATS credential the demo makes when the embedded
server's authorization is on (docs/security.md)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from pathlib import Path

from botyard.errors import BotyardError
from botyard.ops.bus_auth import issue_credentials, tenant_inbox
from botyard.ops.config import Config

EXAMPLE_BOT = Path(__file__).resolve().parents[2] / "examples" / "shop-support.yml"
EXAMPLE_ACTIONS = EXAMPLE_BOT.with_name("shop_actions.py")
"""The example bot's action service, which ``botyard demo`` runs beside its node."""
ACTIONS_LOG = "actions.log"
"""The log of the action service ``botyard demo`` runs, in the data directory."""


def demo_credentials(admin, config: Config, tenant: str) -> Path | None:
    """With the embedded server's authorization on: the demo tenant's NATS credential (made
    once, ``<data_dir>/creds/<tenant>-demo.nk``), used by the chat and the action service."""
    if config.nats_url or not config.nats_auth:
        return None
    creds = config.data_dir / "creds" / f"{tenant}-demo.nk"
    record = admin.events.tenant(tenant)
    known = record is not None and any(v["name"] == "demo" for v in record.nats_keys().values())
    if creds.exists() and known:
        print(f"NATS authorization on: tenant {tenant}'s credential {creds} (inbox {tenant_inbox(tenant)})")
        return creds
    token, key = issue_credentials(admin.events, tenant, "demo", creds, "botyard demo")
    print(f"NATS authorization on: made tenant {tenant}'s credential {creds} ({key}; inbox {tenant_inbox(tenant)}) "
          f"and HTTP API token {token}; operator key: {config.data_dir / 'nats' / 'operator.nk'}")
    return creds


def demo_actions(args: argparse.Namespace) -> Path | None:
    """The action service to run: ``--actions PATH``; else the example's for the example bot; none with ``--no-actions``."""
    if args.no_actions:
        return None
    if args.actions:
        path = Path(args.actions)
        if not path.is_file():
            raise BotyardError(f"--actions {path}: no such file")
        return path
    return EXAMPLE_ACTIONS if Path(args.bot_file).resolve() == EXAMPLE_BOT.resolve() else None


def start_actions(path: Path, nats_url: str, definition, log_path: Path, *, wait: float = 10.0,
                   creds: Path | None = None) -> subprocess.Popen:
    """``python PATH --nats URL --tenant T --bot B``, its output into ``log_path``; the chat
    starts once it has written its first line to stdout (it is serving), or after ``wait`` s."""
    command = [sys.executable, str(path), "--nats", nats_url, "--tenant", definition.tenant, "--bot", definition.bot]
    if creds is not None:
        command += ["--creds", str(creds)]
    log = open(log_path, "ab")
    service = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
    ready = threading.Event()

    def copy() -> None:  # stdout into the log, line by line, until the service ends
        with log:
            for line in service.stdout:  # type: ignore[union-attr]
                log.write(line)
                log.flush()
                ready.set()
        ready.set()

    threading.Thread(target=copy, name="actions-log", daemon=True).start()
    ready.wait(wait)
    if service.poll() is None:
        print(f"actions: {path.name} serves {definition.tenant}/{definition.bot} (pid {service.pid}, log {log_path})")
    else:
        print(f"actions: {path.name} exited at once (exit {service.returncode}); its log: {log_path}", file=sys.stderr)
    return service


def stop_actions(service: subprocess.Popen, log_path: Path) -> None:
    if service.poll() is not None:
        if service.returncode:
            print(f"actions: the service had stopped (exit {service.returncode}); its log: {log_path}", file=sys.stderr)
        return
    service.terminate()
    try:
        service.wait(timeout=10)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait()
