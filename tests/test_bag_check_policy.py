"""hil bag check-policy: passes for the policy that made a bag, fails naming the
step for a perturbed copy; and a bag written by `hil run` end to end."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap_protobuf.decoder import DecoderFactory

from policy_node.policy.base import Observation
from policy_node.policy.load import load_policy
from policy_node.policy.spec import PolicySpec
from tests.bag_factory import DT, kinematic_run
from tests.conftest import HIL, ROOT
from tests.policy_models import write_model


def check(bag: Path, model: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HIL, "bag", "check-policy", str(bag), "--model", model, *extra],
                          capture_output=True, text=True, timeout=120)


def driven_by(source: str, perturb_step: int = -1, holds: tuple[int, ...] = ()):
    policy = load_policy(source, dt=DT)

    def act(k, state, goal):
        target = policy.act(Observation.from_state(state, goal))
        if k == perturb_step:
            target = target + np.array([0, 0, 0.01, 0, 0, 0])  # a different command was recorded here
        return target
    return act


def test_scripted_policy_reproduces_its_own_bag(tmp_path):
    bag = kinematic_run(tmp_path / "ik.mcap", driven_by("scripted:ik", holds=(30, 31)), holds=(30, 31))
    result = check(bag, "scripted:ik")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout and "steps checked: 118" in result.stdout and "holds skipped: 2" in result.stdout


def test_a_perturbed_recording_fails_naming_the_step(tmp_path):
    bag = kinematic_run(tmp_path / "ik.mcap", driven_by("scripted:ik", perturb_step=57))
    result = check(bag, "scripted:ik")
    assert result.returncode == 1
    assert "FAIL: first divergence at step 57 (obs_seq 57" in result.stdout
    assert "elbow" in result.stdout and "1 of 120 steps diverge" in result.stdout
    data = json.loads(check(bag, "scripted:ik", "--json").stdout)
    assert data["ok"] is False and data["first_divergence"]["step"] == 57
    assert data["max_error"][2] == pytest.approx(0.01, abs=1e-9) and data["max_error"][0] < 1e-9
    # A tolerance above the perturbation lets it pass.
    assert check(bag, "scripted:ik", "--atol", "0.02").returncode == 0


def test_onnx_model_passes_and_its_perturbed_copy_fails(tmp_path):
    spec = PolicySpec(observation=("position",), dt=DT)
    bias = np.array([0.01, -0.02, 0.8, 0.03, 0.0, 0.2])
    model = write_model(tmp_path / "reach.onnx", spec, bias, multiply=0.5)
    bag = kinematic_run(tmp_path / "onnx.mcap", driven_by(str(model)), provenance={"dt": str(DT)})
    passed = check(bag, str(model))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "PASS" in passed.stdout

    bias[3] += 0.05  # one weight of the copy changed
    perturbed = write_model(tmp_path / "reach-perturbed.onnx", spec, bias, multiply=0.5)
    failed = check(bag, str(perturbed))
    assert failed.returncode == 1
    assert "first divergence at step 0 (obs_seq 0" in failed.stdout and "wrist" in failed.stdout


def test_unusable_inputs_are_clear_errors(tmp_path):
    bag = kinematic_run(tmp_path / "ik.mcap", driven_by("scripted:ik"), steps=20)
    missing = check(bag, str(tmp_path / "none.onnx"))
    assert missing.returncode == 1 and "cannot load policy" in missing.stderr and "Traceback" not in missing.stderr
    wrong = check(bag, "scripted:nonsense")
    assert wrong.returncode == 1 and "unknown scripted policy" in wrong.stderr


def perturbed_copy(model: Path, out: Path, delta: float = 0.01) -> Path:
    """``model`` with one weight changed: the last layer's bias of the shoulder output."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model))
    for index, tensor in enumerate(graph.graph.initializer):
        if tensor.name == "b2":
            bias = numpy_helper.to_array(tensor).copy()
            bias[1] += delta
            graph.graph.initializer[index].CopyFrom(numpy_helper.from_array(bias, "b2"))
    onnx.save(graph, str(out))
    return out


