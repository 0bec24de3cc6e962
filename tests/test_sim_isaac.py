"""The Isaac Sim backend against a strict fake ``isaacsim``, and its URDF.

Isaac Sim cannot run here (no GPU, not installable from PyPI): these tests
drive sim_node/isaac_backend.py against tests/fake_isaacsim.py, which follows
NVIDIA's Isaac Sim 5.x source where it matters (a binding-class import
config, DOF names only after ``world.reset()``, run-time values lost on every
stop, motion computed from the drive type and gains). The expected servo is
read from the MuJoCo model (sim_node/models/roarm_m3.xml) with real MuJoCo,
and the arm on the fake must track like the MuJoCo arm. The URDF the backend
imports is loaded in MuJoCo and compared with roarm.kinematics.
"""

from __future__ import annotations

import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from roarm.camera import CameraSpec, quat_to_matrix
from roarm.joints import LOWER, MAX_TORQUE, MAX_VELOCITY, NAMES, UPPER, pose
from roarm.kinematics import fk
from schemas.services_pb2 import RandomizationRanges
from sim_node.backend import BackendUnavailable, SimBackend, nominal
from sim_node.backends import make_backend
from sim_node.isaac_backend import IsaacBackend
from sim_node.isaac_camera import IsaacCameraError
from sim_node.randomization import sample
from sim_node.urdf import MASSES, URDF_JOINTS, roarm_m3_urdf
from tests.fake_isaacsim import PHYSX_DEFAULT_MASS, FakeIsaac, ImportConfig, install

HIL = str(Path(sys.executable).with_name("hil"))
RAD = 180.0 / math.pi
ARM_MASS = sum(MASSES.values())
# Largest joint-angle difference between the arm on the fake and the MuJoCo
# arm along the same command (rad): the fake drives each joint alone, without
# gravity or coupling, so they differ a little; an acceleration drive with the
# same numbers rings at 1.2 Hz and misses by tenths of a radian.
TRACKING_TOLERANCE = 0.05


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeIsaac:
    return install(FakeIsaac(), monkeypatch)


@pytest.fixture(scope="module")
def mjcf() -> dict[str, np.ndarray]:
    """The MuJoCo model's servo and joint parameters, bus order."""
    mujoco = pytest.importorskip("mujoco")
    backend = make_backend("mujoco")
    backend.connect()
    m = backend.model  # type: ignore[attr-defined]
    joint = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n) for n in NAMES]
    dof = [m.jnt_dofadr[j] for j in joint]
    act = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in NAMES]
    values = {"kp": m.actuator_gainprm[act, 0].copy(), "kv": -m.actuator_biasprm[act, 2].copy(),
              "damping": m.dof_damping[dof].copy(), "armature": m.dof_armature[dof].copy(),
              "frictionloss": m.dof_frictionloss[dof].copy(), "force": m.actuator_forcerange[act, 1].copy()}
    backend.close()
    return values


def test_connect_starts_headless_app_world_and_imports_force_drives(fake: FakeIsaac) -> None:
    backend = make_backend("isaac", dt=0.01)
    backend.connect()
    assert fake.calls[0] == ("SimulationApp", {"headless": True})
    world = fake.named("World")[0]
    assert world["physics_dt"] == 0.002 and world["rendering_dt"] == 0.01
    assert "isaacsim.asset.importer.urdf" in fake.named("enable_extension")
    assert fake.config is not None and isinstance(fake.config, ImportConfig)
    assert fake.config.fix_base and not fake.config.merge_fixed_joints and not fake.config.create_physics_scene
    assert fake.robot is not None and fake.robot.name == "roarm_m3"
    # Every arm joint came into USD with a force drive (the importer's default is acceleration).
    assert [d.usd_drive_type for d in fake.dofs] == ["force"] * 6
    assert [d.drive_type for d in fake.dofs] == ["force"] * 6
    assert fake.named("SingleArticulation")
    assert fake.named("world.reset")
    np.testing.assert_allclose(fake.dof_values("max_force"), MAX_TORQUE)
    assert len(backend.model_hash) == 64
    backend.close()
    backend.close()
    assert fake.named("app.close") == [None]


