"""One goal for nodes started by hand (``hil goal send``): publish it as the
runner would, re-sent until the robot's states show it reached or its time
is up, and say how close the arm came.

It stands in for the runner (binds the runner's PUB and REP, so it refuses
to run beside ``hil run`` in the same run folder), checks that a robot and a
policy are there before it sends anything, and judges the goal exactly as a
scenario does (scenarios/goals.py: on the robot's clock, TCP by the state's
``tcp``, joints by the largest joint error).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from bus.endpoints import Endpoints
from bus.errors import HilError
from bus.node import Node
from bus.reach import explain, probe, why_silent
from bus.service import ServiceClient, ServiceError, ServiceUnavailable
from bus.topics import JOINT_STATE, QueuePolicy
from schemas import messages_pb2, services_pb2
from scenarios.goals import GoalPublisher, GoalResult, GoalSequence
from scenarios.schema import GoalSpec

# How long to wait for the robot's first state before giving up.
FIRST_STATE_S = 5.0
# Wall-clock slack over the goal's own timeout (start-up, a slow machine).
WALL_SLACK_S = 5.0


class HandGoalError(HilError, RuntimeError):
    """No robot, no policy, or no states: nothing could act on the goal (exit 2)."""

    exit_code = 2


@dataclass
class HandGoalOutcome:
    goal: GoalSpec
    result: GoalResult
    tcp: tuple[float, ...]  # the last measured TCP (m), empty when the robot sends none
    tcp_distance: float  # metres from a Cartesian target (nan for a joint goal)
    states: int
    goal_sends: int

    @property
    def reached(self) -> bool:
        return self.result.reached

    def text(self) -> str:
        """One line for people."""
        r, g = self.result, self.goal
        if g.kind == "tcp":
            target = "tcp " + " ".join(f"{v:.4f}" for v in g.target) + " m"
            close = f"{self.tcp_distance * 1e3:.1f} mm from it"
            bound = f"tolerance {g.tolerance * 1e3:g} mm"
        else:
            target = "joints " + " ".join(f"{v:.3f}" for v in g.target) + " rad"
            close = f"largest joint error {r.error:.4f} rad"
            bound = f"tolerance {g.tolerance:g} rad"
        where = (" (tcp now " + " ".join(f"{v:.4f}" for v in self.tcp) + ")") if self.tcp else ""
        if r.reached:
            return f"goal {g.id} ({target}): reached in {r.time_s:.2f} s, {close}{where}, {bound}"
        note = f"; {r.note}" if r.note else ""
        digits = 1 if g.kind == "tcp" else 4
        best = f", best {r.shown(r.best_error):.{digits}f} {r.unit}" if math.isfinite(r.best_error) else ""
        return (f"goal {g.id} ({target}): NOT reached within {g.timeout_s:g} s: {close}{best}{where}, "
                f"{bound}{note}")


def send_goal(endpoints: Endpoints, goal: GoalSpec) -> HandGoalOutcome:
    """Publish ``goal`` to the hand-started nodes of ``endpoints`` and judge it.

    Raises HandGoalError when there is no robot, no policy or no state, and
    zmq.ZMQError when the runner's endpoints are taken (a ``hil run`` there).
    """
    node = Node("runner", "hil-goal", endpoints, announce=False)
    try:
        _check_peers(node, endpoints)
        states = node.subscribe("robot", [JOINT_STATE], policy=QueuePolicy.QUEUE)
        publisher = GoalPublisher(node.publish)
        publisher.send(goal, 1)
        sequence = GoalSequence((goal,))
        started = time.monotonic()
        wall_deadline = started + goal.timeout_s + goal.hold_s + WALL_SLACK_S
        last: messages_pb2.JointState | None = None
        count = 0
        while node.running and not sequence.done:
            node.spin(20)
            for envelope in states.drain():
                state = envelope.message
                assert isinstance(state, messages_pb2.JointState)
                last, count = state, count + 1
                sequence.observe(state, np.asarray(state.position))
            now = time.monotonic()
            if last is None and now - started > FIRST_STATE_S:
                raise HandGoalError(
                    f"the robot at {endpoints['robot'].pub} published no joint state in {FIRST_STATE_S:g} s "
                    "(a lockstep robot waits for a reset: start `hil node sim` with --mode realtime, or "
                    "--autostart)")
            if now > wall_deadline:
                sequence.abandon(f"no verdict after {now - started:.1f} s of wall time (the robot's clock is slow "
                                 "or stopped)")
            publisher.resend_if_due(now)
        if not sequence.done:
            sequence.abandon(f"interrupted ({node.detail})")
        publisher.send(None, 0)
        tcp = tuple(last.tcp) if last is not None else ()
        distance = math.dist(tcp, goal.target) if goal.kind == "tcp" and len(tcp) == 3 else math.nan
        return HandGoalOutcome(goal, sequence.results[0], tcp, distance, count, publisher.sent)
    finally:
        node.close()


def _check_peers(node: Node, endpoints: Endpoints) -> None:
    """A robot that answers ping and a policy that listens, or a HandGoalError that says why not."""
    security = node.security
    client = ServiceClient(node.ctx, endpoints["robot"].rep, "hil-goal", timeout_s=2.0, retries=1,
                           security=security)
    try:
        client.call("ping", services_pb2.PingRequest())
    except ServiceUnavailable:
        raise HandGoalError("no robot: " + why_silent(node.ctx, endpoints["robot"].rep, security, "the robot")
                            + " (start one: `hil node sim --mode realtime` or `hil node hw --port ...`)") from None
    except ServiceError:
        pass  # it answered: alive
    finally:
        client.close()
    reach = probe(node.ctx, endpoints["policy"].rep, security)
    if not reach.handshake:
        raise HandGoalError("no policy to act on the goal: " + explain(reach, security, "the policy")
                            + " (start one: `hil node policy --model policies/reach.onnx`)")

