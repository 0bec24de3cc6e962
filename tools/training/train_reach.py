"""Train ``policies/reach.onnx``: a small MLP that imitates the ``scripted:ik`` expert.

Data comes from the MuJoCo backend driven in-process (no bus), each episode
with its own randomized physics and joint-measurement noise. Plain
behaviour cloning only sees states the expert visits, so a learner that
drifts off them has never been told how to come back; DAgger fixes that: after
a first round on expert rollouts, the learner drives, the expert labels every
state it reached, the data is aggregated and the MLP retrained.

The MLP (numpy, Adam, tanh) maps [joint positions, goal - TCP] to a joint
step in units of the expert's largest step per period; the ONNX graph adds
the input normalisation, so the file is self-contained. Everything is drawn
from one seed, and every number on the way is computed without BLAS or
CPU-specific vector kernels (tools/training/numerics.py, roarm.kinematics'
scalar IK): the same seed gives the same file, byte for byte, on any machine
with the same numpy, MuJoCo and onnx versions (recorded in the file's
metadata as ``roarm.train_env``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from policy_node.policy.base import Observation, Policy
from policy_node.policy.features import ActionMap, Features
from policy_node.policy.scripted import SPEED_FRACTION, Ik
from policy_node.policy.spec import PolicySpec
from roarm.joints import LOWER, MAX_VELOCITY, UPPER, pose
from roarm.kinematics import sample_reachable_goal, sample_task_pose
from schemas.services_pb2 import RandomizationRanges
from sim_node.backends import make_backend
from sim_node.randomization import sample
from tools.training import adam
from tools.training.adam import Minibatches
from tools.training.numerics import matmul, tanh
from tools.training.rollout import Backend, rollout

OBSERVATION = ("position", "tcp_error")
MOVING = 4  # base, shoulder, elbow, wrist move the TCP; roll and gripper are held
# Each training episode draws its physics from these spreads (and noise on the
# measured joints), so the model does not learn one exact arm: the scenario
# runner and the real arm both differ from nominal.
RANDOMIZATION = RandomizationRanges(mass_scale=0.3, damping_scale=0.3, friction_scale=0.3,
                                    actuator_gain_scale=0.15, obs_noise_std=0.002)
# Inputs that barely vary in the data (none should, see start_pose) must not
# be blown up by the normalisation: a floor on the standard deviation.
MIN_INPUT_STD = 0.05


@dataclass(frozen=True)
class TrainConfig:
    """Sizes chosen to train in about a minute of CPU and still meet 18/20 within 15 mm."""

    seed: int = 0
    dt: float = 0.01
    episode_steps: int = 250
    expert_episodes: int = 100
    dagger_rounds: int = 2
    dagger_episodes: int = 50
    hidden: int = 64
    epochs: int = 30
    dagger_epochs: int = 15
    batch: int = 256
    lr: float = 2e-3


@dataclass
class Mlp:
    """Weights of a tanh MLP; ``mean``/``std`` normalise its input."""

    mean: np.ndarray
    std: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray]

    @classmethod
    def init(cls, sizes: list[int], mean: np.ndarray, std: np.ndarray, rng: np.random.Generator) -> Mlp:
        weights = [rng.normal(0, 1 / math.sqrt(a), (a, b)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
        biases = [np.zeros(b, dtype=np.float32) for b in sizes[1:]]
        return cls(mean.astype(np.float32), std.astype(np.float32), weights, biases)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Output and the activations (for backprop)."""
        h = (x - self.mean) / self.std
        acts = [h]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = matmul(h, w) + b
            if i < len(self.weights) - 1:
                h = tanh(h)
            acts.append(h)
        return h, acts

    def params(self) -> list[np.ndarray]:
        return [*self.weights, *self.biases]


def _tanh_slope(a: np.ndarray) -> np.ndarray:
    return 1 - a**2


def fit(mlp: Mlp, x: np.ndarray, y: np.ndarray, w: np.ndarray, epochs: int, cfg: TrainConfig,
        rng: np.random.Generator, progress: Callable[[int], None] = adam.no_progress) -> float:
    """Weighted MSE by Adam on minibatches; returns the last epoch's mean loss."""
    return adam.fit(mlp.weights, mlp.biases, mlp.forward, _tanh_slope, x, y, w, Minibatches(epochs, cfg.batch, cfg.lr),
                    rng, progress)


