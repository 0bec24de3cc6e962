"""The Isaac Sim backend's adapter logic against a fake ``isaacsim``, and its URDF.

Isaac Sim cannot run here (no GPU, not installable from PyPI): these tests
check the calls the backend makes, in what order, and the mapping between
bus joint order and the articulation's DOF order. The URDF it imports is
checked for real by loading it in MuJoCo and comparing with roarm.kinematics.
"""

from __future__ import annotations

import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from roarm.joints import LOWER, MAX_TORQUE, MAX_VELOCITY, NAMES, UPPER, pose
from roarm.kinematics import fk
from schemas.services_pb2 import RandomizationRanges
from sim_node.backend import BackendUnavailable, nominal
from sim_node.backends import make_backend
from sim_node.isaac_backend import KP, IsaacBackend
from sim_node.randomization import sample
from sim_node.urdf import URDF_JOINTS, roarm_m3_urdf

HIL = str(Path(sys.executable).with_name("hil"))


class FakeIsaac:
    """Just enough of Isaac Sim 5.x's standalone API, recording every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.app_started = False
        self.urdf_root: ET.Element | None = None
        # The articulation's DOF order differs from the bus order on purpose.
        self.dof_names = [URDF_JOINTS[n] for n in reversed(NAMES)]
        self.q = np.zeros(6)
        self.qd = np.zeros(6)
        self.drive = np.zeros(6)
        self.masses = np.array([[0.256, 0.0729, 0.0703, 0.0216, 0.01, 0.0154, 0.0029]])
        self.physics_dt = 0.0

    def modules(self) -> dict[str, types.ModuleType]:
        fake = self

        class SimulationApp:
            def __init__(self, config: dict[str, Any]) -> None:
                fake.calls.append(("SimulationApp", config))
                fake.app_started = True

            def close(self) -> None:
                fake.calls.append(("app.close", None))

        def execute(name: str, **kwargs: Any) -> tuple[bool, Any]:
            assert fake.app_started, "omni.kit.commands used before SimulationApp"
            fake.calls.append((name, kwargs))
            if name == "URDFCreateImportConfig":
                return True, types.SimpleNamespace()
            if name == "URDFParseAndImportFile":
                fake.urdf_root = ET.parse(kwargs["urdf_path"]).getroot()
                return True, "/roarm_m3/world"
            raise AssertionError(f"unexpected command {name}")

        class Scene:
            def add(self, obj: Any) -> Any:
                fake.calls.append(("scene.add", obj))
                return obj

        class World:
            def __init__(self, **kwargs: Any) -> None:
                assert fake.app_started, "World created before SimulationApp"
                fake.calls.append(("World", kwargs))
                fake.physics_dt = kwargs["physics_dt"]
                self.scene = Scene()

            def reset(self) -> None:
                fake.calls.append(("world.reset", None))

            def step(self, render: bool = True) -> None:
                fake.calls.append(("world.step", render))
                alpha = fake.physics_dt / 0.02  # a fake drive: first order, 20 ms
                fake.qd = (fake.drive - fake.q) * alpha / fake.physics_dt
                fake.q = fake.q + (fake.drive - fake.q) * alpha

        class Controller:
            def set_gains(self, kps: np.ndarray, kds: np.ndarray) -> None:
                fake.calls.append(("set_gains", (np.array(kps), np.array(kds))))

            def set_max_efforts(self, values: np.ndarray, joint_indices: np.ndarray) -> None:
                fake.calls.append(("set_max_efforts", (np.array(values), np.array(joint_indices))))

        class View:
            def get_body_masses(self) -> np.ndarray:
                return fake.masses.copy()

            def set_body_masses(self, values: np.ndarray) -> None:
                fake.calls.append(("set_body_masses", np.array(values)))

            def set_friction_coefficients(self, values: np.ndarray, joint_indices: np.ndarray) -> None:
                fake.calls.append(("set_friction_coefficients", np.array(values)))

        class SingleArticulation:
            def __init__(self, prim_path: str, name: str) -> None:
                fake.calls.append(("SingleArticulation", prim_path))
                self.dof_names = fake.dof_names
                self._articulation_view = View()
                self._controller = Controller()

            def get_dof_index(self, name: str) -> int:
                return fake.dof_names.index(name)

            def get_articulation_controller(self) -> Controller:
                return self._controller

            def set_joint_positions(self, positions: np.ndarray, joint_indices: np.ndarray) -> None:
                fake.q[np.asarray(joint_indices)] = positions

            def set_joint_velocities(self, velocities: np.ndarray, joint_indices: np.ndarray) -> None:
                fake.qd[np.asarray(joint_indices)] = velocities

            def apply_action(self, action: Any) -> None:
                fake.calls.append(("apply_action", action))
                fake.drive[np.asarray(action.joint_indices)] = action.joint_positions

            def get_joint_positions(self) -> np.ndarray:
                return fake.q.copy()

            def get_joint_velocities(self) -> np.ndarray:
                return fake.qd.copy()

            def get_measured_joint_efforts(self) -> np.ndarray:
                return np.arange(6.0)  # DOF index as effort: shows the mapping

        class ArticulationAction:
            def __init__(self, joint_positions: Any = None, joint_velocities: Any = None,
                         joint_efforts: Any = None, joint_indices: Any = None) -> None:
                self.joint_positions = np.array(joint_positions)
                self.joint_indices = np.array(joint_indices)

        def enable_extension(name: str) -> None:
            fake.calls.append(("enable_extension", name))

        def module(name: str, **attrs: Any) -> types.ModuleType:
            mod = types.ModuleType(name)
            mod.__dict__.update(attrs)
            return mod

        urdf_types = types.SimpleNamespace(UrdfJointTargetType=types.SimpleNamespace(JOINT_DRIVE_POSITION=1))
        return {
            "isaacsim": module("isaacsim", SimulationApp=SimulationApp),
            "omni": module("omni"),
            "omni.kit": module("omni.kit"),
            "omni.kit.commands": module("omni.kit.commands", execute=execute),
            "isaacsim.core": module("isaacsim.core"),
            "isaacsim.core.api": module("isaacsim.core.api", World=World),
            "isaacsim.core.prims": module("isaacsim.core.prims", SingleArticulation=SingleArticulation),
            "isaacsim.core.utils": module("isaacsim.core.utils"),
            "isaacsim.core.utils.extensions": module("isaacsim.core.utils.extensions",
                                                     enable_extension=enable_extension),
            "isaacsim.core.utils.types": module("isaacsim.core.utils.types", ArticulationAction=ArticulationAction),
            "isaacsim.asset": module("isaacsim.asset"),
            "isaacsim.asset.importer": module("isaacsim.asset.importer"),
            "isaacsim.asset.importer.urdf": module("isaacsim.asset.importer.urdf", _urdf=urdf_types),
        }

    def named(self, name: str) -> list[Any]:
        return [args for call, args in self.calls if call == name]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeIsaac:
    isaac = FakeIsaac()
    for name, module in isaac.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    # parent packages expose their children as attributes, as real imports do
    monkeypatch.setattr(sys.modules["omni"], "kit", sys.modules["omni.kit"], raising=False)
    monkeypatch.setattr(sys.modules["omni.kit"], "commands", sys.modules["omni.kit.commands"], raising=False)
    return isaac


def test_connect_starts_headless_app_world_and_imports_the_urdf(fake: FakeIsaac) -> None:
    backend = make_backend("isaac", dt=0.01)
    backend.connect()
    assert fake.calls[0] == ("SimulationApp", {"headless": True})
    world = fake.named("World")[0]
    assert world["physics_dt"] == 0.002 and world["rendering_dt"] == 0.01
    assert fake.named("enable_extension") == ["isaacsim.asset.importer.urdf"]
    (importing,) = fake.named("URDFParseAndImportFile")
    config = importing["import_config"]
    assert config.fix_base and not config.merge_fixed_joints and config.default_drive_type == 1
    assert importing["get_articulation_root"] is True
    assert fake.urdf_root is not None
    joints = {j.get("name"): j.get("type") for j in fake.urdf_root.iter("joint")}
    assert all(joints[URDF_JOINTS[n]] == "revolute" for n in NAMES)
    assert fake.named("SingleArticulation") == ["/roarm_m3/world"]
    assert fake.named("world.reset")
    values, indices = fake.named("set_max_efforts")[0]
    np.testing.assert_allclose(values, MAX_TORQUE)
    np.testing.assert_array_equal(indices, [5, 4, 3, 2, 1, 0])  # bus joint i is DOF 5 - i here
    assert len(backend.model_hash) == 64
    backend.close()
    backend.close()
    assert fake.named("app.close") == [None]


def test_joint_mapping_rate_limit_and_physics_substeps(fake: FakeIsaac) -> None:
    with make_backend("isaac", dt=0.01) as backend:
        backend.reset(pose("ready"), seed=0, randomization=nominal())
        np.testing.assert_allclose(fake.q, pose("ready")[::-1])  # stored in the articulation's order
        state = backend.read_state()
        np.testing.assert_allclose(state.position, pose("ready"))
        np.testing.assert_allclose(state.effort, [5, 4, 3, 2, 1, 0])
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
        assert backend.read_state().position[0] > 0.0


def test_randomization_reaches_gains_masses_and_friction(fake: FakeIsaac) -> None:
    applied = sample(RandomizationRanges(mass_scale=0.3, actuator_gain_scale=0.3, friction_scale=0.3), seed=2)
    with make_backend("isaac") as backend:
        backend.reset(pose("home"), seed=2, randomization=applied)
        kps, _kds = fake.named("set_gains")[-1]
        np.testing.assert_allclose(kps, KP[::-1] * applied.actuator_gain_scale)
        np.testing.assert_allclose(fake.named("set_body_masses")[-1], fake.masses * applied.mass_scale)
        assert fake.named("set_friction_coefficients")


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
    assert model.body_mass.sum() == pytest.approx(0.256 + 0.0729 + 0.0703 + 0.0216 + 0.01 + 0.0154 + 0.0029)