def test_gains_are_the_mjcf_servo_per_radian_after_every_reset(fake: FakeIsaac, mjcf: dict[str, np.ndarray]) -> None:
    with make_backend("isaac") as backend:
        backend.reset(pose("home"), seed=0, randomization=nominal())
        np.testing.assert_allclose(fake.dof_values("kp"), mjcf["kp"], rtol=1e-6)
        np.testing.assert_allclose(fake.dof_values("kd"), mjcf["kv"], rtol=1e-6)
        # A stop and play (anyone's world.reset()) reloads PhysX from USD: the
        # imported gains must already be the servo's (USD holds them per degree).
        backend._world.reset()  # type: ignore[attr-defined]
        np.testing.assert_allclose(fake.dof_values("kp"), mjcf["kp"], rtol=1e-5)
        np.testing.assert_allclose(fake.dof_values("kd"), mjcf["kv"], rtol=1e-5)
        assert [d.drive_type for d in fake.dofs] == ["force"] * 6
        np.testing.assert_allclose(fake.dof_values("usd_stiffness"), mjcf["kp"] / RAD, rtol=1e-5)
        backend.reset(pose("ready"), seed=1, randomization=nominal())
        np.testing.assert_allclose(fake.dof_values("kp"), mjcf["kp"], rtol=1e-6)
        np.testing.assert_allclose(fake.dof_values("armature"), mjcf["armature"], rtol=1e-6)


def test_joint_mapping_rate_limit_and_physics_substeps(fake: FakeIsaac) -> None:
    with make_backend("isaac", dt=0.01) as backend:
        backend.reset(pose("ready"), seed=0, randomization=nominal())
        np.testing.assert_allclose([d.q for d in fake.dofs], pose("ready")[::-1])  # the articulation's order
        state = backend.read_state()
        np.testing.assert_allclose(state.position, pose("ready"))
        np.testing.assert_allclose(state.tcp, fk(pose("ready")))
        fake.calls.clear()
        target = pose("ready")
        target[0] = 1.0  # the base: far more than one physics step at 4.7 rad/s
        backend.apply_command(target)
        backend.step()
        assert fake.named("world.step") == [False] * 5  # 10 ms of 2 ms physics steps, never rendered
        actions = fake.named("apply_action")
        assert len(actions) == 5
        np.testing.assert_array_equal(actions[0].joint_indices, [5, 4, 3, 2, 1, 0])
        base_targets = [a.joint_positions[0] for a in actions]  # bus order in the action
        np.testing.assert_allclose(np.diff([0.0] + base_targets), MAX_VELOCITY[0] * 0.002)
        state = backend.read_state()
        assert state.position[0] > 0.0
        np.testing.assert_allclose(state.effort, fake.dof_values("effort"))  # bus order
        assert state.effort[0] > 0.0


def _trajectory(backend: SimBackend, start: np.ndarray, target: np.ndarray, steps: int) -> np.ndarray:
    backend.reset(start, seed=0, randomization=nominal())
    backend.apply_command(target)
    out = []
    for _ in range(steps):
        backend.step()
        out.append(backend.read_state().position)
    return np.array(out)


def test_the_arm_tracks_like_the_mujoco_arm(fake: FakeIsaac) -> None:
    pytest.importorskip("mujoco")
    start = pose("home")
    target = np.clip(start + np.array([1.0, 0.5, -0.5, 0.6, 1.2, 0.8]), LOWER, UPPER)
    with make_backend("mujoco") as mujoco_arm:
        expected = _trajectory(mujoco_arm, start, target, 80)
    with make_backend("isaac") as isaac_arm:
        got = _trajectory(isaac_arm, start, target, 80)
    worst = np.max(np.abs(got - expected), axis=0)
    assert np.all(worst < TRACKING_TOLERANCE), f"largest difference per joint (rad): {np.round(worst, 3)}"
    np.testing.assert_allclose(got[-1], target, atol=0.01)


