"""Bring your own policy, through the real commands: import, init, inspect, and a real policy node driving a real sim.

Every malformed description, model or mismatch must end in a clear message
and an exit status, never a traceback; the models are real ONNX files run by
onnxruntime (tests/byo_onnx.py), the nodes real processes over ipc sockets.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from tests import byo_onnx
from tests.conftest import Procs, wait_ready

from bus.endpoints import Endpoints
from bus.pubsub import Publisher, Subscriber
from bus.topics import GOAL, JOINT_COMMAND, JOINT_STATE
from policy_node.policy import description as d
from policy_node.policy.base import Goal, Observation
from policy_node.policy.load import load_policy
from policy_node.policy.onnx_model import ModelError
from roarm.joints import pose
from roarm.kinematics import body_position
from schemas import messages_pb2

ROOT = Path(__file__).resolve().parent.parent
HIL = str(Path(sys.executable).with_name("hil"))
FIXTURE = ROOT / "tests" / "data" / "isaaclab_roarm_reach"
START_S = 90.0


def hil(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HIL, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def isaac_run(tmp_path: Path) -> Path:
    """An Isaac Lab rsl_rl run folder: the fixture's params + an exported actor (obs [1, 24] -> actions [1, 5])."""
    import shutil

    run = tmp_path / "logs" / "rsl_rl" / "roarm_m3_reach" / "2026-02-20_15-30-43"
    shutil.copytree(FIXTURE, run)
    (run / "exported").mkdir()
    byo_onnx.mlp(run / "exported" / "policy.onnx", 24, 5, seed=7)
    return run


def folder(tmp_path: Path, yaml_text: str, n_in: int = 6, n_out: int = 6, **model: object) -> Path:
    out = tmp_path / "policy"
    out.mkdir(exist_ok=True)
    byo_onnx.mlp(out / "policy.onnx", n_in, n_out, **model)  # type: ignore[arg-type]
    (out / "policy.yaml").write_text(yaml_text)
    return out


def obs(q: np.ndarray, goal: Goal | None = None, seq: int = 0) -> Observation:
    return Observation(seq, q.copy(), np.zeros(6), None, None, goal)


# -- an Isaac Lab run, imported with the real command, driving a real sim node --------------------------
def test_an_imported_isaac_lab_policy_drives_a_real_sim(tmp_path: Path, procs: Procs, zctx: zmq.Context) -> None:
    run, out = isaac_run(tmp_path), tmp_path / "imported"
    imported = hil("policy", "import", "isaaclab", str(run), "--out", str(out))
    assert imported.returncode == 0, imported.stderr
    assert "24 observation values, 5 joints" in imported.stdout
    desc = d.load(out)
    assert desc.period == pytest.approx(1 / 30)
    inspected = hil("policy", "inspect", str(out), "--against", "mock")
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    assert "[ 12:19 ] pose_command (goal_pose)" in inspected.stdout and "held at the default pose: gripper" in \
        inspected.stdout

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    endpoints = Endpoints.for_run(run_dir)
    procs.hil("node", "sim", "--backend", "mock", "--mode", "lockstep", "--autostart", "--dt", repr(desc.period),
              "--run-dir", str(run_dir))
    procs.hil("node", "policy", "--policy", str(out), "--run-dir", str(run_dir))
    client = wait_ready(zctx, endpoints, "policy", timeout_s=START_S)
    runner = Publisher(zctx, endpoints["runner"].pub, "test")
    states = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE])
    commands = Subscriber(zctx, [endpoints["policy"].pub], [JOINT_COMMAND])
    goal = messages_pb2.Goal(seq=1)
    q_goal = pose("home")
    q_goal[:4] = (0.3, 0.2, 1.3, 0.1)
    x, y, z = body_position(q_goal, "gripper_link")
    goal.tcp.x, goal.tcp.y, goal.tcp.z, goal.tcp.body = x, y, z, "gripper_link"
    goal.tcp.quat.extend([1.0, 0.0, 0.0, 0.0])
    first: list[np.ndarray] = []
    latest: list[np.ndarray] = []
    seen: list[messages_pb2.JointCommand] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runner.publish(GOAL, goal)
        envelope = states.recv(timeout_ms=50)
        if envelope is not None:
            q = np.asarray(envelope.message.position)  # type: ignore[union-attr]
            first[:] = first or [q]
            latest[:] = [q]
        seen += [e.message for e in commands.drain()]  # type: ignore[misc]
        if first and len(seen) > 30 and float(np.max(np.abs(latest[0] - first[0]))) > 0.05:
            break
    assert seen and all(np.all(np.isfinite(c.position)) and len(c.position) == 6 for c in seen)
    assert float(np.max(np.abs(latest[0] - first[0]))) > 0.05, "the arm did not move"
    described = client.info()
    assert described.extra["policy_joints"] == "base,shoulder,elbow,wrist,roll"
    assert described.extra["goal_kinds"] == "tcp" and described.dt == pytest.approx(1 / 30)
    client.shutdown("test done")
    client.close()


