"""Python policies (``module:factory``): the stable API, its errors, and a run through ``hil run``.

The shipped example ``policies/python_ik`` stands for a user's policy; the
broken ones are written into a temporary folder as a user would write them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from policy_node.policy.base import CameraFrame
from policy_node.policy.base import Observation as BusObservation
from policy_node.policy.load import load_policy
from policy_node.policy.python import Observation, PythonPolicyError, is_python_source
from roarm.joints import NAMES, pose
from roarm.kinematics import fk
from schemas import messages_pb2
from tests.conftest import HIL, ROOT, Procs

EXAMPLE = ROOT / "policies" / "python_ik" / "policy.py"

RECORDER = """\
import numpy as np

SEEN = []


class Recorder:
    period = None

    def reset(self):
        SEEN.append("reset")

    def act(self, obs):
        SEEN.append(obs)
        return obs.positions + 0.01


def make():
    return Recorder()
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def state(seq: int = 3) -> messages_pb2.JointState:
    q = pose("home")
    return messages_pb2.JointState(seq=seq, names=NAMES, position=q, velocity=np.arange(6) * 0.1, tcp=list(fk(q)))


def cartesian_goal() -> messages_pb2.Goal:
    goal = messages_pb2.Goal(id="left", tolerance=0.01)
    goal.tcp.x, goal.tcp.y, goal.tcp.z, goal.tcp.gripper = 0.3, 0.1, 0.2, float("nan")
    goal.tcp.body = "gripper_link"
    goal.tcp.quat.extend([0.0, 1.0, 0.0, 0.0])
    return goal


@pytest.mark.parametrize("source, expected", [
    ("pkg.mod:make", True), ("mod:make", True), ("dir/file.py:make", True), ("scripted:ik", False),
    ("policies/reach.onnx", False), ("mod:not-a-name", False), ("a folder:make", False),
])
def test_which_sources_are_python(source: str, expected: bool) -> None:
    assert is_python_source(source) is expected


def test_the_user_object_sees_plain_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "recorder.py", RECORDER)
    policy = load_policy(f"{path}:make", dt=0.04)
    assert policy.name == f"python:{path}:make"
    assert policy.model_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    target = policy.act(BusObservation.from_state(state(), cartesian_goal()))
    np.testing.assert_allclose(target, pose("home") + 0.01)
    policy.reset()
    module = __import__("sys").modules[type(policy.user).__module__]  # type: ignore[attr-defined]
    obs = module.SEEN[0]
    assert isinstance(obs, Observation) and module.SEEN[1] == "reset"
    assert obs.step == 3 and obs.period == 0.04 and obs.joint_names == NAMES
    np.testing.assert_allclose(obs.velocities, np.arange(6) * 0.1)
    np.testing.assert_allclose(obs.tcp, fk(pose("home")))
    assert obs.goal is not None and obs.goal.kind == "tcp" and obs.goal.body == "gripper_link"
    np.testing.assert_allclose(obs.goal.position, [0.3, 0.1, 0.2])
    np.testing.assert_allclose(obs.goal.quat, [0.0, 1.0, 0.0, 0.0])
    assert obs.goal.gripper is None and obs.goal.id == "left"


def test_a_declared_period_becomes_the_required_period(tmp_path: Path) -> None:
    path = write(tmp_path, "timed.py", RECORDER.replace("period = None", "period = 0.02"))
    policy = load_policy(f"{path}:make", dt=0.04)
    assert policy.requirements.period == 0.02


def test_a_python_policy_names_its_cameras_and_sees_their_frames(tmp_path: Path) -> None:
    path = write(tmp_path, "looker.py", RECORDER.replace("    period = None\n", "    period = None\n    cameras = ('front',)\n"))
    policy = load_policy(f"{path}:make", dt=0.02)
    assert [(need.camera, need.max_age_s) for need in policy.requirements.cameras] == [("front", 0.1)]
    assert policy.requirements.period is None and "visual" in policy.requirements.goal_kinds
    rgb = np.zeros((48, 64, 3), dtype=np.uint8)
    rgb[10, 20] = (255, 0, 0)
    goal = messages_pb2.Goal(id="red", tolerance=0.015)
    goal.visual.colour = "red"
    policy.act(BusObservation.from_state(state(), goal, images={"front": CameraFrame("front", rgb, 5, step=3)}))
    module = __import__("sys").modules[type(policy.user).__module__]  # type: ignore[attr-defined]
    obs = module.SEEN[-1]
    assert list(obs.images) == ["front"] and obs.images["front"].step == 3
    assert obs.images["front"].rgb is rgb and obs.images["front"].width == 64
    assert obs.goal is not None and obs.goal.kind == "visual" and obs.goal.colour == "red"
    assert obs.goal.position is None and obs.goal.body == "tcp"


LOOKER = """\
import json


class Looker:
    cameras = ("front",)

    def __init__(self):
        self.seen = []

    def reset(self):
        pass

    def act(self, obs):
        frame = obs.images["front"]
        self.seen.append([obs.step, frame.step, list(frame.rgb.shape), frame.intrinsics is not None])
        with open(OUT, "w") as f:
            json.dump(self.seen, f)
        return obs.positions


def make():
    return Looker()
"""

