"""Simulated cameras: real MuJoCo rendering offscreen, and the sim node's frames as real processes.

Rendering needs Mesa's EGL or OSMesa (README, "Cameras"); without them these
tests skip and name the package to install.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import mujoco
import numpy as np
import pytest
import zmq

from bus.endpoints import Endpoints
from bus.pubsub import Subscriber
from bus.service import ServiceError
from bus.topics import IMAGE_MAX_PAYLOAD, JOINT_STATE, QueuePolicy, calibration_topic, compressed_topic, image_topic
from roarm.camera import CameraSpec, body_frame, parse_compact
from roarm.joints import pose
from roarm.robot_client import hide, place
from scenarios.checker import ScenarioError
from scenarios.launch import LaunchError, RunSettings, camera_launches
from scenarios.schema import load
from schemas import messages_pb2
from schemas.foxglove import CameraCalibration, CompressedImage, RawImage
from sim_node.backend import CameraUnsupported, Placement
from sim_node.backends import make_backend
from sim_node.camera import RenderUnavailable, choose_gl
from sim_node.mujoco_backend import MujocoBackend
from tests.conftest import HIL, Procs, poll_until, wait_ready, wait_robot


def gl_or_skip() -> None:
    try:
        choose_gl()
    except RenderUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def backend() -> Iterator[MujocoBackend]:
    gl_or_skip()
    cameras = [CameraSpec("front", width=160, height=120), parse_compact("wrist:mount=link5,w=160,h=120,fov=70")]
    sim = MujocoBackend(dt=0.02, cameras=cameras)
    try:
        sim.connect()
    except RenderUnavailable as exc:
        pytest.skip(str(exc))
    sim.reset(pose("home"), 0, None)
    yield sim
    sim.close()


def render(sim: MujocoBackend, name: str) -> np.ndarray:
    out = np.zeros((120, 160, 3), np.uint8)
    sim.render(name, out)
    return out


def red_box(image: np.ndarray) -> np.ndarray | None:
    """Bounding box (left, top, right, bottom) in pixel edges of the red target, None if not in view."""
    r, g, b = (image[..., i].astype(int) for i in range(3))
    mask = (r > 20) & (g < 0.4 * r) & (b < 0.4 * r)  # the sides in shade too
    if mask.sum() < 4:
        return None
    rows, cols = np.nonzero(mask)
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=float)


def cube_box(spec: CameraSpec, q: np.ndarray, centre: np.ndarray, half: float = 0.015) -> np.ndarray:
    """Where the 30 mm cube at ``centre`` should appear: the box around its projected corners."""
    corners = [centre + half * np.array([sx, sy, sz]) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
    pixels = np.array([project(spec, q, c) for c in corners])
    return np.array([*pixels.min(axis=0), *pixels.max(axis=0)])


def project(spec: CameraSpec, q: np.ndarray, point: np.ndarray) -> tuple[float, float]:
    """Pixel (column, row) of a world point in camera ``spec`` (OpenGL frame: looks along -z, y up)."""
    fx, fy, cx, cy = spec.intrinsics()
    local = np.linalg.inv(spec.world_pose(q)) @ np.append(point, 1.0)
    depth = -local[2]
    assert depth > 0, "the point is behind the camera"
    return cx + fx * local[0] / depth, cy - fy * local[1] / depth


def test_render_is_not_blank_and_changes_when_the_arm_moves(backend: MujocoBackend) -> None:
    before = render(backend, "front")
    assert before.std() > 10, "a blank frame"
    assert len({tuple(p) for p in before.reshape(-1, 3)[::7]}) > 20  # table, arm, background
    target = pose("home").copy()
    target[:2] = [0.8, 0.6]
    for _ in range(60):
        backend.apply_command(target)
        backend.step()
    after = render(backend, "front")
    changed = np.any(np.abs(after.astype(int) - before.astype(int)) > 20, axis=2).mean()
    assert changed > 0.01, f"only {changed:.2%} of the pixels changed when the arm moved"
    assert np.array_equal(render(backend, "front"), after)  # the same state renders the same picture


def test_a_placed_target_appears_where_the_camera_geometry_says(backend: MujocoBackend) -> None:
    assert red_box(render(backend, "front")) is None  # hidden until placed
    point = np.array([0.28, 0.08, 0.015])
    backend.place([Placement("target_red", tuple(point), hidden=False)])
    seen = red_box(render(backend, "front"))
    assert seen is not None
    expected = cube_box(backend.cameras[0], np.zeros(6), point)
    assert np.abs(seen - expected).max() < 1.5, (seen, expected)
    backend.reset(pose("home"), 1, None)  # placements outlive a reset
    assert red_box(render(backend, "front")) is not None
    backend.place([Placement("target_red")])
    assert red_box(render(backend, "front")) is None


def test_link_frames_of_the_camera_geometry_are_mujocos_body_frames(backend: MujocoBackend) -> None:
    rng = np.random.default_rng(4)
    model, data = backend.model, backend.data
    for _ in range(5):
        q = rng.uniform(-1.0, 1.0, 6)
        backend.set_joint_positions(q)
        for name in ("link2", "link5", "gripper_link"):
            body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
            frame = body_frame(name, q)
            np.testing.assert_allclose(frame[:3, 3], data.xpos[body], atol=2e-4)
            if name != "gripper_link":  # the jaw turns with the gripper angle; the camera frame does not
                np.testing.assert_allclose(frame[:3, :3], data.xmat[body].reshape(3, 3), atol=2e-4)


def test_the_wrist_camera_moves_with_link5(backend: MujocoBackend) -> None:
    spec = backend.cameras[1]
    q1 = np.array([0.0, 0.6, 1.2, 1.2, 0.0, 0.0])  # hand pointing down at the table
    backend.set_joint_positions(q1)
    camera = spec.world_pose(q1)
    axis = -camera[:3, 2]
    assert axis[2] < -0.5, "the wrist camera should look down here"
    point = camera[:3, 3] + axis * (0.015 - camera[2, 3]) / axis[2] + camera[:3, 0] * 0.02
    backend.place([Placement("target_red", tuple(point), hidden=False)])
    first = red_box(render(backend, "wrist"))
    expected = cube_box(spec, q1, point)
    assert first is not None and np.abs(first - expected).max() < 1.5, (first, expected)
    front = render(backend, "front")
    q2 = q1 + np.array([0.12, 0.0, 0.0, 0.0, 0.5, 0.0])  # turn the base and roll the hand
    backend.set_joint_positions(q2)
    second = red_box(render(backend, "wrist"))
    expected = cube_box(spec, q2, point)
    assert second is not None and np.abs(second - expected).max() < 1.5, (second, expected)
    assert np.abs(second - first).max() > 10  # it moved in the wrist image
    # the world camera stays where it is: only the arm moved in its picture
    moved = np.any(np.abs(render(backend, "front").astype(int) - front.astype(int)) > 20, axis=2)
    assert 0 < moved.mean() < 0.2


# -- the sim node's frames (real processes) ----------------------------------------------------
CAMERAS = ("eye:w=96,h=72,every=2", "hand:mount=link5,w=64,h=48,every=3,enc=png")


PACE = 6  # steps granted at a time: at most 3 + 2 frames queued


def lockstep_run(procs: Procs, run_dir: Path, zctx: zmq.Context, count: int) -> tuple[list[tuple], dict]:
    """States 0..count-1 of a lockstep run with the scripted responder, and the frames of those steps."""
    endpoints = Endpoints.for_run(run_dir)
    args = [a for spec in CAMERAS for a in ("--camera", spec)]
    procs.hil("node", "sim", "--backend", "mujoco", "--run-dir", str(run_dir), "--deadline-ms", "5000", *args)
    procs.python("-m", "tools.bench.lockstep", "responder", str(run_dir))
    client = wait_robot(zctx, endpoints, 60)
    wait_ready(zctx, endpoints, "policy", 60)
    states = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE], policy=QueuePolicy.QUEUE)
    topics = [image_topic("eye"), compressed_topic("hand"), calibration_topic("eye")]
    frames = Subscriber(zctx, [endpoints["camera"].pub], topics, policy=QueuePolicy.QUEUE,
                        max_frame=IMAGE_MAX_PAYLOAD)
    client.scene([place("target_blue", [0.25, -0.05, 0.015])])
    # A warm-up episode proves both subscriptions are live (a loaded machine
    # joins them late); the measured episode is the second reset's.
    client.reset(pose("home"), 11, scene=[place("goal", [0.2, 0.1, 0.2]), hide("target_red")])
    poll_until(lambda: states.recv(50) is not None and frames.recv(50) is not None, "the warm-up's first frames", 60.0)
    # The measured episode runs PACE steps at a time (the step limit): a frame subscriber
    # keeps 16 frames queued, and a test starved by a loaded machine would lose some.
    granted = PACE
    client.limit(granted)
    since = client.reset(pose("home"), 11, scene=[place("goal", [0.2, 0.1, 0.2]), hide("target_red")]).state.stamp_ns
    got_states: dict[int, tuple] = {}
    got_frames: dict[tuple[str, int], tuple] = {}

    def collect() -> bool:
        nonlocal granted
        if granted < count and all(k in got_states for k in range(granted + 1)):
            granted += PACE
            client.limit(granted)
        for sub, store in ((states, got_states), (frames, got_frames)):
            envelope = sub.recv(50)
            while envelope is not None:
                message = envelope.message
                if isinstance(message, messages_pb2.JointState):
                    if message.stamp_ns >= since:  # this episode's
                        store.setdefault(message.seq, (envelope.sent_ns, message))  # type: ignore[arg-type]
                elif isinstance(message, (RawImage, CompressedImage)):
                    if message.timestamp.seconds * 10**9 + message.timestamp.nanos < since:
                        envelope = sub.recv(0)
                        continue
                    assert envelope.step is not None
                    store.setdefault((envelope.topic, envelope.step), (envelope.sent_ns, message))  # type: ignore
                elif isinstance(message, CameraCalibration):
                    store.setdefault((envelope.topic, -1), (envelope.sent_ns, message))  # type: ignore[arg-type]
                envelope = sub.recv(0)
        return all(k in got_states for k in range(count)) and (compressed_topic("hand"), count - 1 - (count - 1) % 3) \
            in got_frames

    poll_until(collect, f"{count} states and their frames", 120.0)
    client.shutdown("test done")
    return [(k, tuple(got_states[k][1].position)) for k in range(count)], {"states": got_states, "frames": got_frames}


def test_lockstep_frames_come_before_their_state_and_runs_are_bit_identical(
        procs: Procs, zctx: zmq.Context, tmp_path_factory: pytest.TempPathFactory) -> None:
    gl_or_skip()
    count = 40
    first, seen = lockstep_run(procs, Path(tmp_path_factory.mktemp("a", numbered=True)), zctx, count)
    procs.close()
    second, seen2 = lockstep_run(procs, Path(tmp_path_factory.mktemp("b", numbered=True)), zctx, count)
    assert first == second  # the same states
    states, frames = seen["states"], seen["frames"]
    for topic, every, size in ((image_topic("eye"), 2, (96, 72)), (compressed_topic("hand"), 3, (64, 48))):
        steps = sorted(k for (t, k) in frames if t == topic and k < count)
        assert steps == [k for k in range(count) if k % every == 0][:len(steps)] and len(steps) >= count // every
        for k in steps:
            frame_sent, image = frames[(topic, k)]
            state_sent, state = states[k]
            assert frame_sent < state_sent, f"{topic} frame {k} was sent after state {k}"
            assert image.timestamp.seconds * 10**9 + image.timestamp.nanos == state.stamp_ns
            assert image.frame_id == topic.split("/")[1]
            other = seen2["frames"][(topic, k)][1]
            assert hashlib.sha256(image.data).digest() == hashlib.sha256(other.data).digest(), \
                f"{topic} frame {k} differs between two runs of the same seed"
        if topic == image_topic("eye"):
            assert (image.width, image.height, image.encoding, image.step) == (*size, "rgb8", size[0] * 3)
        else:
            assert image.format == "png" and image.data[:4] == b"\x89PNG"
    calibration = frames[(calibration_topic("eye"), -1)][1]
    fx, fy, cx, cy = parse_compact(CAMERAS[0]).intrinsics()
    assert (calibration.width, calibration.height) == (96, 72) and list(calibration.K)[:3] == [fx, 0.0, cx]
    moved = np.array([row[1] for row in first])
    assert np.ptp(moved[:, 0]) > 0.05  # the arm really moved: the frames saw it move


def test_scene_service_places_hides_and_refuses(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                zctx: zmq.Context) -> None:
    procs.hil("node", "sim", "--backend", "mock", "--run-dir", str(run_dir))
    client = wait_robot(zctx, endpoints)
    assert client.info().extra["scene_objects"] == "goal,target_red,target_green,target_blue"
    reply = client.scene()
    assert [o.name for o in reply.objects] == ["goal", "target_red", "target_green", "target_blue"]
    assert all(o.hidden for o in reply.objects)
    reply = client.scene([place("goal", [0.2, 0.0, 0.3])])
    goal = {o.name: o for o in reply.objects}["goal"]
    assert not goal.hidden and list(goal.position) == [0.2, 0.0, 0.3] and list(goal.quat) == [1, 0, 0, 0]
    with pytest.raises(ServiceError, match="no scene object 'target_pink'"):
        client.scene([place("goal", [0.1, 0.1, 0.1]), place("target_pink", [0, 0, 0])])
    with pytest.raises(ServiceError, match="position needs 3 finite values"):
        client.scene([place("target_red", [0.1, float("nan"), 0.1])])
    still = {o.name: o for o in client.scene().objects}["goal"]
    assert list(still.position) == [0.2, 0.0, 0.3]  # a refused call moves nothing
    with pytest.raises(ServiceError, match="quat"):
        client.reset(scene=[place("goal", [0.1, 0.1, 0.1], [1, 1, 0, 0])])


def test_a_camera_on_the_mock_backend_is_a_usage_error(run_dir: Path) -> None:
    done = subprocess.run([HIL, "node", "sim", "--backend", "mock", "--run-dir", str(run_dir), "--camera", "eye"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "the mock backend renders no cameras" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("spec, problem", [
    ("Eye:w=10", "name: 'Eye'"),
    ("eye:w=0", "width: expected a whole number of pixels"),
    ("eye:enc=gif", "encoding: 'gif' is not one of raw, jpeg, png"),
    ("eye:mount=link9", "mount: 'link9' is not world or a body"),
    ("eye:pos=1/2", "pos: expected 3 numbers"),
    ("eye:zoom=2", "zoom: expected key=value"),
])
def test_bad_camera_options_name_the_field(run_dir: Path, spec: str, problem: str) -> None:
    done = subprocess.run([HIL, "node", "sim", "--backend", "mujoco", "--run-dir", str(run_dir), "--camera", spec],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert problem in done.stderr and "Traceback" not in done.stderr


# -- cameras in scenarios ------------------------------------------------------------------------
CAMERA_SCENARIO = """\
name: seen
robot:
  target: mujoco
  dt: 0.02
  cameras:
    - name: eye
      width: 96
      height: 72
      every: 5
      encoding: jpeg
