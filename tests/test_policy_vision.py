"""Vision policies: image inputs in the description, frames paired with states by step in the
policy node (real processes: a lockstep robot with a camera, the policy node, the recorder),
stale frames held, and check-policy replaying a bag's frames into the same model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from policy_node.policy.base import CameraFrame, Observation
from policy_node.policy.description import PolicyDescriptionError, load
from policy_node.policy.image_inputs import ImageInput, ImagePreprocessor
from policy_node.policy.load import load_policy
from policy_node.policy.onnx_model import MissingFrame, ModelError
from tests.conftest import HIL, ROOT, poll_until, wait_ready
from tests.nodes.camera_robot import image
from tests.policy_models import VISION_YAML, write_vision_model

ROBOT = str(ROOT / "tests" / "nodes" / "camera_robot.py")
W, H = 32, 24


def vision_folder(tmp_path: Path, yaml: str = VISION_YAML, layout: str = "NCHW") -> Path:
    write_vision_model(tmp_path / "vision.onnx", H, W, layout)
    (tmp_path / "policy.yaml").write_text(yaml)
    return tmp_path


def expected_action(step: int) -> np.ndarray:
    means = image(step, W, H).reshape(-1, 3).astype(np.float32).mean(axis=0) / np.float32(255.0)
    return np.concatenate([means, means]).astype(float)


def test_image_inputs_are_read_and_written_back(tmp_path: Path) -> None:
    desc = load(vision_folder(tmp_path))
    assert desc.images == (ImageInput("front", "image", None, "NCHW", "float32", "rgb", 1 / 255, None, None, 25.0),)
    from policy_node.policy.description import dumps, loads

    assert loads(dumps(desc), tmp_path / "policy.yaml").images == desc.images


@pytest.mark.parametrize("entry, field, hint", [
    ("{camera: Front!}", "images[0].camera", "not a camera name"),
    ("{camera: front, layout: NCWH}", "images[0].layout", "NCHW, NHWC"),
    ("{camera: front, size: [64]}", "images[0].size", "[width, height]"),
    ("{camera: front, mean: [0.5, 0.5, 0.5]}", "images[0]", "both 'mean' and 'std'"),
    ("{camera: front, mean: 0.5, std: [1, 1]}", "images[0].std", "one per channel"),
    ("{camera: front, dtype: uint8, scale: 0.5}", "images[0].dtype", "as they are"),
    ("{input: image}", "images[0]", "missing required field 'camera'"),
    ("{camera: front, max_age: 3}", "images[0].max_age", "did you mean 'max_age_ms'"),
])
def test_bad_image_inputs_name_file_line_and_field(tmp_path: Path, entry: str, field: str, hint: str) -> None:
    text = VISION_YAML.split("images:")[0] + f"images:\n  - {entry}\n"
    with pytest.raises(PolicyDescriptionError) as caught:
        load(vision_folder(tmp_path, text))
    message = str(caught.value)
    assert f"policy.yaml:5: {field}" in message and hint in message, message


def test_a_model_that_disagrees_with_the_image_input_says_how(tmp_path: Path) -> None:
    text = VISION_YAML.replace("channels: rgb", "channels: gray").replace("    layout: NCHW\n", "    size: [64, 48]\n")
    with pytest.raises(ModelError) as caught:
        load_policy(vision_folder(tmp_path, text))
    message = str(caught.value)
    assert "3 channels where gray gives 1" in message and "set size: [32, 24]" in message


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_the_policy_reads_its_camera_frame(tmp_path: Path, layout: str) -> None:
    policy = load_policy(vision_folder(tmp_path, VISION_YAML.replace("NCHW", layout), layout))
    assert [(n.camera, n.max_age_s) for n in policy.requirements.cameras] == [("front", 0.025)]
    assert policy._binding is None  # a frame of a new size reallocates its tensor: image models keep session.run
    obs = Observation(3, np.zeros(6), np.zeros(6))
    with pytest.raises(MissingFrame):
        policy.act(obs)
    obs.images["front"] = CameraFrame("front", image(3, W, H), 0, 3)
    assert np.allclose(policy.act(obs), expected_action(3), atol=1e-6)


def test_preprocessing_resizes_orders_and_normalizes() -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 255, 51
    pre = ImagePreprocessor(ImageInput("c", size=(3, 2), layout="NHWC", channels="bgr", mean=(0.5, 0.5, 0.5),
                                       std=(0.5, 0.5, 0.5)))
    out = pre(rgb)
    assert out.shape == (1, 2, 3, 3) and out.dtype == np.float32
    assert np.allclose(out[0, 0, 0], [(0.2 - 0.5) / 0.5, -1.0, 1.0])  # b, g, r
    gray = ImagePreprocessor(ImageInput("c", dtype="uint8", scale=1.0, channels="gray"))(rgb)
    assert gray.shape == (1, 1, 4, 6) and gray.dtype == np.uint8 and gray[0, 0, 0, 0] == 82


def run_loop(procs, zctx, endpoints, run_dir: Path, folder: Path, *record_args: str) -> tuple[dict, Path, Path]:
    """Recorder + policy node + lockstep camera robot (frames every 3 steps, frame 9 missing)."""
    events = run_dir / "events.jsonl"
    bag = run_dir / "run.mcap"
    recorder = procs.hil("bag", "record", "-o", str(bag), "--run-dir", str(run_dir), "--nice", "0", *record_args)
    # (a budget no loaded machine overruns: the holds checked here are the frames' alone)
    policy = procs.hil("node", "policy", "--model", str(folder), "--run-dir", str(run_dir),
                       "--events-file", str(events), "--budget-us", "200000")
    rec_client = wait_ready(zctx, endpoints, "recorder")
    policy_client = wait_ready(zctx, endpoints, "policy")
    robot = procs.python(ROBOT, str(run_dir), "--steps", "30", "--every", "3", "--period", "0.01", "--size",
                         f"{W}x{H}", "--lockstep", "--skip-frame", "9", "--wait-start", "1.5")
    out, err = robot.communicate(timeout=90)
    assert robot.returncode == 0, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    info = policy_client.info()
    assert info.extra["cameras"] == "front:25ms"
    poll_until(lambda: int(rec_client.info().metrics["received"]) >= 70, "the recorder")
    for client in (policy_client, rec_client):
        client.shutdown("test")
    for child in (policy, recorder):
        child.communicate(timeout=30)
        assert child.returncode == 0
    return summary, bag, events


@pytest.mark.slow
def test_the_policy_node_pairs_each_state_with_the_frame_of_its_step(procs, zctx, endpoints, run_dir, tmp_path):
    folder = vision_folder(tmp_path)
    summary, bag, events = run_loop(procs, zctx, endpoints, run_dir, folder, "--raw-images")
    answers = {seq: (hold, position) for seq, hold, position in summary["commands"]}
    assert sorted(answers) == list(range(30))
    for seq, (hold, position) in answers.items():
        if seq in (9, 10, 11):  # frame 9 never came: frame 6 is 30-50 ms old, over max_age 25 ms
            assert hold, seq
            continue
        assert not hold, seq
        assert np.allclose(position, expected_action(seq - seq % 3), atol=1e-6), seq
    stale = {json.loads(line)["obs_seq"] for line in events.read_text().splitlines()
             if json.loads(line)["code"] == "watchdog.stale_frame"}
    assert stale == {9, 10, 11}  # (a state re-published while the node waited for its frame is held again)

    # The bag replays its frames into the same model: every answer matches exactly.
    check = subprocess.run([HIL, "bag", "check-policy", str(bag), "--model", str(folder), "--json"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    result = json.loads(check.stdout)
    assert result["ok"] and result["steps"] == 27 and result["holds_skipped"] >= 3


@pytest.mark.slow
def test_check_policy_of_a_jpeg_bag_says_the_pixels_differ(procs, zctx, endpoints, run_dir, tmp_path):
    folder = vision_folder(tmp_path)
    _, bag, _ = run_loop(procs, zctx, endpoints, run_dir, folder)
    check = subprocess.run([HIL, "bag", "check-policy", str(bag), "--model", str(folder), "--atol", "0.02"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "record with --raw-images for an exact check" in check.stdout