def test_friction_damping_and_armature_as_the_mjcf_has_them(fake: FakeIsaac, mjcf: dict[str, np.ndarray]) -> None:
    applied = sample(RandomizationRanges(friction_scale=0.4, damping_scale=0.4), seed=3)
    assert applied.friction_scale != 1.0 and applied.damping_scale != 1.0
    with make_backend("isaac") as backend:
        backend.reset(pose("home"), seed=3, randomization=applied)
        # Dry friction in effort units (N*m), as MuJoCo's frictionloss.
        np.testing.assert_allclose(fake.dof_values("static_friction"), mjcf["frictionloss"] * applied.friction_scale,
                                   rtol=1e-6)
        np.testing.assert_allclose(fake.dof_values("dynamic_friction"), mjcf["frictionloss"] * applied.friction_scale,
                                   rtol=1e-6)
        # PhysX's unitless friction coefficient is not an effort: left at zero.
        np.testing.assert_allclose(fake.dof_values("friction_coefficient"), 0.0)
        # Joint damping scaled, the servo's own damping (the drive's) not, as in the MuJoCo backend.
        np.testing.assert_allclose(fake.dof_values("viscous_friction"), mjcf["damping"] * applied.damping_scale,
                                   rtol=1e-6)
        np.testing.assert_allclose(fake.dof_values("kd"), mjcf["kv"], rtol=1e-6)
        np.testing.assert_allclose(fake.dof_values("armature"), mjcf["armature"], rtol=1e-6)
        np.testing.assert_allclose(fake.dof_values("max_force"), mjcf["force"], rtol=1e-6)


def test_randomization_reaches_gains_masses_and_inertias(fake: FakeIsaac, mjcf: dict[str, np.ndarray]) -> None:
    applied = sample(RandomizationRanges(mass_scale=0.3, actuator_gain_scale=0.3), seed=2)
    with make_backend("isaac") as backend:
        backend.reset(pose("home"), seed=2, randomization=nominal())
        masses, inertias = fake.masses.copy(), fake.inertias.copy()
        backend.reset(pose("home"), seed=2, randomization=applied)
        np.testing.assert_allclose(fake.dof_values("kp"), mjcf["kp"] * applied.actuator_gain_scale, rtol=1e-6)
        np.testing.assert_allclose(fake.masses, masses * applied.mass_scale)
        np.testing.assert_allclose(fake.inertias, inertias * applied.mass_scale)
        backend.reset(pose("home"), seed=2, randomization=nominal())  # nominal again, not compounded
        np.testing.assert_allclose(fake.masses, masses)
        np.testing.assert_allclose(fake.inertias, inertias)


def test_no_link_is_left_to_physx_default_mass(fake: FakeIsaac) -> None:
    with make_backend("isaac") as backend:
        backend.reset(pose("home"), seed=0, randomization=nominal())
        assert fake.robot is not None
        unnamed = [name for name, link in fake.robot.links.items() if link.mass is None]
        assert not unnamed, f"no inertial, so PhysX picks the mass ({PHYSX_DEFAULT_MASS} kg): {unnamed}"
        assert fake.masses.sum() == pytest.approx(ARM_MASS, abs=1e-3)
        # and the massless frames weigh next to nothing beside the lightest link
        light = [m for name, m in zip(fake.bodies, fake.masses) if name not in MASSES]
        assert light and max(light) < 0.01 * min(MASSES.values())


@pytest.mark.parametrize("version", ["6.0.1-rc.7", "4.5.0"])
def test_other_isaac_versions_are_refused_naming_the_ones_that_work(monkeypatch: pytest.MonkeyPatch,
                                                                    version: str) -> None:
    fake = install(FakeIsaac(version=version), monkeypatch)
    backend = IsaacBackend()
    with pytest.raises(BackendUnavailable) as refused:
        backend.connect()
    message = str(refused.value)
    assert version.split("-")[0] in message and "5.0" in message and "5.1" in message
    assert fake.app_closed  # the app it started is closed again
    assert not fake.named("URDFCreateImportConfig")


