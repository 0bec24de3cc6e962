"""Train ``policies/isaaclab_reach``: an Isaac Lab rsl_rl run folder, made by the project.

The run folder's ``params/env.yaml`` and ``params/agent.yaml`` are Isaac Lab's
own dumps of the RoArm-M3 reach task (``dump_yaml``, Python tags and all):
the ``policy`` observation group is joint_pos_rel (6) + joint_vel_rel (6) +
pose_command (7: gripper_link position in the root frame and a w, x, y, z
quaternion) + last_action (5) = 24 values; one JointPositionAction drives
the five arm joints with target = default + 0.5 x action; the period is
sim.dt 1/60 s x decimation 2 = 1/30 s; the actor is an ELU MLP [64, 64].

Isaac Lab itself does not run here. The trainer reads the params through the
harness's importer (``policy_node.policy.isaaclab.import_isaaclab``), so
the observation vector it learns from is the one ``hil policy import
isaaclab`` will feed (built by the same ``ObservationBuilder``, actions
mapped by the same ``ActionMapper``), and imitates an inverse-kinematics
expert for gripper_link on MuJoCo at 1/30 s with DAgger, under the same
per-episode physics randomization as the reach model. It then writes
``exported/policy.onnx`` the way rsl_rl's exporter does for an Isaac Lab
2.3 run trained with ``empirical_normalization``: input ``obs`` [1, 24],
the normalizer (Sub, Div), then Gemm and Elu nodes, output ``actions``
[1, 5], opset 18. Two things make imitation work with absolute actions: the
measured velocity and the last action are shuffled across samples in
training (``decorrelate``), and the last units of each hidden layer carry
the joint positions through to the outputs (``EluMlp.with_pass_through``),
so the trained units learn the step toward the goal, not the identity. All numbers are computed as in train_reach (no BLAS, no
CPU-specific kernels): the same seed gives the same file.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from policy_node.policy.action import ActionMapper
from policy_node.policy.base import Goal
from policy_node.policy.description import PolicyDescription
from policy_node.policy.isaaclab import import_isaaclab, load_yaml
from policy_node.policy.observation import ObservationBuilder
from roarm.joints import LOWER, MAX_VELOCITY, UPPER
from roarm.kinematics import body_ik_step, body_position
from sim_node.backends import make_backend
from sim_node.randomization import sample
from tools.training import adam
from tools.training.adam import Minibatches
from tools.training.numerics import elu, matmul
from tools.training.rollout import Backend, step_as_robot
from tools.training.train_reach import RANDOMIZATION, Progress

BODY = "gripper_link"
# The servo's top speed, half of it per step: what the expert moves at (rad per period).
SPEED_FRACTION = 0.5
OPSET = 18


@dataclass(frozen=True)
class IsaacTrainConfig:
    seed: int = 0
    episode_steps: int = 120          # 4 s at 1/30 s
    expert_episodes: int = 120
    dagger_rounds: int = 3
    dagger_episodes: int = 60
    epochs: int = 50
    dagger_epochs: int = 25
    batch: int = 256
    lr: float = 2e-3
    physics_substeps: int = 20        # 1/30 s in MuJoCo steps of 1/600 s


# Inputs that barely vary (the command's constant quaternion) are not blown up by the normalizer.
MIN_INPUT_STD = 0.05
# rsl_rl's EmpiricalNormalization divides by (std + eps).
NORMALIZER_EPS = 1e-2
# Keeps a pass-through unit's value positive (where ELU is the identity): joints are within 2 pi of the default.
PASS_SHIFT = 10.0


@dataclass
class EluMlp:
    """rsl_rl's actor with its empirical normalizer: (x - mean) / (std + eps), then Linear, ELU, Linear, ELU,
    Linear (weights [in, out] here, transposed on export)."""

    mean: np.ndarray
    std: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    # True where a parameter is held fixed in training (the pass-through, see with_pass_through).
    fixed: list[np.ndarray] | None = None

    def with_pass_through(self, inputs: list[int], gains: list[float]) -> EluMlp:
        """Reserve the last ``len(inputs)`` units of every hidden layer to carry those raw inputs to the outputs.

        An absolute action (target = default + 0.5 x action) must reproduce
        the measured joints to a fraction of a percent and add a small step
        toward the goal. An ELU is the identity above zero, so a unit fed
        ``input + PASS_SHIFT`` carries the input unchanged through every layer;
        output k gets ``gains[k]`` times input k from it and the trained units
        learn only the step. The result is still a plain ELU MLP (the same
        Gemm and Elu nodes, with some weights fixed in training).
        """
        n = len(inputs)
        fixed = [np.zeros_like(p, dtype=bool) for p in (*self.weights, *self.biases)]
        layers = len(self.weights)
        for layer in range(layers):
            w, b = self.weights[layer], self.biases[layer]
            fw, fb = fixed[layer], fixed[layers + layer]
            if layer == 0:
                cols = range(w.shape[1] - n, w.shape[1])
                fw[:, cols.start:] = True
                fb[cols.start:] = True
                w[:, cols.start:] = 0.0
                for k, (i, col) in enumerate(zip(inputs, cols)):
                    # undo the normalizer: (x - mean) / (std + eps) * (std + eps) + mean + shift
                    w[i, col] = self.std[i] + np.float32(NORMALIZER_EPS)
                    b[col] = self.mean[i] + np.float32(PASS_SHIFT)
            elif layer < layers - 1:
                start = w.shape[1] - n
                fw[:, start:] = True
                fw[w.shape[0] - n:, :] = True
                fb[start:] = True
                w[:, start:] = 0.0
                w[w.shape[0] - n:, :] = 0.0
                w[w.shape[0] - n:, start:] = np.eye(n, dtype=np.float32)
                b[start:] = 0.0
            else:
                start = w.shape[0] - n
                fw[start:, :] = True
                w[start:, :] = 0.0
                for k in range(n):
                    w[start + k, k] = np.float32(gains[k])
                b[:n] -= np.float32(PASS_SHIFT) * np.asarray(gains, dtype=np.float32)
        self.fixed = fixed
        return self

    @classmethod
    def init(cls, sizes: list[int], rng: np.random.Generator, mean: np.ndarray | None = None,
             std: np.ndarray | None = None) -> EluMlp:
        weights = [rng.normal(0, 1 / math.sqrt(a), (a, b)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
        mean = np.zeros(sizes[0], dtype=np.float32) if mean is None else mean.astype(np.float32)
        std = np.ones(sizes[0], dtype=np.float32) if std is None else std.astype(np.float32)
        return cls(mean, std, weights, [np.zeros(b, dtype=np.float32) for b in sizes[1:]])

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        h = (x - self.mean) / (self.std + np.float32(NORMALIZER_EPS))
        acts = [h]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = matmul(h, w) + b
            if i < len(self.weights) - 1:
                h = elu(h)
            acts.append(h)
        return h, acts


def decorrelate(x: np.ndarray, slices: list[slice], rng: np.random.Generator) -> np.ndarray:
    """``x`` with the columns of ``slices`` taken from other samples (a fresh permutation each).

    The expert acts on joint positions and the goal alone, but in its
    rollouts the measured velocity and the last action predict its next
    action almost perfectly (it moves on smoothly): a learner that copies
    them repeats what it did instead of reaching (imitation's copycat
    problem). Shuffled across samples they keep their spread and lose that
    correlation, so the learner acts on what the expert acts on.
    """
    out = x.copy()
    for part in slices:
        out[:, part] = x[rng.permutation(len(x)), part]
    return out


def _elu_slope(a: np.ndarray) -> np.ndarray:
    """ELU'(z) = 1 for z > 0, else exp(z) = elu(z) + 1."""
    return np.where(a > 0, np.float32(1.0), a + np.float32(1.0))


