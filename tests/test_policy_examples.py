"""The worked examples of docs/policies.md, each end to end.

- policies/isaaclab_reach/ (an Isaac Lab rsl_rl run folder made by the
  project) imports to the committed policies/isaaclab_reach_imported/, whose
  model brings gripper_link to pose commands; scenarios/isaaclab_reach.yaml
  runs it through ``hil run`` on mock and MuJoCo.
- policies/sb3_reach/ (SB3-style export, VecNormalize statistics in
  policy.yaml) and policies/plain_reach/ (plain ONNX, hand-written
  policy.yaml) compute exactly what reach.onnx computes, and reach the goals
  of scenarios/reach.yaml through ``--policy``.

The Python and C examples have their own files (test_policy_python.py,
test_policy_command.py). The in-process checks use the harness's own
adapter (ObservationBuilder, ActionMapper) and onnxruntime; the ``hil run``
ones need the policy node to run a policy folder from its description.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from policy_node.policy.action import ActionMapper
from policy_node.policy.base import Goal, Observation
from policy_node.policy.description import load as load_description
from policy_node.policy.isaaclab import import_isaaclab
from policy_node.policy.load import load_policy
from policy_node.policy.observation import ObservationBuilder
from roarm.joints import NAMES, pose
from roarm.kinematics import fk, sample_reachable_goal, sample_task_pose
from schemas import messages_pb2
from scenarios.schema import load as load_scenario
from sim_node.backends import make_backend
from tests.conftest import ROOT, Procs
from tests.byo_onnx import session
from tools.training import examples
from tools.bench.rig import start_emulator
from tools.training import train_isaaclab_reach as isaac

POLICIES = ROOT / "policies"
ISAAC_RUN = POLICIES / "isaaclab_reach"
ISAAC_IMPORTED = POLICIES / "isaaclab_reach_imported"


def hil_run(procs: Procs, tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "out"
    proc = procs.hil("run", *args, "--out", str(out), "--no-progress", "--no-record")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout.decode() + stderr.decode()
    return json.loads((out / "report.json").read_text())


# -- the Isaac Lab run folder ---------------------------------------------------------------------------

def test_the_run_folder_has_isaac_labs_layout() -> None:
    for name in ("params/env.yaml", "params/agent.yaml", "exported/policy.onnx"):
        assert (ISAAC_RUN / name).is_file(), name
    text = (ISAAC_RUN / "params" / "env.yaml").read_text()
    assert "!!python/tuple" in text and "!!python/object/apply:builtins.slice" in text
    model = onnx.load(str(ISAAC_RUN / "exported" / "policy.onnx"))
    assert [o.version for o in model.opset_import] == [18]
    dims = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert [(v.name, dims(v)) for v in model.graph.input] == [("obs", [1, 24])]
    assert [(v.name, dims(v)) for v in model.graph.output] == [("actions", [1, 5])]
    assert {node.op_type for node in model.graph.node} == {"Sub", "Div", "Gemm", "Elu"}


def test_the_run_imports_to_the_committed_policy_folder(tmp_path: Path) -> None:
    desc = import_isaaclab(ISAAC_RUN, tmp_path / "imported")
    assert (tmp_path / "imported" / "policy.onnx").read_bytes() == (ISAAC_IMPORTED / "policy.onnx").read_bytes()
    committed = load_description(ISAAC_IMPORTED)
    assert desc.observation_size == committed.observation_size == 24
    assert [t.kind for t in desc.observation] == [t.kind for t in committed.observation] == \
        ["joint_pos_rel", "joint_vel_rel", "goal_pose", "last_action"]
    assert desc.period == committed.period == pytest.approx(1 / 30)
    assert desc.default_pose == committed.default_pose and desc.action == committed.action
    assert committed.goal_bodies == {"gripper_link"}
    # Nothing of the machine it was made on: the run is named as given, relative.
    assert "/work/" not in (ISAAC_IMPORTED / "policy.yaml").read_text()


@pytest.mark.parametrize("target", ["mock", "mujoco"])
def test_the_imported_model_reaches_the_scenarios_goals_in_process(target: str) -> None:
    """The committed model, through the harness's own adapter and onnxruntime, on a real backend."""
    desc = load_description(ISAAC_IMPORTED)
    adapter = isaac.Adapter(desc)
    run = session(ISAAC_IMPORTED / "policy.onnx")
    scenario = load_scenario(ROOT / "scenarios" / "isaaclab_reach.yaml")
    backend = isaac.mujoco_at(desc.period, 20) if target == "mujoco" else make_backend("mock", dt=desc.period)
    if target == "mock":
        backend.connect()
    try:
        goals = [np.asarray(g.target) for g in scenario.goals]
        errors = isaac.evaluate(backend, adapter, lambda obs: run.run(None, {"obs": obs[None, :]})[0][0], goals,
                                steps=round(4.0 / desc.period))
    finally:
        backend.close()
    assert np.all(errors < 0.010), errors * 1000