class MlpPolicy:
    """The MLP as a Policy (same features and action mapping as the ONNX export)."""

    def __init__(self, mlp: Mlp, spec: PolicySpec) -> None:
        self.mlp = mlp
        self.spec = spec
        self.name = "mlp:training"
        self.model_hash = ""
        self._x = np.zeros((1, spec.observation_size), dtype=np.float32)
        self._to_targets = ActionMap(spec)
        self._features = Features(spec)

    def reset(self) -> None:
        """Stateless."""

    def act(self, obs: Observation) -> np.ndarray:
        self._features(obs, self._x[0])
        out, _ = self.mlp.forward(self._x)
        return self._to_targets(out[0].astype(float), obs.position)


def reach_spec(dt: float) -> PolicySpec:
    step = float(MAX_VELOCITY[0] * SPEED_FRACTION * dt)
    return PolicySpec(
        observation=OBSERVATION,
        action_kind="delta",
        action_scale=(step,) * MOVING + (0.0,) * (6 - MOVING),
        dt=dt,
    )


def start_pose(rng: np.random.Generator) -> np.ndarray:
    """Half the episodes start at home (what a reset gives), half anywhere in the task space.

    Roll and gripper start anywhere in their range: they do not move the TCP,
    and a model that saw them constant would read noise on them as a signal.
    """
    start = pose("home") if rng.random() < 0.5 else sample_task_pose(rng)
    start[MOVING:] = rng.uniform(LOWER[MOVING:], UPPER[MOVING:])
    return start


# Long work shows progress: a line at least this often (wall seconds) while collecting or fitting.
PROGRESS_S = 5.0


class Progress:
    """Says how far a long loop got, at most every PROGRESS_S, so a user never waits in silence."""

    def __init__(self, log: Callable[[str], None], what: str, total: int, started: float) -> None:
        self.log, self.what, self.total, self.started = log, what, total, started
        self._next = time.monotonic() + PROGRESS_S

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now >= self._next and done < self.total:
            self._next = now + PROGRESS_S
            self.log(f"  {self.what}: {done}/{self.total} ({now - self.started:.0f} s)")


def collect(backend: Backend, driver: Policy, expert: Ik, spec: PolicySpec, episodes: int, cfg: TrainConfig,
            rng: np.random.Generator, progress: Callable[[int], None] = adam.no_progress) -> tuple[np.ndarray, np.ndarray]:
    """(features, expert step / scale) for every state ``driver`` visits."""
    xs, ys = [], []
    scale = np.asarray(spec.action_scale)[:MOVING]
    buf = np.zeros(spec.observation_size, dtype=np.float32)
    features = Features(spec)
    for episode in range(episodes):
        progress(episode)
        goal = sample_reachable_goal(rng)
        expert.reset()
        seed = int(rng.integers(1 << 31))
        result = rollout(backend, driver, goal, start_pose(rng), cfg.episode_steps,
                         seed=seed, label=expert.act, keep=True, randomization=sample(RANDOMIZATION, seed))
        for obs, target in zip(result.observations, result.targets):
            xs.append(features(obs, buf).copy())
            ys.append((target[:MOVING] - obs.position[:MOVING]) / scale)
    x = np.asarray(xs, dtype=np.float32)
    y = np.zeros((len(ys), 6), dtype=np.float32)
    y[:, :MOVING] = np.asarray(ys)
    return x, y


def weights_for(x: np.ndarray) -> np.ndarray:
    """Weight states near the goal up: the last millimetres decide the 15 mm bar."""
    error = np.linalg.norm(x[:, -3:], axis=1)
    return (1.0 + 0.02 / (error + 0.005)).astype(np.float32)


def evaluate(backend: Backend, policy: Policy, goals: list[np.ndarray], steps: int) -> np.ndarray:
    """Final TCP errors (m) from home toward each goal."""
    return np.array([rollout(backend, policy, g, pose("home"), steps, seed=i).final_error
                     for i, g in enumerate(goals)])