# The moments' mixing factors this model was trained with (written as 0.1 and 0.001, not 1 - beta).
MIX = (0.1, 0.001)


def fit(mlp: EluMlp, x: np.ndarray, y: np.ndarray, w: np.ndarray, epochs: int, cfg: IsaacTrainConfig,
        rng: np.random.Generator, progress: Callable[[int], None]) -> float:
    """Weighted MSE by Adam on minibatches (a cosine learning rate); the last epoch's mean loss."""
    return adam.fit(mlp.weights, mlp.biases, mlp.forward, _elu_slope, x, y, w, Minibatches(epochs, cfg.batch, cfg.lr),
                    rng, progress, fixed=mlp.fixed, mix=MIX)


# -- the task, as the importer reads it ---------------------------------------------------------------

def task(run_dir: Path) -> tuple[PolicyDescription, dict]:
    """The description ``import_isaaclab`` makes of this run folder, and its params/env.yaml as data.

    The importer needs an exported model to check its shape against the
    observation group: a placeholder of the right shape stands in, in a
    temporary copy of the run folder.
    """
    env = load_yaml(run_dir / "params" / "env.yaml")
    with tempfile.TemporaryDirectory(prefix="isaac-task-") as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(run_dir / "params", copy / "params")
        (copy / "exported").mkdir()
        sizes = _sizes(run_dir)
        export(EluMlp.init(sizes, np.random.default_rng(0)), copy / "exported" / "policy.onnx")
        desc = import_isaaclab(copy, Path(tmp) / "imported")
    return desc, env


