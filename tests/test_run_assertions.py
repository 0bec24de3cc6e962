"""Goal judging and assertion verdicts on synthetic streams of states."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bus.latency import summarize
from scenarios.assertions import NodeOutcome, Observed, crash_verdict, judge
from scenarios.goals import GoalSequence, goal_message
from scenarios.monitor import HoldWatch
from scenarios.schema import Assertions, DeadlineCheck, GoalSpec, HoldCheck, LatencyCheck, TrackingCheck, loads
from schemas import messages_pb2

HOME = np.array([0.0, 0.0, 1.5708, 0.0, 0.0, 0.0])


def state(t: float, tcp: tuple[float, float, float], position: np.ndarray = HOME) -> messages_pb2.JointState:
    return messages_pb2.JointState(seq=int(round(t / 0.02)), sim_time=t, position=list(position), tcp=list(tcp))


def approach(seq: GoalSequence, start: float, target: np.ndarray, frm: np.ndarray, seconds: float) -> float:
    """States moving linearly from ``frm`` to ``target`` then staying there; returns the end time."""
    t = start
    steps = int(seconds / 0.02)
    for k in range(steps + 50):
        tcp = frm + (target - frm) * min(1.0, k / steps)
        t = start + k * 0.02
        if seq.observe(state(t, tuple(tcp)), HOME):
            return t
    return t


def test_cartesian_goal_reached_in_time_with_hold() -> None:
    goal = GoalSpec("a", "tcp", (0.3, 0.0, 0.2), 0.005, timeout_s=2.0, hold_s=0.1)
    seq = GoalSequence((goal,))
    seq.start(0.0)
    approach(seq, 0.0, np.array(goal.target), np.array([0.34, 0.0, 0.34]), 1.0)
    result = seq.results[0]
    assert seq.done and result.reached
    # within 5 mm of a 146 mm straight path of 1 s: after about 0.966 s
    assert 0.9 < result.time_s < 1.0 and result.error <= 0.005


def test_goal_not_reached_times_out_and_next_starts() -> None:
    far = GoalSpec("far", "tcp", (0.0, 0.0, 0.0), 0.001, timeout_s=0.5)
    near = GoalSpec("near", "joints", tuple(HOME), 0.01, timeout_s=1.0)
    seq = GoalSequence((far, near))
    seq.start(0.0)
    t = 0.0
    while seq.index == 0:
        t += 0.02
        seq.observe(state(t, (0.3, 0.0, 0.3)), HOME)
    assert not seq.results[0].reached and math.isclose(seq.results[0].best_error, math.dist((0.3, 0, 0.3), (0, 0, 0)))
    assert 0.5 < t < 0.56 and seq.results[1].started_sim == t
    seq.observe(state(t + 0.02, (0.3, 0.0, 0.3)), HOME)
    assert seq.done and seq.results[1].reached and math.isclose(seq.results[1].time_s, 0.02)


def test_tcp_goal_without_tcp_in_states_says_why() -> None:
    seq = GoalSequence((GoalSpec("a", "tcp", (0.3, 0.0, 0.2), 0.01, timeout_s=0.1),))
    seq.start(0.0)
    for k in range(10):
        seq.observe(messages_pb2.JointState(seq=k, sim_time=k * 0.02, position=list(HOME)), HOME)
    verdict = judge(Assertions(joint_limits=None), Observed(goals=seq.results))[0]
    assert not verdict.passed and "no tcp" in verdict.detail


def test_goal_message_carries_target_tolerance_and_timeout() -> None:
    msg = goal_message(GoalSpec("g", "tcp", (0.1, 0.2, 0.3), 0.01, 4.0), 3)
    assert msg.WhichOneof("target") == "tcp" and (msg.tcp.x, msg.tcp.y, msg.tcp.z) == (0.1, 0.2, 0.3)
    assert math.isnan(msg.tcp.gripper) and msg.seq == 3 and msg.tolerance == 0.01 and msg.timeout_s == 4.0
    joints = goal_message(GoalSpec("j", "joints", tuple(HOME), 0.05, 2.0), 0)
    assert list(joints.joints.position) == list(HOME)


def test_verdicts_pass_and_fail_on_their_bounds() -> None:
    assertions = Assertions(tracking_error=TrackingCheck(0.1), loop_latency=LatencyCheck(5.0),
                            deadline_misses=DeadlineCheck(max_rate=0.01))
    good = Observed(steps=1000, limit_excess=0.0, tracking_max=0.05, tracking_mean=0.01, tracking_count=990,
                    latency=summarize([0.001] * 100), deadline_misses=5,
                    nodes=[NodeOutcome("robot", "robot", 0, "shutdown service")])
    verdicts = {v.name: v for v in judge(assertions, good)}
    assert all(v.passed for v in verdicts.values()), verdicts
    assert set(verdicts) == {"joint_limits", "tracking_error", "loop_latency", "deadline_misses", "no_crash:robot"}
    bad = Observed(steps=1000, limit_excess=0.01, limit_where="elbow = 2.96 rad at step 7", tracking_max=0.3,
                   tracking_count=990, latency=summarize([0.001] * 90 + [0.02] * 10), deadline_misses=50,
                   nodes=[NodeOutcome("robot", "robot", -9, "SIGKILL")])
    verdicts = {v.name: v for v in judge(assertions, bad)}
    assert not any(v.passed for v in verdicts.values()), verdicts
    assert verdicts["joint_limits"].detail == "elbow = 2.96 rad at step 7"
    assert verdicts["deadline_misses"].figure == 0.05


def test_watchdog_assertions_pass_when_the_robot_holds() -> None:
    assertions = Assertions(deadline_misses=DeadlineCheck(min_count=1), hold_after_kill=HoldCheck(0.02, 0.2))
    seen = Observed(steps=200, deadline_misses=40, hold=HoldWatch(2.0, 0.2, max_drift=0.001, samples=30),
                    nodes=[NodeOutcome("policy", "policy", -9, "killed on purpose", killed_on_purpose=True)])
    verdicts = {v.name: v for v in judge(assertions, seen)}
    assert all(v.passed for v in verdicts.values()), verdicts
    moved = Observed(steps=200, deadline_misses=0, hold=HoldWatch(2.0, 0.2, max_drift=0.5, samples=30))
    verdicts = {v.name: v for v in judge(assertions, moved)}
    assert not verdicts["hold_after_kill"].passed and not verdicts["deadline_misses"].passed


def test_a_node_that_died_or_faulted_fails_no_crash() -> None:
    assert not crash_verdict(NodeOutcome("robot", "robot", 1, "exited", died_during_run=True)).passed
    assert not crash_verdict(NodeOutcome("robot", "robot", 0, "shutdown service", faults=["sim: fault: x"])).passed
    assert crash_verdict(NodeOutcome("policy", "policy", -9, "killed on purpose", killed_on_purpose=True)).passed


def test_scenario_assertions_map_to_verdicts(tmp_path: Path) -> None:
    scenario = loads("policy: {scripted: hold}\ngoals: [{joints: [0, 0, 1.5708, 0, 0, 0]}]\n"
                     "assertions: {joint_limits: false, no_crash: false, goals: true}\n", tmp_path / "s.yaml")
    seq = GoalSequence(scenario.goals)
    seq.start(0.0)
    seq.observe(state(0.0, (0.3, 0, 0.3)), HOME)
    assert [v.name for v in judge(scenario.assertions, Observed(goals=seq.results))] == ["goal:goal0"]
