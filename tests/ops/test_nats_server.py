"""The embedded nats-server never outlives its node, and never shares a store with another."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from botyard.ops.nats_server import EmbeddedNats, find_binary


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def wait_dead(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_node_killed_with_sigkill_takes_its_nats_server_with_it(tmp_path):
    script = (
        "import sys, time\n"
        "from botyard.ops.nats_server import EmbeddedNats\n"
        f"EmbeddedNats({str(tmp_path / 'nats')!r}).start()\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert parent.stdout.readline().strip() == b"up"
        pid = int((tmp_path / "nats" / "nats-server.pid").read_text())
        assert alive(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert wait_dead(pid), "the nats-server outlived the process that started it"
    finally:
        parent.kill()


def test_a_server_left_on_the_store_is_stopped_before_a_new_one_starts(tmp_path):
    store = tmp_path / "nats"
    store.mkdir()
    leftover = subprocess.Popen([find_binary(), "-a", "127.0.0.1", "-p", "-1", "-js", "-sd", str(store)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        (store / "nats-server.pid").write_text(f"{leftover.pid}\n")
        time.sleep(0.3)
        with EmbeddedNats(store) as server:
            assert leftover.wait(10) is not None  # stopped (and reaped here, its parent)
            assert server.url.startswith("nats://")
        assert not (store / "nats-server.pid").exists()
    finally:
        if leftover.poll() is None:
            os.kill(leftover.pid, signal.SIGKILL)