policy:
  scripted: ik
scene:
  target_green: [0.3, -0.1, 0.015]
goals:
  - id: first
    tcp: [0.3, 0.1, 0.2]
    timeout_s: 4
  - id: second
    tcp: [0.28, -0.12, 0.22]
    timeout_s: 4
    scene: {target_red: [0.25, 0.0, 0.015], target_green: hidden}
"""


def test_a_scenario_with_a_camera_runs_and_the_runner_places_the_goal_marker(tmp_path: Path) -> None:
    gl_or_skip()
    scenario = tmp_path / "seen.yaml"
    scenario.write_text(CAMERA_SCENARIO)
    out = tmp_path / "out"
    done = subprocess.run([HIL, "run", str(scenario), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    robot = report["nodes"]["robot"]
    assert "--camera" in robot["argv"] and "eye:mount=world,w=96,h=72,fov=60.0,every=5,enc=jpeg" in robot["argv"]
    info = robot["info"]
    assert json.loads(info["extra"]["cameras"])[0]["name"] == "eye" and info["metrics"]["frames"] >= 3
    placed = json.loads(info["extra"]["scene"])  # as the run left it: at the last goal
    assert placed == {"goal": [0.28, -0.12, 0.22], "target_red": [0.25, 0.0, 0.015]}


BAD_CAMERAS = """\
name: bad
robot:
  target: mujoco
  cameras:
    - name: Eye
      width: 0
    - name: ok
      encoding: gif
      mount: link9
    - name: ok
    - {name: far, fov_deg: 200, lookat: [0, 0], zoom: 2}