CAMERA_SCENARIO = """\
name: python_camera
robot:
  target: mujoco
  mode: lockstep
  dt: 0.02
  cameras:
    - {name: front, pos: [0.75, 0.0, 0.6], lookat: [0.25, 0.0, 0.0], width: 64, height: 48, fov_deg: 60,
       every: 5, encoding: raw}
policy:
  python: looker.py:make
  args: ["--deadline-ms", "1000"]
goals:
  - id: stay
    joints: {base: 0.0, elbow: 1.5708}
    tolerance_rad: 0.05
    hold_s: 0.3
    timeout_s: 2
"""


def test_a_python_policy_gets_the_simulated_cameras_frames_in_a_run(procs: Procs, tmp_path: Path) -> None:
    """Through the real node on MuJoCo: each state comes with the frame of its step (every 5th) or the one before."""
    seen_file = tmp_path / "seen.json"
    (tmp_path / "looker.py").write_text(LOOKER.replace("OUT", repr(str(seen_file))))
    (tmp_path / "camera.yaml").write_text(CAMERA_SCENARIO)
    out = tmp_path / "out"
    proc = procs.hil("run", str(tmp_path / "camera.yaml"), "--out", str(out), "--no-record")
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stdout.decode() + stderr.decode()
    seen = json.loads(seen_file.read_text())
    assert len(seen) >= 10
    for step, frame_step, shape, calibrated in seen:
        assert shape == [48, 64, 3] and calibrated
        assert step - 5 < frame_step <= step and frame_step % 5 == 0


def test_a_bad_cameras_declaration_is_one_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.py", RECORDER.replace("    period = None\n", "    period = None\n    cameras = [3]\n"))
    with pytest.raises(PythonPolicyError, match="cameras \\[3\\] is not a list of distinct camera names"):
        load_policy(f"{path}:make", dt=0.02)


@pytest.mark.parametrize("text, source, expected", [
    (None, "no_such_module_here:make", "cannot import 'no_such_module_here': no module named 'no_such_module_here'"),
    ("raise RuntimeError('boom')\n", "FILE:make", "importing 'FILE' failed: RuntimeError: boom (at FILE:1)"),
    ("def other():\n    pass\n", "FILE:make", "has no callable 'make'; it defines other"),
    ("def make():\n    raise ValueError('no weights')\n", "FILE:make", "the factory raised ValueError: no weights"),
    ("def make():\n    return 42\n", "FILE:make", "the factory returned int, which has no reset() and no act()"),
    ("class P:\n    def reset(self): pass\n    def act(self): pass\ndef make():\n    return P()\n", "FILE:make",
     "P.act must take one argument (the Observation)"),
    ("class P:\n    period = -1\n    def reset(self): pass\n    def act(self, o): pass\ndef make():\n    return P()\n",
     "FILE:make", "period -1 is not a control period"),
])
def test_a_broken_python_policy_is_one_clear_error(tmp_path: Path, text: str | None, source: str,
                                                     expected: str) -> None:
    path = write(tmp_path, "broken.py", text) if text is not None else tmp_path / "unused.py"
    with pytest.raises(PythonPolicyError) as caught:
        load_policy(source.replace("FILE", str(path)), dt=0.02)
    assert expected.replace("FILE", str(path)) in str(caught.value)


def test_a_wrong_number_of_targets_is_an_error_the_node_turns_into_a_hold(tmp_path: Path) -> None:
    path = write(tmp_path, "short.py", RECORDER.replace("return obs.positions + 0.01", "return [0.0, 1.0]"))
    policy = load_policy(f"{path}:make", dt=0.02)
    with pytest.raises(PythonPolicyError, match="act returned 2 values, expected 6 joint targets"):
        policy.act(BusObservation.from_state(state()))


def test_the_node_refuses_a_broken_factory_without_a_traceback(tmp_path: Path, run_dir: Path) -> None:
    path = write(tmp_path, "broken.py", "def make():\n    return 42\n")
    result = subprocess.run([HIL, "node", "policy", "--policy", f"{path}:make", "--run-dir", str(run_dir)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "cannot start the policy node" in result.stderr and "has no reset() and no act()" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_example_reaches_goals_of_a_run_from_any_folder(procs: Procs, tmp_path: Path) -> None:
    """hil run smoke with the Python example, started in an empty folder: the module comes with the package."""
    out = tmp_path / "out"
    proc = procs.hil("run", "smoke", "--policy", "policies.python_ik.policy:make_policy", "--out", str(out),
                     "--record", cwd=tmp_path)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stdout.decode() + stderr.decode()
    report = json.loads((out / "report.json").read_text())
    assert report["provenance"]["policy"] == "python:policies.python_ik.policy:make_policy"
    assert report["nodes"]["policy"]["info"]["backend"] == "python:policies.python_ik.policy:make_policy"
    # Deterministic: the recorded run replays exactly (the module path works from the repository too).
    check = subprocess.run([HIL, "bag", "check-policy", str(out / "run.mcap"), "--policy",
                            f"{EXAMPLE}:make_policy"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    # The run started once the recorder heard every node: the bag holds it from state 0.
    assert {"robot", "policy"} <= set(report["nodes"]["recorder"]["info"]["extra"]["heard"].split(","))
    assert "starts mid-episode" not in check.stdout, check.stdout