@pytest.mark.slow
@pytest.mark.parametrize("target", ["mock", "mujoco"])
def test_hil_run_isaaclab_reach(procs: Procs, tmp_path: Path, target: str) -> None:
    """Needs the policy node to run a policy folder (policy.yaml beside the model)."""
    report = hil_run(procs, tmp_path, "isaaclab_reach", "--target", target)
    assert all(goal["reached"] for goal in report["goals"]), report["goals"]
    robot = report["nodes"]["robot"]
    assert robot["argv"][robot["argv"].index("--dt") + 1] == repr(1 / 30)


@pytest.mark.slow
@pytest.mark.hil
def test_hil_run_isaaclab_reach_on_the_real_arm_target(request: pytest.FixtureRequest, procs: Procs,
                                                       tmp_path: Path) -> None:
    """The imported Isaac Lab policy (made for 1/30 s) on the 25 Hz realtime arm: the firmware
    emulator on a pty, or a real arm with --roarm-port."""
    port = request.config.getoption("--roarm-port")
    if not port:
        port = str(tmp_path / "arm")
        start_emulator(procs, Path(port), timeout_s=30)
    report = hil_run(procs, tmp_path, "isaaclab_reach", "--target", "hw", "--port", port)
    assert all(goal["reached"] for goal in report["goals"]), report["goals"]


# -- SB3-style and plain ONNX ---------------------------------------------------------------------------

def test_the_examples_are_what_the_generator_writes_from_reach_onnx(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    shutil.copy(POLICIES / "reach.onnx", tmp_path / "policies" / "reach.onnx")
    examples.make(tmp_path)
    for name in ("plain_reach/policy.onnx", "sb3_reach/policy.onnx", "sb3_reach/policy.yaml"):
        assert (tmp_path / "policies" / name).read_bytes() == (POLICIES / name).read_bytes(), name
    plain = onnx.load(str(POLICIES / "plain_reach" / "policy.onnx"))
    assert not plain.metadata_props and [v.name for v in plain.graph.input] == ["obs"]
    sb3 = onnx.load(str(POLICIES / "sb3_reach" / "policy.onnx"))
    assert [v.name for v in sb3.graph.output] == ["actions", "values", "log_prob"]
    assert {node.op_type for node in sb3.graph.node}.isdisjoint({"Sub", "Div"})  # normalization outside


@pytest.mark.parametrize("name", ["plain_reach", "sb3_reach"])
def test_each_example_computes_what_reach_onnx_computes(name: str) -> None:
    reach = load_policy(str(POLICIES / "reach.onnx"))
    desc = load_description(POLICIES / name)
    builder, mapper = ObservationBuilder(desc), ActionMapper(desc)
    run = session(desc.model.path)
    output = desc.model.output or run.get_outputs()[0].name
    rng = np.random.default_rng(5)
    for _ in range(50):
        q = sample_task_pose(rng)
        q[4:] = rng.uniform([-1.0, 0.0], [1.0, 1.5])
        goal_xyz = sample_reachable_goal(rng)
        message = messages_pb2.Goal(id="g")
        message.tcp.x, message.tcp.y, message.tcp.z, message.tcp.gripper = (*goal_xyz, float("nan"))
        state = messages_pb2.JointState(seq=1, names=NAMES, position=q, velocity=np.zeros(6), tcp=list(fk(q)))
        expected = reach.act(Observation.from_state(state, message))
        batch = builder.build(q, np.zeros(6), mapper.last_action, Goal(np.asarray(goal_xyz)), np.asarray(fk(q)))
        raw = run.run([output], {run.get_inputs()[0].name: batch})[0]
        np.testing.assert_allclose(mapper(raw, q), expected, atol=2e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["plain_reach", "sb3_reach"])
def test_hil_run_reach_with_the_example(procs: Procs, tmp_path: Path, name: str) -> None:
    """Needs the policy node to run a policy folder (policy.yaml beside the model)."""
    report = hil_run(procs, tmp_path, "reach", "--target", "mock", "--policy", str(POLICIES / name))
    assert all(goal["reached"] for goal in report["goals"]), report["goals"]
    assert report["provenance"]["policy"] == f"folder:{name}"


def test_every_example_folder_ships_with_the_package() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"**/*.onnx"' in text and '"**/*.yaml"' in text and '"**/*.c"' in text
    for folder in ("isaaclab_reach", "isaaclab_reach_imported", "plain_reach", "sb3_reach", "python_ik", "c_hold"):
        assert (POLICIES / folder).is_dir(), folder
    assert pose("home").shape == (6,)
