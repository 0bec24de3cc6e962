"""One process per arm: a second opener of a held serial port is refused at
once, naming the holder, through a symlink too, and a dead holder's lock is
taken over. Real ptys, real ``hil`` processes, the real emulator."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from bus.endpoints import Endpoints
from tests.conftest import wait_robot
from tools.bench.rig import start_emulator
from hw_node.emulator import Pty
from hw_node.link import LinkConfig, SerialLink, open_port
from hw_node.port_lock import LOCK_DIR_ENV, PortBusyError, PortLock, device_id
from tests.conftest import HIL, Procs, wait_until

# Refused "at once": within this much beyond what starting `hil` itself takes
# (the command's --help, timed just before: on a loaded 2-core machine Python's
# start-up alone can pass a second, and a refused run still writes its report,
# seen at 1.1 s more under CI's load). Any wait for the port or a node (retries,
# start-up timeouts of seconds) would pass it; that nothing was started at all
# is checked on the run's report.
REFUSAL_S = 3.0


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lock folder of this test alone (child processes get it through the environment)."""
    folder = tmp_path / "locks"
    monkeypatch.setenv(LOCK_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def pty() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.close()


def test_a_symlink_and_its_target_are_one_device(pty: Pty, tmp_path: Path) -> None:
    link = tmp_path / "by-id-usb-roarm"
    link.symlink_to(pty.path)
    first, second = device_id(pty.path), device_id(str(link))
    assert first is not None and first == second and first.key.startswith("char-")
    assert device_id("loop://") is None and device_id("socket://localhost:7000") is None


def test_second_link_is_refused_naming_the_holder_and_the_lock_goes_with_close(
        pty: Pty, tmp_path: Path, lock_dir: Path) -> None:
    link = tmp_path / "arm"
    link.symlink_to(pty.path)
    holder = SerialLink(LinkConfig(pty.path))
    holder.open()
    try:
        record = json.loads(next(lock_dir.glob("*.lock")).read_text())
        assert record["pid"] == os.getpid() and record["device"] == os.path.realpath(pty.path)
        for path in (pty.path, str(link)):
            with pytest.raises(PortBusyError, match=rf"in use by pid {os.getpid()} "):
                SerialLink(LinkConfig(path)).open()
    finally:
        holder.close()
    assert not list(lock_dir.glob("*.lock"))
    again = SerialLink(LinkConfig(str(link)))
    again.open()
    again.close()


def test_a_dead_holders_lock_is_taken_over(pty: Pty, lock_dir: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    device = device_id(pty.path)
    assert device is not None
    lock_dir.mkdir()
    stale = lock_dir / f"{device.key}.lock"
    stale.write_text(json.dumps({"pid": dead.pid, "command": "hil node hw --port x", "since": 0.0,
                                 "port": pty.path, "device": device.path}))
    lock = PortLock.acquire(pty.path)
    assert lock is not None
    assert json.loads(stale.read_text())["pid"] == os.getpid()
    lock.release()
    assert not stale.exists()


def test_pyserial_exclusive_refuses_a_second_plain_open(pty: Pty) -> None:
    """The second barrier, for programs that ignore the lock file: an flock on the device."""
    port = open_port(pty.path, 115200)
    try:
        with pytest.raises(PortBusyError, match="fuser"):
            open_port(pty.path, 115200)
    finally:
        port.close()
    open_port(pty.path, 115200).close()


def _refused(argv: list[str], holder_pid: int) -> str:
    """Run a second opener; it must exit 2 within REFUSAL_S of its command's own start-up (the same
    command's --help, which loads what it loads), name the holder, no traceback."""
    started = time.monotonic()
    subprocess.run([*argv[:2 if argv[1] == "run" else 3], "--help"], capture_output=True, check=True, timeout=60)
    startup = time.monotonic() - started
    started = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    text = out.stdout + out.stderr
    assert out.returncode == 2, text
    assert f"pid {holder_pid}" in text and "in use" in text, text
    assert "Traceback" not in text
    assert elapsed < startup + REFUSAL_S, f"refused only after {elapsed:.2f} s (start-up {startup:.2f} s): {text}"
    return text


@pytest.mark.hil
def test_second_hw_node_and_hw_run_are_refused_at_once(procs: Procs, run_dir: Path, tmp_path: Path,
                                                       lock_dir: Path, zctx: zmq.Context) -> None:
    arm, control = run_dir / "arm", run_dir / "ctl"
    start_emulator(procs, arm, control=control)
    by_id = tmp_path / "usb-Silicon_Labs_CP2102-if00-port0"
    by_id.symlink_to(arm)
    first = procs.hil("node", "hw", "--port", str(arm), "--run-dir", str(run_dir))
    client = wait_robot(zctx, Endpoints.for_run(run_dir), 30.0)
    other = tmp_path / "run2"
    other.mkdir()
    for port in (str(arm), str(by_id)):
        _refused([HIL, "node", "hw", "--port", port, "--run-dir", str(other)], first.pid)
    # the same run folder: the port is what is refused, before any socket
    _refused([HIL, "node", "hw", "--port", str(by_id), "--run-dir", str(run_dir)], first.pid)
    text = _refused([HIL, "run", "scenarios/smoke.yaml", "--target", "hw", "--port", str(by_id),
                     "--out", str(tmp_path / "out")], first.pid)
    assert "BROKEN" in text
    assert json.loads((tmp_path / "out" / "report.json").read_text())["nodes"] == {}  # refused before starting any

    # Unplugged and replugged (a new pty behind the link, maybe another number):
    # the first node still holds the device the link names.
    with open(control, "w") as fifo:
        fifo.write("unplug 1\n")
    assert wait_until(lambda: not arm.exists(), 10), "the emulator did not unplug"

    def relocked() -> bool:
        try:
            now = device_id(str(arm))
        except OSError:
            return False  # still unplugged
        lock = lock_dir / f"{now.key}.lock" if now is not None else None
        return lock is not None and lock.exists() and json.loads(lock.read_text() or "{}").get("pid") == first.pid
    assert wait_until(relocked, 30), "the node did not hold the replugged pty"
    assert len(list(lock_dir.glob("*.lock"))) == 1
    _refused([HIL, "node", "hw", "--port", str(by_id), "--run-dir", str(other)], first.pid)

    # Once the holder stops, the port is free again.
    first.terminate()
    assert first.wait(timeout=30) == 0
    assert not list(lock_dir.glob("*.lock"))
    second = procs.hil("node", "hw", "--port", str(by_id), "--run-dir", str(other))
    wait_robot(zctx, Endpoints.for_run(other), 30.0).close()
    assert second.poll() is None
    client.close()