def _sizes(run_dir: Path) -> list[int]:
    """Observation size, the actor's hidden sizes (agent.yaml) and the action size, from the params."""
    agent = load_yaml(run_dir / "params" / "agent.yaml")
    env = load_yaml(run_dir / "params" / "env.yaml")
    hidden = [int(h) for h in agent["policy"]["actor_hidden_dims"]]
    joints = env["actions"]["arm_action"]["joint_names"]
    sizes = {"joint_pos_rel": 6, "joint_vel_rel": 6, "generated_commands": 7, "last_action": len(joints)}
    group = env["observations"]["policy"]
    n_obs = sum(sizes[term["func"].split(":")[1]] for term in group.values() if isinstance(term, dict) and "func" in term)
    return [n_obs, *hidden, len(joints)]


def command_ranges(env: dict) -> tuple[np.ndarray, np.ndarray]:
    """The pose command's position ranges (root frame, m): low and high corners."""
    ranges = next(c for c in env["commands"].values() if isinstance(c, dict) and "ranges" in c)["ranges"]
    low = np.array([ranges["pos_x"][0], ranges["pos_y"][0], ranges["pos_z"][0]], dtype=float)
    high = np.array([ranges["pos_x"][1], ranges["pos_y"][1], ranges["pos_z"][1]], dtype=float)
    return low, high


def sample_goal(rng: np.random.Generator, low: np.ndarray, high: np.ndarray, default: np.ndarray) -> np.ndarray:
    """A command position the arm can reach with gripper_link (IK from the default pose within 2 mm)."""
    while True:
        goal = rng.uniform(low, high)
        _, residual = _body_ik(goal, default)
        if residual < 0.002:
            return goal


def _body_ik(goal: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, float]:
    q = start.copy()
    for _ in range(200):
        q = body_ik_step(q, goal, BODY, damping=0.02, max_step=0.2)
        error = float(np.linalg.norm(body_position(q, BODY) - goal))
        if error < 1e-4:
            break
    return q, error


def start_pose(rng: np.random.Generator, default: np.ndarray) -> np.ndarray:
    """Isaac Lab's reset_joints_by_scale (0.5 .. 1.5 x the default), clamped to the limits."""
    return np.clip(default * rng.uniform(0.5, 1.5, size=default.shape), LOWER, UPPER)


# -- rollouts through the harness's adapter ----------------------------------------------------------

class Adapter:
    """Observation vector and joint targets exactly as the policy node will build and map them."""

    def __init__(self, desc: PolicyDescription) -> None:
        self.builder = ObservationBuilder(desc)
        self.mapper = ActionMapper(desc)
        self.default = np.asarray(desc.default_pose, dtype=float)
        self.index = np.asarray(desc.joint_index)
        self.scale = np.asarray(desc.action.scale, dtype=float)

    def reset(self) -> None:
        self.mapper.reset()

    def observe(self, state, goal: np.ndarray) -> np.ndarray:  # noqa: ANN001 - a backend's RobotState
        batch = self.builder.build(state.position, state.velocity, self.mapper.last_action,
                                   Goal(goal, None, BODY), state.tcp)
        return batch[0].astype(np.float32).copy()

    def raw_for(self, target: np.ndarray) -> np.ndarray:
        """The raw action whose mapped targets are ``target`` (offset mode: (target - default) / scale)."""
        return ((target[self.index] - self.default[self.index]) / self.scale).astype(np.float32)