def test_the_fake_is_as_strict_as_isaac_sim(fake: FakeIsaac, tmp_path: Path) -> None:
    """The points where the old fake hid a difference from the real 5.x API."""
    config = ImportConfig()
    with pytest.raises(AttributeError):
        config.default_drive_typ = 1  # type: ignore[attr-defined]  # a binding class has fixed fields
    with pytest.raises(TypeError):
        config.default_drive_type = 1  # an enum field takes the enum
    modules = fake.modules()
    modules["isaacsim"].SimulationApp({"headless": True})
    world = modules["isaacsim.core.api"].World(physics_dt=0.002, rendering_dt=0.01)
    _ok, config = modules["omni.kit.commands"].execute("URDFCreateImportConfig")
    config.merge_fixed_joints = False
    path = tmp_path / "roarm_m3.urdf"
    path.write_text(roarm_m3_urdf())
    _ok, robot = modules["omni.kit.commands"].execute("URDFParseFile", urdf_path=str(path), import_config=config)
    _ok, root = modules["omni.kit.commands"].execute("URDFImportRobot", urdf_path=str(path), urdf_robot=robot,
                                                     import_config=config, get_articulation_root=True)
    arm = world.scene.add(modules["isaacsim.core.prims"].SingleArticulation(prim_path=root, name="arm"))
    assert arm.dof_names is None  # not before world.reset()
    arm.get_articulation_controller().set_gains(kps=np.full(6, 60.0), kds=np.full(6, 1.2))
    assert fake.warnings[-1] == "Articulation needs to be initialized." and not fake.named("set_gains")
    world.reset()
    assert arm.dof_names == [URDF_JOINTS[n] for n in reversed(NAMES)]
    # The importer's default: acceleration drives of stiffness 625 per degree.
    assert {d.drive_type for d in fake.dofs} == {"acceleration"}
    np.testing.assert_allclose(fake.dof_values("kp"), 625.0 * RAD)
    arm.get_articulation_controller().set_gains(kps=np.full(6, 60.0), kds=np.full(6, 1.2))
    np.testing.assert_allclose(fake.dof_values("kp"), 60.0)
    world.reset()  # a stop drops run-time gains
    np.testing.assert_allclose(fake.dof_values("kp"), 625.0 * RAD)
    # An acceleration drive moves the same whatever the inertia; a force drive
    # is a torque, so the same N*m/rad gains move a heavier joint less.
    moved = {}
    for drive in ("acceleration", "force"):
        for armature in (0.01, 1.0):
            world.reset()
            arm.get_articulation_controller().set_gains(kps=np.full(6, 60.0), kds=np.full(6, 1.2))
            for dof in fake.dofs:
                dof.drive_type, dof.armature = drive, armature
            arm.apply_action(modules["isaacsim.core.utils.types"].ArticulationAction(joint_positions=np.full(6, 0.5)))
            path = []
            for _ in range(100):  # 0.2 s
                world.step(render=False)
                path.append([d.q for d in fake.dofs])
            moved[drive, armature] = np.array(path)
    np.testing.assert_allclose(moved["acceleration", 0.01], moved["acceleration", 1.0])
    assert np.min(np.max(np.abs(moved["force", 0.01] - moved["force", 1.0]), axis=0)) > 0.1
    assert np.min(np.max(np.abs(moved["force", 0.01] - moved["acceleration", 0.01]), axis=0)) > 0.1


def test_without_isaac_sim_the_error_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "isaacsim", None)  # import fails as when absent
    backend = IsaacBackend()
    with pytest.raises(BackendUnavailable, match=r"\./python\.sh -m sim_node --backend isaac"):
        backend.connect()