# -- policy folders of other kinds, in-process -----------------------------------------------------------
def test_sb3_style_normalize_and_named_output(tmp_path: Path) -> None:
    """PPO export: outputs actions, values, log_prob; VecNormalize statistics as mean/var/epsilon/clip."""
    mean, var = [0.1, -0.2, 1.5, 0.0, 0.3, 0.2], [0.5, 0.4, 0.3, 0.2, 1.0, 0.1]
    yaml_text = f"""\
model: {{output: actions}}
observation: [joint_pos]
normalize: {{mean: {mean}, var: {var}, epsilon: 1.0e-8, clip: 10.0}}
action: {{mode: delta, scale: 0.01}}
period: 0.02
"""
    out = tmp_path / "policy"
    out.mkdir()
    params = byo_onnx.mlp(out / "policy.onnx", 6, 6, batch="batch", outputs=("actions", "values", "log_prob"))
    (out / "policy.yaml").write_text(yaml_text)
    policy = load_policy(out)
    q = pose("home")
    target = policy.act(obs(q))
    x = np.clip((q - np.array(mean)) / np.sqrt(np.array(var) + 1e-8), -10, 10)
    expected = np.clip(q + 0.01 * byo_onnx.mlp_reference(params, x[None])[0], policy.lower, policy.upper)
    np.testing.assert_allclose(target, expected, atol=1e-5)
    (out / "policy.yaml").write_text(yaml_text.replace("model: {output: actions}\n", ""))
    with pytest.raises(ModelError, match=r"3 outputs \(actions, values, log_prob\): name the one to use as "
                                         r"model.output"):
        load_policy(out)


def test_recurrent_state_is_carried_between_steps_and_zeroed_on_reset(tmp_path: Path) -> None:
    out = tmp_path / "policy"
    out.mkdir()
    byo_onnx.recurrent(out / "policy.onnx", 6, 6, state=8)
    (out / "policy.yaml").write_text("observation: [joint_pos]\nrecurrent: [{input: h_in, output: h_out}]\n")
    policy = load_policy(out)
    q = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    first = policy.act(obs(q))
    second = policy.act(obs(q))
    np.testing.assert_allclose(first, np.full(6, 0.6), atol=1e-5)  # h = 0 + sum(q)
    np.testing.assert_allclose(second, np.full(6, 1.2), atol=1e-5)  # h carried: 0.6 + sum(q)
    policy.reset()
    np.testing.assert_allclose(policy.act(obs(q)), np.full(6, 0.6), atol=1e-5)  # zeroed on reset


def test_last_action_is_zero_after_reset(tmp_path: Path) -> None:
    out = folder(tmp_path, "joints: [base, shoulder]\nobservation: [last_action, joint_pos]\n", n_in=4, n_out=2)
    policy = load_policy(out)
    policy.act(obs(pose("home")))
    assert np.any(policy.mapper.last_action != 0)
    policy.reset()
    assert np.all(policy.mapper.last_action == 0)


@pytest.mark.parametrize("batch", [1, "batch"])
def test_fixed_and_dynamic_batch_and_a_float64_input(tmp_path: Path, batch: object) -> None:
    out = folder(tmp_path, "observation: [joint_pos]\n", batch=batch)
    policy = load_policy(out)
    assert np.all(np.isfinite(policy.act(obs(pose("home")))))
    import onnx

    model = onnx.load(str(out / "policy.onnx"))  # the same graph taking and computing float64
    for init in model.graph.initializer:
        init.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(init).astype(np.float64), init.name))
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    onnx.save(model, str(out / "policy.onnx"))
    policy64 = load_policy(out)
    assert policy64.io.dtype == "float64" and policy64.builder.batch.dtype == np.float64
    np.testing.assert_allclose(policy64.act(obs(pose("home"))), policy.act(obs(pose("home"))), atol=1e-5)


