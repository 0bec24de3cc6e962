"""Shared fixtures: short run folders and real node processes that are always reaped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from bus.endpoints import Endpoints
from bus.service import ServiceClient, wait_for
from schemas import services_pb2
from scenarios.supervisor import stop_groups

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


class Procs:
    """Starts processes in their own process groups and kills what is left."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}  # type: ignore[dict-item]
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(list(args), env=env, cwd=ROOT, start_new_session=True, **kwargs)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def hil(self, *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
        return self.start(HIL, *args, **kwargs)

    def python(self, *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
        return self.start(sys.executable, *args, **kwargs)

    def close(self) -> None:
        stop_groups(self.procs, term_s=5.0)


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    yield p
    p.close()


def wait_ready(ctx: zmq.Context, endpoints: Endpoints, role: str, timeout_s: float = 20.0) -> ServiceClient:
    """A client for ``role`` once its node answers ping."""
    client = ServiceClient(ctx, endpoints[role].rep, "test", timeout_s=5.0, retries=2)
    wait_for(client, timeout_s)
    return client


def info(client: ServiceClient) -> services_pb2.NodeInfo:
    reply = client.call("info", services_pb2.InfoRequest())
    assert isinstance(reply, services_pb2.NodeInfo)
    return reply


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