@pytest.mark.slow
def test_a_bag_written_by_hil_run_decodes_and_checks(tmp_path):
    """The shipped reach scenario on the mock arm records by default: the bag decodes from its
    embedded schemas alone, reach.onnx passes check-policy, a copy with one weight changed fails."""
    out = tmp_path / "out"
    model = ROOT / "policies" / "reach.onnx"
    run = subprocess.run([HIL, "run", str(ROOT / "scenarios" / "reach.yaml"), "--target", "mock",
                          "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=240)
    # The scenario's own verdict (e.g. a latency bound on a loaded machine) is not under test here.
    assert run.returncode in (0, 1), run.stdout + run.stderr
    bag = out / "run.mcap"
    assert bag.is_file(), run.stdout
    topics: dict[str, int] = {}
    with open(bag, "rb") as handle:
        reader = make_reader(handle, decoder_factories=[DecoderFactory()])
        assert reader.get_summary() is not None
        for _schema, channel, _message, decoded in reader.iter_decoded_messages():
            assert decoded.DESCRIPTOR.full_name == channel.metadata["type"]
            topics[channel.topic] = topics.get(channel.topic, 0) + 1
        provenance = {m.name: m.metadata for m in reader.iter_metadata()}["roarm-hil"]
    assert {"robot/joint_state", "robot/joint_command", "task/goal"} <= set(topics)
    assert provenance["scenario"] == "reach" and provenance["seed"] == "0"

    result = check(bag, str(model))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout and "the bag was made by" not in result.stdout
    assert re.search(r"resets: [1-9]", result.stdout), "reach.yaml resets the arm between goals (episodes)"

    failed = check(bag, str(perturbed_copy(model, tmp_path / "reach-perturbed.onnx")))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL: first divergence at step 0 (obs_seq 0" in failed.stdout and "shoulder" in failed.stdout
    assert "note: the bag was made by onnx:reach.onnx" in failed.stdout

    info = subprocess.run([HIL, "bag", "info", str(bag)], capture_output=True, text=True, timeout=60).stdout
    assert "node policy: policy (onnx:reach.onnx" in info and "node robot: sim (mock, lockstep, dt 0.01 s" in info


@pytest.mark.parametrize("source", ["scripted:ik", str(ROOT / "policies" / "reach.onnx")])
def test_a_late_goal_is_retried_without_advancing_the_policy(source):
    """Asking a step with the newest goal and then with the one the node really had must
    leave the policy where the node's single call left it, step after step: scripted:ik
    follows joint goals from its own last target, the ONNX policy keeps views of its
    input buffer."""
    from schemas import messages_pb2
    from tools.bag.check_policy import _answer, _Timed

    checked, reference = load_policy(source, dt=0.01), load_policy(source, dt=0.01)
    old, new = messages_pb2.Goal(id="old"), messages_pb2.Goal(id="new")
    if source == "scripted:ik":
        old.joints.position.extend([0.5, 0, 1.5, 0, 0, 0])
        new.joints.position.extend([-0.5, 0, 1.5, 0, 0, 0])
    else:
        old.tcp.x, old.tcp.y, old.tcp.z = 0.3, 0.15, 0.2
        new.tcp.x, new.tcp.y, new.tcp.z = 0.3, -0.15, 0.3
    for k in range(5):
        state = messages_pb2.JointState(seq=k, position=[0.01 * k, 0, 1.5, 0, 0, 0], tcp=[0.3, 0.0, 0.25])
        recorded = np.asarray(reference.act(Observation.from_state(state, old)))
        error, _replayed, used = _answer(checked, state, [_Timed(new, 2), _Timed(old, 1)], recorded, 1e-12)
        assert used == 1 and float(error.max()) == 0.0, f"step {k}"