def train(cfg: TrainConfig, log: Callable[[str], None] = print) -> tuple[Mlp, PolicySpec]:
    """Behaviour cloning on expert rollouts, then DAgger rounds; deterministic for ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    spec = reach_spec(cfg.dt)
    expert = Ik(cfg.dt)
    backend = make_backend("mujoco", dt=cfg.dt)
    backend.connect()
    try:
        started = time.monotonic()
        log(f"expert rollouts: {cfg.expert_episodes} episodes of {cfg.episode_steps} steps on MuJoCo (scripted:ik)")
        x, y = collect(backend, Ik(cfg.dt), expert, spec, cfg.expert_episodes, cfg, rng,
                       Progress(log, "expert episodes", cfg.expert_episodes, started))
        std = np.maximum(x.std(axis=0), MIN_INPUT_STD)
        mlp = Mlp.init([x.shape[1], cfg.hidden, cfg.hidden, 6], x.mean(axis=0), std, rng)
        log(f"behaviour cloning: fitting {len(x)} samples, {cfg.epochs} epochs ({time.monotonic() - started:.0f} s)")
        loss = fit(mlp, x, y, weights_for(x), cfg.epochs, cfg, rng, Progress(log, "epochs", cfg.epochs, started))
        log(f"behaviour cloning: {len(x)} samples, loss {loss:.5f} ({time.monotonic() - started:.0f} s)")
        for round_ in range(cfg.dagger_rounds):
            log(f"DAgger round {round_ + 1}/{cfg.dagger_rounds}: the learner drives {cfg.dagger_episodes} episodes, "
                "the expert labels them")
            xd, yd = collect(backend, MlpPolicy(mlp, spec), expert, spec, cfg.dagger_episodes, cfg, rng,
                             Progress(log, "DAgger episodes", cfg.dagger_episodes, started))
            x, y = np.concatenate([x, xd]), np.concatenate([y, yd])
            loss = fit(mlp, x, y, weights_for(x), cfg.dagger_epochs, cfg, rng,
                       Progress(log, "epochs", cfg.dagger_epochs, started))
            log(f"DAgger round {round_ + 1}: {len(x)} samples, loss {loss:.5f} ({time.monotonic() - started:.0f} s)")
    finally:
        backend.close()
    return mlp, spec


def train_env() -> str:
    """The package versions the training's numbers depend on (a different MuJoCo simulates differently)."""
    import mujoco
    import onnx

    return f"numpy {np.__version__}, mujoco {mujoco.__version__}, onnx {onnx.__version__}"


def export(mlp: Mlp, spec: PolicySpec, path: Path, seed: int) -> None:
    """Write the MLP as ONNX (Sub, Div, MatMul, Add, Tanh) with the spec in metadata_props."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(mlp.mean, "obs_mean"), numpy_helper.from_array(mlp.std, "obs_std")]
    nodes = [helper.make_node("Sub", ["observation", "obs_mean"], ["centred"]),
             helper.make_node("Div", ["centred", "obs_std"], ["h0"])]
    last = "h0"
    for i, (w, b) in enumerate(zip(mlp.weights, mlp.biases)):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "action" if i == len(mlp.weights) - 1 else f"h{i + 1}"
        nodes += [helper.make_node("MatMul", [last, f"w{i}"], [f"mm{i}"]),
                  helper.make_node("Add", [f"mm{i}", f"b{i}"], [out if out == "action" else f"pre{i}"])]
        if out != "action":
            nodes.append(helper.make_node("Tanh", [f"pre{i}"], [out]))
        last = out
    graph = helper.make_graph(
        nodes, "reach_mlp",
        [helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", spec.observation_size])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 6])],
        inits,
    )
    # Every field fixed: no timestamp, no version of this package, so the seed alone decides the bytes.
    model = helper.make_model(graph, producer_name="roarm-hil train-reach", producer_version="1",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {**spec.to_metadata(), "roarm.train_seed": str(seed),
                                   "roarm.expert": "scripted:ik (DAgger)", "roarm.train_env": train_env()})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