def test_cli_refuses_isaac_here_with_a_clear_message(tmp_path: Path) -> None:
    try:
        import isaacsim  # noqa: F401
        pytest.skip("Isaac Sim is installed here")
    except ImportError:
        pass
    run = subprocess.run([HIL, "node", "sim", "--backend", "isaac", "--run-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "Isaac Sim" in run.stderr and "python.sh" in run.stderr and "Traceback" not in run.stderr


def test_urdf_loads_in_mujoco_and_matches_the_kinematics() -> None:
    mujoco = pytest.importorskip("mujoco")
    text = roarm_m3_urdf().replace('<robot name="roarm_m3">',
                                   '<robot name="roarm_m3"><mujoco><compiler fusestatic="false"/></mujoco>')
    model = mujoco.MjModel.from_xml_string(text)
    data = mujoco.MjData(model)
    qpos = [model.joint(URDF_JOINTS[n]).qposadr[0] for n in NAMES]
    tcp = model.body("hand_tcp").id
    for joint, lo, hi in zip(NAMES, LOWER, UPPER):
        assert tuple(model.joint(URDF_JOINTS[joint]).range) == pytest.approx((lo, hi), abs=1e-5)
    rng = np.random.default_rng(5)
    for _ in range(100):
        q = rng.uniform(LOWER, UPPER)
        data.qpos[qpos] = q
        mujoco.mj_kinematics(model, data)
        np.testing.assert_allclose(data.xpos[tcp], fk(q), atol=1e-6)
    assert model.body_mass.sum() == pytest.approx(ARM_MASS, abs=1e-4)
    # every link carries an inertial (a massless one would get PhysX's default mass in Isaac)
    assert all(link.find("inertial") is not None for link in ET.fromstring(roarm_m3_urdf()).iter("link"))


# -- cameras (isaacsim.sensors.camera) -------------------------------------------------------
# A world camera, a wrist camera and one on the jaw, of different shapes and fields of view.
CAMERAS = (CameraSpec("front", width=64, height=48, fov_deg=55.0),
           CameraSpec("wrist", mount="link5", width=40, height=30, fov_deg=75.0, every=2),
           CameraSpec("jaw", mount="gripper_link", pos=(0.0, 0.01, 0.02), lookat=(0.1, 0.0, 0.05), width=32,
                      height=32, fov_deg=40.0),
           CameraSpec("elbow", mount="link3", quat=(0.5, 0.5, -0.5, 0.5), width=24, height=36, fov_deg=90.0))


def _fake_camera(fake: FakeIsaac, name: str) -> Any:
    (camera,) = [c for path, c in fake.cameras.items() if path.endswith(f"/camera_{name}")]
    return camera


def _pose_in_usd_axes(camera: Any) -> np.ndarray:
    """The fake camera's world pose now, from the public getter, with USD's camera axes."""
    position, quat = camera.get_world_pose(camera_axes="usd")
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = quat_to_matrix(np.asarray(quat)), position
    return out


def test_cameras_are_made_before_the_play_and_initialized_after_it(fake: FakeIsaac) -> None:
    with make_backend("isaac", cameras=CAMERAS) as backend:
        assert backend.renders
        order = [call for call, _ in fake.calls if call in ("Camera", "world.reset", "Camera.initialize")]
        assert order == ["Camera"] * 4 + ["world.reset"] + ["Camera.initialize"] * 4
        assert "isaacsim.sensors.camera" in fake.named("enable_extension")
        for spec in CAMERAS:
            camera = _fake_camera(fake, spec.name)
            assert camera.get_resolution() == (spec.width, spec.height)
            parent = "/roarm_cameras" if spec.mount == "world" else f"{fake.robot_prim}/{spec.mount}"
            assert camera.parent_path == parent, "a body camera is a child of its link prim, so it follows it"
            assert camera.get_rgba().shape == (spec.height, spec.width, 4)  # first frame rendered in connect
        assert backend.physics_info["render"] == "isaacsim.sensors.camera"
    assert sorted(fake.named("Camera.destroy")) == sorted(fake.cameras)


def test_each_camera_has_the_specs_intrinsics_and_square_pixels(fake: FakeIsaac) -> None:
    with make_backend("isaac", cameras=CAMERAS):
        for spec in CAMERAS:
            camera = _fake_camera(fake, spec.name)
            fx, fy, cx, cy = camera.implied_intrinsics()
            np.testing.assert_allclose((fx, fy, cx, cy), spec.intrinsics(), rtol=1e-6)
            assert fx == pytest.approx(fy, rel=1e-6)  # square pixels
            focal, vertical = camera.get_focal_length(), camera.get_vertical_aperture()
            assert math.degrees(2 * math.atan(vertical / (2 * focal))) == pytest.approx(spec.fov_deg, rel=1e-6)
            assert math.degrees(camera.get_horizontal_fov()) == pytest.approx(spec.fov_x_deg, rel=1e-6)
            near, _far = camera.get_clipping_range()
            assert near <= 0.01, f"{spec.name}: a near clip of {near} m hides what a wrist camera sees"


def test_camera_poses_are_the_specs_at_any_joint_angles(fake: FakeIsaac) -> None:
    rng = np.random.default_rng(7)
    with make_backend("isaac", cameras=CAMERAS) as backend:
        for _ in range(20):
            q = rng.uniform(LOWER, UPPER)
            q[5] = 0.0  # CameraSpec.world_pose places gripper_link with the jaw closed
            backend.reset(q, seed=0, randomization=nominal())
            for spec in CAMERAS:
                expected = spec.world_pose(q)
                np.testing.assert_allclose(_pose_in_usd_axes(_fake_camera(fake, spec.name)), expected, atol=1e-9,
                                           err_msg=f"camera {spec.name} at q={np.round(q, 3)}")


def test_a_frame_is_rendered_after_the_state_once_for_all_cameras(fake: FakeIsaac) -> None:
    with make_backend("isaac", cameras=CAMERAS) as backend:
        backend.reset(pose("ready"), seed=0, randomization=nominal())
        target = pose("ready")
        target[[0, 3, 4]] += (0.4, -0.3, 0.5)
        backend.apply_command(target)
        for _ in range(3):
            backend.step()
            fake.calls.clear()
            frames = {}
            for spec in CAMERAS:
                frames[spec.name] = np.zeros((spec.height, spec.width, 3), np.uint8)
                backend.render(spec.name, frames[spec.name])
            assert fake.named("world.render") == [None], "one render per state, after the physics of the step"
            assert fake.named("world.step") == []  # rendering steps no physics
            q = backend.read_state().position
            wrist = _fake_camera(fake, "wrist")
            np.testing.assert_allclose(wrist.rendered_pose, CAMERAS[1].world_pose(q), atol=1e-9)
            for spec in CAMERAS:
                out = frames[spec.name]  # RGB of the frame just rendered, rows top down, alpha dropped
                assert np.array_equal(out[:, :, 0], np.broadcast_to(np.arange(spec.width) % 251, out.shape[:2]))
                assert np.array_equal(out[:, :, 1], np.broadcast_to((np.arange(spec.height) % 241)[:, None],
                                                                   out.shape[:2]))
                assert np.all(out[:, :, 2] == fake.frames_rendered % 256)
        backend.render("wrist", frames["wrist"])
        assert fake.named("world.render") == [None]  # the same state is not rendered twice
        backend.reset(pose("home"), seed=0, randomization=nominal())
        backend.render("wrist", frames["wrist"])
        assert len(fake.named("world.render")) == 2  # a reset is a new state


def test_camera_mistakes_are_clear_errors(fake: FakeIsaac) -> None:
    backend = make_backend("isaac", cameras=CAMERAS[:1])
    with pytest.raises(RuntimeError, match="before connect"):
        backend.render("front", np.zeros((48, 64, 3), np.uint8))
    with backend:
        with pytest.raises(KeyError, match="no camera 'back'.*front"):
            backend.render("back", np.zeros((48, 64, 3), np.uint8))
        camera = _fake_camera(fake, "front")
        camera._frame = np.empty((0,), np.uint8)  # as after a new initialize(), before its first render
        camera._annotators.clear()
        with pytest.raises(IsaacCameraError, match="camera 'front': Isaac Sim has no frame"):
            backend.render("front", np.zeros((48, 64, 3), np.uint8))


def test_the_fake_camera_is_as_strict_as_isaac_sim(fake: FakeIsaac, tmp_path: Path) -> None:
    """The points where a camera backend could go wrong against the real 5.x API."""
    modules = fake.modules()
    modules["isaacsim"].SimulationApp({"headless": True})
    world = modules["isaacsim.core.api"].World(physics_dt=0.002, rendering_dt=0.01)
    camera_class = modules["isaacsim.sensors.camera"].Camera
    camera = camera_class(prim_path="/cams/eye", resolution=(40, 30))
    # A new camera looks along the world's +x (identity in the *world* camera axes) with square pixels.
    position, quat = camera.get_world_pose()
    np.testing.assert_allclose(quat, [1, 0, 0, 0], atol=1e-12)
    assert camera.get_vertical_aperture() == pytest.approx(camera.get_horizontal_aperture() * 30 / 40)
    assert camera.get_clipping_range() == (1.0, 1000000.0)  # USD's fallback: 1 m near
    # The pose methods default to camera_axes="world": a USD quaternion given without "usd" turns the camera.
    looking_down = (0.0, 1.0, 0.0, 0.0)  # a half turn about x
    camera.set_local_pose(orientation=looking_down)
    turned = _pose_in_usd_axes(camera)[:3, :3]
    camera.set_local_pose(orientation=looking_down, camera_axes="usd")
    assert not np.allclose(turned, _pose_in_usd_axes(camera)[:3, :3])
    np.testing.assert_allclose(_pose_in_usd_axes(camera)[:3, :3], quat_to_matrix(np.array(looking_down)), atol=1e-12)
    with pytest.raises(Exception, match="not supported"):
        camera.set_world_pose(orientation=looking_down, camera_axes="opengl")
    # No rgb annotator before initialize(), which comes after a reset of the world.
    assert camera.get_rgba() is None and "Annotator 'rgb' not attached" in fake.warnings[-1]
    with pytest.raises(AssertionError, match="after a reset of the world"):
        camera.initialize()
    # (a robot for the stage, so world.reset() can play)
    _ok, config = modules["omni.kit.commands"].execute("URDFCreateImportConfig")
    config.merge_fixed_joints = False
    path = tmp_path / "roarm_m3.urdf"
    path.write_text(roarm_m3_urdf())
    _ok, robot = modules["omni.kit.commands"].execute("URDFParseFile", urdf_path=str(path), import_config=config)
    modules["omni.kit.commands"].execute("URDFImportRobot", urdf_path=str(path), urdf_robot=robot,
                                         import_config=config, get_articulation_root=True)
    with pytest.raises(Exception, match="does not correspond to a Camera prim"):
        camera_class(prim_path="/roarm_m3/link5")
    world.reset()
    camera.initialize()
    assert camera.get_rgba().size == 0  # empty until rendered
    world.step(render=False)
    assert camera.get_rgba().size == 0
    world.render()
    rgba = camera.get_rgba()
    assert rgba.shape == (30, 40, 4) and rgba.dtype == np.uint8  # rows are the height
    # A camera under a link prim keeps its local pose and moves with the link.
    wrist = camera_class(prim_path="/roarm_m3/link5/camera_w", resolution=(8, 8))
    wrist.set_local_pose(translation=(0.0, 0.0, 0.05), orientation=(1.0, 0.0, 0.0, 0.0), camera_axes="usd")
    before = _pose_in_usd_axes(wrist)
    fake.dofs[1].q = 0.7  # the roll joint (the DOF order is the bus order reversed)
    after = _pose_in_usd_axes(wrist)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(wrist.get_local_pose(camera_axes="usd")[0], (0.0, 0.0, 0.05))
    np.testing.assert_allclose(after, fake.prim_world("/roarm_m3/link5") @ _translation(0.05), atol=1e-12)
    # A camera under a prim that does not exist stays at the origin whatever the arm does.
    lost = camera_class(prim_path="/roarm_m3/link9/camera_x", translation=(0.0, 0.0, 0.05),
                        orientation=(1.0, 0.0, 0.0, 0.0))
    np.testing.assert_allclose(lost.get_world_pose()[0], (0.0, 0.0, 0.05))


def _translation(z: float) -> np.ndarray:
    out = np.eye(4)
    out[2, 3] = z
    return out
