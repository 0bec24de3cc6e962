"""A robot that already runs elsewhere: the common bench, arm and ``hil node hw``
on a small PC beside it, the policy and the runner on a workstation.

The runner then starts no robot. It reads the bench's endpoints description
(``hil run --endpoints FILE``, or ``robot.endpoints`` in the scenario), binds
its own and the policy's sockets where that description says, connects to
the robot's, checks that it answers and what it is (``info``), resets it,
runs, and leaves it running: it never asks a remote robot to shut down.

Nothing here starts a process; the runner (scenarios/runner.py) calls these.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bus.endpoints import EndpointError, Endpoints
from bus.errors import HilError
from bus.client import WrongReply
from bus.processes import NotReady, wait_ready
from bus.service import ServiceError, ServiceUnavailable
from bus.security import SecurityConfig
from roarm.robot_client import RobotClient
from scenarios.schema import Scenario
from schemas import services_pb2


# Pings to measure the remote robot's clock; the one with the shortest round trip counts.
CLOCK_PINGS = 5


class RemoteRobotError(HilError, RuntimeError):
    """The remote robot cannot be used: no address for it, it does not answer, or it is not what was asked (exit 2)."""


def bench_endpoints(scenario: Scenario, endpoints_file: Path | None,
                    security: Callable[[SecurityConfig], SecurityConfig] = lambda s: s) -> Endpoints | None:
    """The run's endpoints when they come from a file (the command line's
    wins over the scenario's ``robot.endpoints``), with ``security`` applied
    to the file's "security" field (the command line's ``--keys``); None for
    a run on its own ipc run folder."""
    path = endpoints_file or scenario.robot.endpoints
    if path is None:
        if scenario.robot.remote:
            raise RemoteRobotError(
                f"{scenario.path}: robot.remote is true, but nothing says where the robot is: give the bench's "
                "endpoints description with --endpoints FILE (or robot.endpoints in the scenario)")
        return None
    try:
        endpoints = Endpoints.load(path)
        for role in ("robot", "policy", "runner"):
            endpoints[role]  # noqa: B018  # each must be described: raises EndpointError naming it
    except EndpointError as exc:
        raise RemoteRobotError(str(exc)) from None
    return endpoints.with_security(security(endpoints.security))


def wait_for_robot(client: RobotClient, timeout_s: float, keep_going: Callable[[], bool]) -> None:
    """Until the remote robot answers ping; RemoteRobotError says what to check when it does not."""
    try:
        wait_ready(client.answers_ping, timeout_s, what="the remote robot", keep_going=keep_going)
    except NotReady as exc:
        if "interrupted" in str(exc):
            raise
        raise RemoteRobotError(
            f"the remote robot at {client.endpoint} did not answer ping within {timeout_s:g} s. Is "
            "`hil node hw` (or `hil node sim`) running on that machine with the same endpoints description, "
            "does the firewall there let its ports through, and do both machines use keys of one set "
            "(`hil keys generate`, public/ copied to both; --keys)?") from None


def identify(info: services_pb2.NodeInfo, requested_target: str | None) -> str:
    """The target the remote robot is (its ``info.backend``: hw, mock, mujoco,
    isaac); RemoteRobotError when ``--target`` asked for another."""
    backend = info.backend or "?"
    if requested_target is not None and requested_target != backend:
        raise RemoteRobotError(f"--target {requested_target} was asked, but the remote robot is {backend!r} "
                               f"({info.node or 'robot'}, mode {info.mode or '?'})")
    return backend



@dataclass(frozen=True)
class ClockOffset:
    """The remote robot's monotonic clock minus ours, within +- ``uncertainty_ns``."""

    offset_ns: int
    uncertainty_ns: int

    def as_dict(self) -> dict[str, float]:
        return {"offset_ms": self.offset_ns / 1e6, "uncertainty_ms": self.uncertainty_ns / 1e6}


def clock_offset(client: RobotClient, pings: int = CLOCK_PINGS) -> ClockOffset:
    """How far the robot's monotonic clock is from ours, as NTP does it: a
    ping's reply stamp against the middle of its round trip, from the ping
    with the shortest round trip (uncertain by half of it).

    The loop latency needs it: the robot stamps states on its machine's clock,
    the policy (on ours) stamps the commands answering them.
    """
    best: ClockOffset | None = None
    for _ in range(pings):
        sent = time.monotonic_ns()
        try:
            reply = client.ping(timeout_s=2.0, retries=1)
        except (ServiceUnavailable, ServiceError, WrongReply) as exc:
            raise RemoteRobotError(f"the remote robot stopped answering ping: {exc}") from None
        back = time.monotonic_ns()
        if reply.stamp_ns <= 0:
            continue
        measured = ClockOffset(reply.stamp_ns - (sent + back) // 2, (back - sent) // 2)
        if best is None or measured.uncertainty_ns < best.uncertainty_ns:
            best = measured
    if best is None:
        raise RemoteRobotError("the remote robot's ping replies carry no clock stamp (an older node?)")
    return best