# -- every malformed policy: a clear error through the real CLIs, no traceback ----------------------------
CASES = {
    # name: (policy.yaml, model kwargs, n_in, n_out, message the user must see)
    "observation length": ("observation: [joint_pos, joint_vel]\n", {}, 6, 6,
                           "input 'obs' takes 6 values, the description's observation has 12"),
    "unknown term": ("observation: [joint_position]\n", {}, 6, 6, "observation[0].term: expected one of"),
    "unknown joint": ("joints: [base, elbo]\nobservation: [joint_pos]\n", {}, 6, 2, "unknown joint 'elbo'"),
    "output width": ("joints: [base, shoulder]\nobservation: [joint_pos]\n", {}, 6, 6,
                     "output 'actions' has 6 values per step"),
    "unnamed output": ("observation: [joint_pos]\n", {"outputs": ("actions", "values")}, 6, 6,
                       "name the one to use as model.output"),
    "missing model": ("model: {file: nothere.onnx}\nobservation: [joint_pos]\n", {}, 6, 6,
                      "model.file: no such file"),
    "wrong input name": ("model: {input: observation}\nobservation: [joint_pos]\n", {}, 6, 6,
                         "the model has no input 'observation' (its inputs: obs)"),
    "batch": ("model: {batch: none}\nobservation: [joint_pos]\n", {}, 6, 6, "model.batch: says 'none'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_policy_is_a_clear_error_in_node_and_inspect(tmp_path: Path, case: str) -> None:
    text, kwargs, n_in, n_out, message = CASES[case]
    out = folder(tmp_path, text, n_in, n_out, **kwargs)
    shown = hil("policy", "inspect", str(out))
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert message in shown.stdout and "Traceback" not in shown.stdout + shown.stderr
    node = hil("node", "policy", "--policy", str(out), "--run-dir", str(tmp_path / "rd"))
    assert node.returncode == 1, node.stderr
    assert "cannot start the policy node" in node.stderr and message in node.stderr
    assert "Traceback" not in node.stderr


def test_rank_and_dtype_problems_are_clear(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    out = tmp_path / "policy"
    out.mkdir()
    graph = helper.make_graph([helper.make_node("Cast", ["obs"], ["actions"], to=TensorProto.FLOAT)], "g",
                              [helper.make_tensor_value_info("obs", TensorProto.INT64, [1, 1, 6])],
                              [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, 1, 6])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(out / "policy.onnx"))
    (out / "policy.yaml").write_text("observation: [joint_pos]\n")
    shown = hil("policy", "inspect", str(out))
    assert shown.returncode == 1
    assert "is tensor(int64), not a float tensor" in shown.stdout and "(rank 3)" in shown.stdout
    assert "Traceback" not in shown.stdout + shown.stderr


def test_a_plain_onnx_gets_a_template_and_then_runs(tmp_path: Path) -> None:
    model = tmp_path / "exported" / "policy.onnx"
    model.parent.mkdir()
    byo_onnx.mlp(model, 10, 5)
    bare = hil("policy", "inspect", str(model))
    assert bare.returncode == 1 and "hil policy init" in bare.stdout
    out = tmp_path / "mine"
    made = hil("policy", "init", str(model), "--out", str(out))
    assert made.returncode == 0, made.stderr
    text = (out / "policy.yaml").read_text()
    assert "input  'obs' [1, 10] tensor(float)" in text and "joints: [base_link_to_link1" in text
    unfinished = hil("policy", "inspect", str(out))
    assert unfinished.returncode == 1 and "observation: is empty" in unfinished.stdout
    (out / "policy.yaml").write_text(text.replace("observation: []", "observation: [joint_pos, joint_vel]")
                                     .replace("period: null", "period: 0.02"))
    finished = hil("policy", "inspect", str(out), "--against", "mujoco")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "one inference: raw output" in finished.stdout
    again = hil("policy", "init", str(model), "--out", str(out))
    assert again.returncode == 2 and "--force" in again.stderr


def test_inspect_against_a_robot_reports_the_period(tmp_path: Path) -> None:
    out = folder(tmp_path, "observation: [joint_pos]\nperiod: 0.015\n")
    shown = hil("policy", "inspect", str(out), "--against", "mujoco")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "warning: control period: the policy was trained at 0.015 s" in shown.stdout
    limits = folder(tmp_path, "observation: [joint_pos]\nlimits: {lower: [-1, -1, -1, -1, -1, 0], "
                              "upper: [1, 1, 1, 1, 1, 1.5]}\n")
    shown = hil("policy", "inspect", str(limits), "--against", "mock")
    assert shown.returncode == 1 and "problem: lower limit of base: policy -1.0000 rad" in shown.stdout