def pass_through(desc: PolicyDescription) -> tuple[list[int], list[float]]:
    """Observation index of each driven joint's joint_pos_rel, and 1 / its action scale (offset actions)."""
    if desc.action.mode != "offset":
        raise ValueError(f"this trainer maps offset actions (Isaac Lab's use_default_offset), not {desc.action.mode!r}")
    start, found = 0, {}
    for term in desc.observation:
        if term.kind == "joint_pos_rel":
            found = {bus: start + k for k, bus in enumerate(term.joints)}
            break
        start += term.size
    missing = [name for name, bus in zip(desc.joints, desc.joint_index) if bus not in found]
    if missing:
        raise ValueError(f"the observation has no joint_pos_rel of {', '.join(missing)}")
    return [found[bus] for bus in desc.joint_index], [1.0 / s for s in desc.action.scale]


def collect(backend: Backend, adapter: Adapter, learner: EluMlp | None, episodes: int, cfg: IsaacTrainConfig,
            rng: np.random.Generator, ranges: tuple[np.ndarray, np.ndarray], progress: Callable[[int], None]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(observation, expert raw action, weight) at every state; the expert drives, or the learner when given.

    States near the goal weigh more: the last millimetres decide the 10 mm bar.
    """
    xs, ys, ws = [], [], []
    step = float(MAX_VELOCITY[0]) * SPEED_FRACTION * backend.dt
    for episode in range(episodes):
        progress(episode)
        goal = sample_goal(rng, *ranges, adapter.default)
        start = start_pose(rng, adapter.default)
        seed = int(rng.integers(1 << 31))
        backend.reset(start, seed=seed, randomization=sample(RANDOMIZATION, seed))
        adapter.reset()
        previous = start.copy()
        for _ in range(cfg.episode_steps):
            state = backend.read_state()
            obs = adapter.observe(state, goal)
            expert = body_ik_step(np.clip(state.position, LOWER, UPPER), goal, BODY, damping=0.05, max_step=step)
            label = adapter.raw_for(expert)
            xs.append(obs)
            ys.append(label)
            error = float(np.linalg.norm(body_position(state.position, BODY) - goal))
            ws.append(1.0 + 0.02 / (error + 0.005))
            raw = label if learner is None else learner.forward(obs[None, :])[0][0]
            target = adapter.mapper(raw, state.position)
            previous = step_as_robot(backend, target, previous)
    return np.asarray(xs, dtype=np.float32), np.asarray(ys, dtype=np.float32), np.asarray(ws, dtype=np.float32)


def evaluate(backend: Backend, adapter: Adapter, act: Callable[[np.ndarray], np.ndarray], goals: list[np.ndarray],
             steps: int) -> np.ndarray:
    """Final gripper_link errors (m) from the default pose toward each goal."""
    errors = []
    for i, goal in enumerate(goals):
        backend.reset(adapter.default, seed=i)
        adapter.reset()
        previous = adapter.default.copy()
        for _ in range(steps):
            state = backend.read_state()
            target = adapter.mapper(act(adapter.observe(state, goal)), state.position)
            previous = step_as_robot(backend, target, previous)
        errors.append(float(np.linalg.norm(body_position(backend.read_state().position, BODY) - goal)))
    return np.asarray(errors)


def mujoco_at(period: float, substeps: int) -> Backend:
    backend = make_backend("mujoco", dt=period, physics_dt=period / substeps)
    backend.connect()
    return backend


def train(run_dir: Path, cfg: IsaacTrainConfig, log: Callable[[str], None] = print) -> tuple[EluMlp, PolicyDescription]:
    """Expert rollouts, behaviour cloning, DAgger rounds; deterministic for ``cfg.seed``."""
    desc, env = task(run_dir)
    if desc.period is None:
        raise ValueError(f"{run_dir}: the run's params give no control period (sim.dt x decimation)")
    rng = np.random.default_rng(cfg.seed)
    adapter = Adapter(desc)
    ranges = command_ranges(env)
    backend = mujoco_at(desc.period, cfg.physics_substeps)
    started = time.monotonic()
    try:
        log(f"task: {desc.observation_size} observations ({', '.join(label for *_, label in desc.layout())}), "
            f"{desc.action_size} actions, period {desc.period:.6g} s")
        log(f"expert rollouts: {cfg.expert_episodes} episodes of {cfg.episode_steps} steps on MuJoCo")
        x, y, w = collect(backend, adapter, None, cfg.expert_episodes, cfg, rng, ranges,
                          Progress(log, "expert episodes", cfg.expert_episodes, started))
        mlp = EluMlp.init(_sizes(run_dir), rng, x.mean(axis=0), np.maximum(x.std(axis=0), MIN_INPUT_STD))
        mlp.with_pass_through(*pass_through(desc))
        copied = [slice(start, stop) for (start, stop, _), term in zip(desc.layout(), desc.observation)
                  if term.kind in ("joint_vel", "joint_vel_rel", "last_action")]
        loss = fit(mlp, decorrelate(x, copied, rng), y, w, cfg.epochs, cfg, rng,
                   Progress(log, "epochs", cfg.epochs, started))
        log(f"behaviour cloning: {len(x)} samples, loss {loss:.5f} ({time.monotonic() - started:.0f} s)")
        for round_ in range(cfg.dagger_rounds):
            xd, yd, wd = collect(backend, adapter, mlp, cfg.dagger_episodes, cfg, rng, ranges,
                                 Progress(log, "DAgger episodes", cfg.dagger_episodes, started))
            x, y, w = np.concatenate([x, xd]), np.concatenate([y, yd]), np.concatenate([w, wd])
            loss = fit(mlp, decorrelate(x, copied, rng), y, w, cfg.dagger_epochs, cfg, rng,
                       Progress(log, "epochs", cfg.dagger_epochs, started))
            log(f"DAgger round {round_ + 1}/{cfg.dagger_rounds}: {len(x)} samples, loss {loss:.5f} "
                f"({time.monotonic() - started:.0f} s)")
    finally:
        backend.close()
    return mlp, desc


def export(mlp: EluMlp, path: Path) -> None:
    """The actor as rsl_rl's exporter writes it: obs [1, N] -> normalizer (Sub, Div) -> Gemm/Elu -> actions [1, M],
    opset 18 (rsl_rl puts the empirical normalizer in front of the actor in the exported graph)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(mlp.mean, "normalizer._mean"),
             numpy_helper.from_array(mlp.std + np.float32(NORMALIZER_EPS), "normalizer._std_eps")]
    nodes = [helper.make_node("Sub", ["obs", "normalizer._mean"], ["/normalizer/Sub_output_0"], name="/normalizer/Sub"),
             helper.make_node("Div", ["/normalizer/Sub_output_0", "normalizer._std_eps"], ["/normalizer/Div_output_0"],
                              name="/normalizer/Div")]
    current = "/normalizer/Div_output_0"
    last = len(mlp.weights) - 1
    for i, (w, b) in enumerate(zip(mlp.weights, mlp.biases)):
        # torch.nn.Linear keeps weight [out, in] and exports Gemm(x, W, b, transB=1).
        inits += [numpy_helper.from_array(np.ascontiguousarray(w.T), f"actor.{2 * i}.weight"),
                  numpy_helper.from_array(b, f"actor.{2 * i}.bias")]
        out = "actions" if i == last else f"/actor/Gemm_{i}_output_0"
        nodes.append(helper.make_node("Gemm", [current, f"actor.{2 * i}.weight", f"actor.{2 * i}.bias"], [out],
                                      name=f"/actor/{2 * i}/Gemm", alpha=1.0, beta=1.0, transB=1))
        if i != last:
            nodes.append(helper.make_node("Elu", [out], [f"/actor/Elu_{i}_output_0"], name=f"/actor/{2 * i + 1}/Elu",
                                          alpha=1.0))
            current = f"/actor/Elu_{i}_output_0"
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, mlp.weights[0].shape[0]])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, mlp.weights[-1].shape[1]])],
        inits,
    )
    model = helper.make_model(graph, producer_name="roarm-hil train-isaaclab-reach", producer_version="1",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