policy:
  scripted: ik
scene:
  target_pink: [0, 0, 0]
"""


def test_bad_cameras_in_a_scenario_give_file_line_field_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CAMERAS)
    with pytest.raises(ScenarioError) as caught:
        load(path)
    errors = "\n".join(caught.value.errors)
    for expected in (
        f"{path}:6: robot.cameras[0].width: expected a whole number >= 1, got 0",
        f"{path}:8: robot.cameras[1].encoding: 'gif' is not one of raw, jpeg, png",
        f"{path}:9: robot.cameras[1].mount: 'link9' is not world or a body",
        f"{path}:10: robot.cameras[2].name: 'ok' is already the name of robot.cameras[1]",
        f"{path}:11: robot.cameras[3].lookat: expected 3 numbers, got 2",
        f"{path}:11: robot.cameras[3].zoom: unknown field",
        f"{path}:15: scene.target_pink: unknown field",
    ):
        assert expected in errors, errors
    assert "robot.cameras[0].name" in errors  # 'Eye': upper case is not a camera name
    assert "robot.cameras[3].fov_deg" not in errors or "1..170" in errors


def test_a_real_camera_needs_a_device_on_the_real_arm(tmp_path: Path) -> None:
    path = tmp_path / "hw.yaml"
    path.write_text(CAMERA_SCENARIO.replace("target: mujoco", "target: hw\n  port: /tmp/no-such-port"))
    scenario = load(path)
    settings = RunSettings("hw", "realtime", 0, "/tmp/no-such-port", False, tmp_path, tmp_path)
    with pytest.raises(LaunchError, match="eye: a camera on the real arm needs device:"):
        camera_launches(["hil"], scenario, settings, [])
    with_device = replace(scenario, robot=replace(scenario.robot, cameras=(
        replace(scenario.robot.cameras[0], device="/dev/video0"),)))
    (launch,) = camera_launches(["hil"], with_device, settings, ["--run-dir", "R"])
    assert launch.role == "camera" and launch.argv[:3] == ["hil", "node", "camera"]
    assert launch.argv[3:7] == ["--device", "/dev/video0", "--name", "eye"] and launch.argv[-2:] == ["--run-dir", "R"]


@pytest.mark.parametrize("backend_name", ["mock"])
def test_backends_without_rendering_refuse_cameras_before_starting_anything(backend_name: str) -> None:
    with pytest.raises(CameraUnsupported, match=f"the {backend_name} backend renders no cameras"):
        make_backend(backend_name, dt=0.02, cameras=(CameraSpec("eye"),))
