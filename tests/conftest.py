"""Shared fixtures: short run folders and real node processes that are always reaped."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from bus.client import NodeClient
from bus.endpoints import Endpoints
from bus import processes
from bus.processes import Child, Processes
from roarm.robot_client import RobotClient

ROOT = Path(__file__).resolve().parent.parent
HIL = str(Path(sys.executable).with_name("hil"))


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A short folder for ipc sockets (paths must stay under 107 bytes).

    Removed with ignore_errors: a node process that the ``procs`` fixture is
    still stopping may write a last file into it.
    """
    path = Path(tempfile.mkdtemp(prefix="hil-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def endpoints(run_dir: Path) -> Endpoints:
    return Endpoints.for_run(run_dir)


@pytest.fixture
def zctx() -> Iterator[zmq.Context]:
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


class Procs(Processes):
    """The process harness, run from the repository root, with output in pipes by default."""

    def __init__(self) -> None:
        super().__init__(cwd=ROOT)

    def run(self, *args: str, **popen: object) -> Child:
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        return self.start(" ".join(Path(a).name for a in args[:3])[:60], args, **popen)  # type: ignore[arg-type]

    def hil(self, *args: str, **popen: object) -> Child:
        return self.run(HIL, *args, **popen)

    def python(self, *args: str, **popen: object) -> Child:
        return self.run(sys.executable, *args, **popen)

    def close(self) -> None:
        self.stop(term_s=5.0)


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    yield p
    p.close()


def wait_ready(ctx: zmq.Context, endpoints: Endpoints, role: str, timeout_s: float = 20.0) -> NodeClient:
    """A client for ``role`` once its node answers ping."""
    client = NodeClient(ctx, endpoints[role].rep, "test", timeout_s=5.0, retries=2)
    processes.wait_ready(client.answers_ping, timeout_s, what=role)
    return client


def wait_robot(ctx: zmq.Context, endpoints: Endpoints, timeout_s: float = 20.0) -> RobotClient:
    """A client of the robot's services once it answers ping."""
    client = RobotClient(ctx, endpoints["robot"].rep, "test", timeout_s=5.0, retries=2)
    processes.wait_ready(client.answers_ping, timeout_s, what="robot")
    return client


def wait_until(condition: Callable[[], object], timeout_s: float = 30.0, period_s: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes: a loaded
    2-core machine makes any fixed sleep either too short or too slow."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period_s)
    return bool(condition())


def poll_until(condition: Callable[[], object], what: str, timeout_s: float = 30.0) -> object:
    """The first truthy value of ``condition``, or an assertion naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# -- hardware-in-the-loop tests (marker ``hil``) ------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--roarm-port",
        default=None,
        metavar="PORT",
        help="run the hil-marked tests against a real RoArm-M3 on PORT (any pyserial URL) "
        "instead of the firmware emulator",
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    """Say which arm the hil tests ran against, so an emulator run never passes for a real one."""
    outcomes: dict[str, int] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if "hil" in getattr(report, "keywords", {}) and (report.when == "call" or outcome != "passed"):
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if not outcomes:
        return
    port = config.getoption("--roarm-port")
    target = f"a REAL RoArm-M3 on {port}" if port else "the firmware emulator (no --roarm-port given)"
    counts = ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items())
    terminalreporter.write_sep("-", f"hil tests ran against {target}: {counts}")
