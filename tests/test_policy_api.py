"""Policy API in-process: specs, ONNX and scripted policies, watchdog, metrics, event log."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from tests.policy_models import write_model

from policy_node.event_log import EventLog
from policy_node.metrics import PolicyMetrics, SlaConfig
from policy_node.policy.base import Observation, Policy
from policy_node.policy.load import load_policy
from tools.training.rollout import cartesian_goal_message
from policy_node.policy.compat import Requirements, RobotFacts, check_fit
from policy_node.policy.description import PolicyDescriptionError, from_metadata
from policy_node.policy.onnx_model import ModelError
from policy_node.policy.spec import KEY_DT, PolicySpec
from policy_node.watchdog import Watchdog, WatchdogConfig
from roarm.joints import MAX_VELOCITY, ROARM_M3, pose
from roarm.kinematics import fk, sample_reachable_goal
from schemas import messages_pb2, services_pb2

ROOT = Path(__file__).resolve().parent.parent
REACH = ROOT / "policies" / "reach.onnx"


def robot_info(**changes: object) -> services_pb2.NodeInfo:
    info = services_pb2.NodeInfo(joint_names=ROARM_M3.names, lower=ROARM_M3.lower, upper=ROARM_M3.upper, dt=0.01)
    for key, value in changes.items():
        field = getattr(info, key)
        if isinstance(value, (list, tuple)):
            del field[:]
            field.extend(value)  # type: ignore[attr-defined]
        else:
            setattr(info, key, value)
    return info


def obs_at(q: np.ndarray, goal: messages_pb2.Goal | None = None, seq: int = 0) -> Observation:
    return Observation(seq, q.copy(), np.zeros(6), fk(q), goal)


# -- spec -> description -> fit ------------------------------------------------------
def test_spec_metadata_reads_back_as_a_description() -> None:
    spec = PolicySpec(observation=("position", "tcp_error"), action_kind="delta", action_scale=(0.1,) * 6, dt=0.01)
    desc = spec.description()
    assert [t.kind for t in desc.observation] == ["joint_pos", "tcp_error"]
    assert desc.action.mode == "delta" and desc.action.scale == (0.1,) * 6 and desc.period == 0.01
    assert desc.limits == (ROARM_M3.lower, ROARM_M3.upper) and desc.joints == ROARM_M3.names


def fit_of(spec: PolicySpec, **robot: object):  # noqa: ANN201
    return check_fit(Requirements.of(spec.description()), RobotFacts.of_info(robot_info(**robot)))


def test_fit_names_the_field_that_differs() -> None:
    spec = PolicySpec(dt=0.01)
    assert fit_of(spec).ok and not fit_of(spec).warnings  # the same arm: accepted
    upper = list(ROARM_M3.upper)
    upper[2] = math.pi
    [error] = fit_of(spec, upper=upper).errors
    assert error.startswith("upper limit of elbow: policy 2.9500 rad, robot 3.1416 rad")
    upper[2] = ROARM_M3.upper[2] + 5e-4  # within the 1e-3 rad tolerance
    assert fit_of(spec, upper=upper).ok
    [error] = fit_of(spec, dt=0.02, mode="lockstep").errors
    assert "trained at 0.01 s" in error and "robot runs 0.02 s" in error and "run it at 0.01 s" in error
    slower = fit_of(spec, dt=0.04, mode="realtime")  # the real arm at 25 Hz, a 100 Hz model: accepted, said
    assert slower.ok and "moves slower than trained" in slower.warnings[0]
    assert fit_of(spec, dt=0.005, mode="realtime").errors  # faster than trained: refused
    names = list(ROARM_M3.names)
    names[3], names[4] = names[4], names[3]
    assert "bus order" in fit_of(spec, joint_names=names).errors[0]
    assert fit_of(PolicySpec(dt=0.0), dt=0.02, mode="lockstep").ok  # dt 0: any period


def test_bad_metadata_is_named() -> None:
    meta = PolicySpec(dt=0.01).to_metadata()
    with pytest.raises(PolicyDescriptionError, match=KEY_DT):
        from_metadata({k: v for k, v in meta.items() if k != KEY_DT}, REACH)
    with pytest.raises(PolicyDescriptionError, match="unknown term 'joint_angles'"):
        from_metadata({**meta, "roarm.observation": "joint_angles"}, REACH)
    with pytest.raises(PolicyDescriptionError, match="action.mode"):
        from_metadata({**meta, "roarm.action_kind": "torque"}, REACH)


# -- ONNX ---------------------------------------------------------------------------
def test_reach_model_carries_its_spec_and_hash() -> None:
    policy = load_policy(str(REACH))
    assert isinstance(policy, Policy)
    assert [t.kind for t in policy.description.observation] == ["joint_pos", "tcp_error"]
    assert policy.description.action.mode == "delta" and policy.requirements.period == 0.01
    assert policy.requirements.goal_kinds == {"tcp"}
    assert len(policy.model_hash) == 64
    assert check_fit(policy.requirements, RobotFacts.of_info(robot_info())).ok


def test_reach_model_moves_toward_the_goal_and_holds_without_one() -> None:
    policy = load_policy(str(REACH))
    q = pose("home")
    assert np.array_equal(policy.act(obs_at(q)), q)  # no goal: hold
    goal_xyz = sample_reachable_goal(np.random.default_rng(5))
    goal = cartesian_goal_message(goal_xyz)
    before = np.linalg.norm(fk(q) - goal_xyz)
    for k in range(200):  # ideal servo: the target is reached each period
        q = policy.act(obs_at(q, goal, k))
    assert np.linalg.norm(fk(q) - goal_xyz) < min(0.015, before / 10)


def test_onnx_absolute_policy_and_input_checks(tmp_path: Path) -> None:
    spec = PolicySpec(observation=("position",), dt=0.01)
    bias = np.array([0.1, 0.2, 1.0, -0.3, 0.0, 9.0])  # gripper 9 rad is past its limit
    policy = load_policy(write_model(tmp_path / "const.onnx", spec, bias))
    target = policy.act(obs_at(pose("home")))
    assert np.allclose(target, [0.1, 0.2, 1.0, -0.3, 0.0, 1.5], atol=1e-6)  # clipped to the spec's limits
    # a model whose input width does not match its declared observation
    wrong = PolicySpec(observation=("position", "velocity"), dt=0.01)
    path = write_model(tmp_path / "wrong.onnx", spec, bias)
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    helper.set_model_props(model, wrong.to_metadata())
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match=r"takes 6 values, the description's observation has 12"):
        load_policy(path)


def test_nan_model_output_is_reported_not_clipped(tmp_path: Path) -> None:
    spec = PolicySpec(observation=("position",), dt=0.01)
    policy = load_policy(write_model(tmp_path / "nan.onnx", spec, np.zeros(6), multiply=math.nan))
    assert np.all(np.isnan(policy.act(obs_at(pose("home")))))


def test_load_policy_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing.onnx does not exist"):
        load_policy(str(tmp_path / "missing.onnx"))
    with pytest.raises(ValueError, match="a policy source is a model file"):
        load_policy("model.pt")
    with pytest.raises(ValueError, match="known: hold, waypoints, ik"):
        load_policy("scripted:dance")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not an ONNX model"):
        load_policy(str(junk))


# -- scripted ------------------------------------------------------------------------
def test_hold_keeps_the_first_position() -> None:
    policy = load_policy("scripted:hold")
    first = pose("ready")
    assert np.array_equal(policy.act(obs_at(first)), first)
    assert np.array_equal(policy.act(obs_at(pose("home"))), first)
    policy.reset()
    assert np.array_equal(policy.act(obs_at(pose("home"))), pose("home"))


def test_waypoints_respect_the_speed_limit_and_visit_each_pose() -> None:
    dt = 0.01
    policy = load_policy("scripted:waypoints", dt=dt)
    q = pose("home")
    visited_ready = False
    for k in range(400):
        target = policy.act(obs_at(q, seq=k))
        assert np.all(np.abs(target - q) <= MAX_VELOCITY * dt + 1e-12)
        q = target
        visited_ready |= bool(np.allclose(q, pose("ready")))
    assert visited_ready
    goal = messages_pb2.Goal()
    goal.joints.names.extend(["base"])
    goal.joints.position.extend([0.5])
    for k in range(100):
        q = policy.act(obs_at(q, goal, k))
    assert q[0] == pytest.approx(0.5)


def test_ik_reaches_cartesian_goals_deterministically() -> None:
    rng = np.random.default_rng(11)
    for _ in range(5):
        goal_xyz = sample_reachable_goal(rng)
        runs = []
        for _attempt in range(2):
            policy = load_policy("scripted:ik", dt=0.01)
            q = pose("home")
            for k in range(300):
                q = policy.act(obs_at(q, cartesian_goal_message(goal_xyz), k))
            runs.append(q)
        assert np.array_equal(runs[0], runs[1])
        assert np.linalg.norm(fk(runs[0]) - goal_xyz) < 1e-3


# -- watchdog, metrics, events ---------------------------------------------------------
def test_watchdog_judges_and_holds() -> None:
    dog = Watchdog(WatchdogConfig(deadline_s=0.1, budget_s=0.001))
    assert not dog.stale(now=100.0)  # nothing seen yet: nothing to hold
    dog.on_state(6, pose("home"), now=99.0)
    assert not dog.stale(now=99.5), "a robot that has not stepped yet may be waiting for us to join"
    dog.on_state(7, pose("ready"), now=100.0)
    assert not dog.stale(now=100.05) and dog.stale(now=100.11)
    assert dog.judge(np.zeros(6), 0.0005) is None
    assert dog.judge(np.zeros(6), 0.002) == "budget_overrun"
    assert dog.judge(np.array([0, 0, math.inf, 0, 0, 0]), 0.0) == "non_finite_output"
    hold = dog.hold_command(np.asarray(ROARM_M3.lower), np.asarray(ROARM_M3.upper), now=100.2)
    assert hold.hold and hold.obs_seq == 7 and np.allclose(hold.position, pose("ready"))
    assert not dog.stale(now=100.25)  # one hold per deadline, not a flood
    dog.on_state(0, pose("home"), now=101.0)
    assert not dog.stale(now=102.0), "after a reset the robot re-publishes state 0 while we join"



def test_metrics_alerts_have_a_cooldown(tmp_path: Path) -> None:
    metrics = PolicyMetrics(SlaConfig(p95_us=100.0, miss_rate=0.1, cooldown_s=5.0, min_samples=10))
    for i in range(20):
        metrics.record(recv_ns=0, stamp_ns=1, send_ns=500_000, inference_s=1e-4, missed=i % 2 == 0)
    codes = {a.code for a in metrics.alerts(now=10.0)}
    assert codes == {"sla.p95", "sla.miss_rate"}
    assert metrics.alerts(now=12.0) == []  # cooling down
    assert {a.code for a in metrics.alerts(now=15.5)} == codes
    figures = metrics.as_metrics()
    assert figures["deadline_miss_rate"] == pytest.approx(0.5)
    assert figures["recv_to_send.window.p50_us"] == pytest.approx(500.0)
    path = tmp_path / "policy.prom"
    metrics.write_textfile(path, "policy")
    text = path.read_text()
    assert 'roarm_policy_deadline_miss_total{node="policy"} 10.0' in text
    assert 'kind="recv_to_send",node="policy",quantile="0.95",window="recent"' in text


def test_event_log_writes_json_lines(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl", "policy")
    log.write(messages_pb2.Severity.WARNING, "watchdog.stale_state", "holding", 42)
    log.close()
    record = json.loads((tmp_path / "events.jsonl").read_text().splitlines()[0])
    assert record["code"] == "watchdog.stale_state" and record["obs_seq"] == 42 and record["severity"] == "WARNING"


def test_hil_policy_info_prints_the_spec_or_a_clear_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tools.cli import main

    runner = CliRunner()
    shown = runner.invoke(main, ["policy", "info", str(REACH)])
    assert shown.exit_code == 0, shown.output
    assert "observation: joint_pos,tcp_error (9 values)" in shown.output and "dt:          0.01 s" in shown.output
    missing = runner.invoke(main, ["policy", "info", str(tmp_path / "none.onnx")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    both = runner.invoke(main, ["node", "policy", "--scripted", "hold", "--model", str(REACH)])
    assert both.exit_code == 2 and "exactly one of --model PATH or --scripted" in both.output
