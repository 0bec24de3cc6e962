"""Two example policy folders made from the shipped reach MLP, as other tools would have exported it.

- ``policies/plain_reach/``: a plain ONNX (input ``obs`` [1, 9], output
  ``actions`` [1, 6], no metadata at all) and a hand-written ``policy.yaml``:
  what a user with a model from anywhere brings.
- ``policies/sb3_reach/``: a Stable-Baselines3-style export, as SB3's "Export
  to ONNX" recipe writes a PPO policy: input ``input`` [batch, 9] and three
  outputs ``actions``, ``values``, ``log_prob``; the observation
  normalization is not in the graph but in VecNormalize's statistics
  (``obs_rms.mean``, ``obs_rms.var``, ``epsilon``, ``clip_obs``), which go
  into ``policy.yaml``'s ``normalize``.

Both compute exactly the reach MLP (policies/reach.onnx: joint positions and
goal - TCP in, a joint step in units of the expert's largest step out), so
each must reach the same goals; ``make`` writes them from that file
(``python -m tools.training.examples``), deterministically.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from policy_node.policy.description import render

VEC_NORMALIZE_EPSILON = 1e-8
VEC_NORMALIZE_CLIP = 10.0
# SB3's PPO keeps log_std per action dimension; the exported log_prob is that of the mean action.
LOG_STD = -1.0


def reach_parts(reach: Path) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray], dict[str, str]]:
    """(input mean, input std, weights, biases, metadata) of the reach MLP."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(reach))
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    layers = sum(1 for name in values if name.startswith("w"))
    weights = [values[f"w{i}"] for i in range(layers)]
    biases = [values[f"b{i}"] for i in range(layers)]
    return values["obs_mean"], values["obs_std"], weights, biases, {p.key: p.value for p in model.metadata_props}


def _mlp_nodes(source: str, weights: list[np.ndarray], biases: list[np.ndarray], output: str) -> tuple[list, list, str]:
    """MatMul/Add/Tanh layers from ``source``; returns nodes, initializers and the last hidden activation's name."""
    from onnx import helper, numpy_helper

    nodes, inits, current, hidden = [], [], source, source
    for i, (w, b) in enumerate(zip(weights, biases)):
        inits += [numpy_helper.from_array(w, f"mlp.{i}.weight"), numpy_helper.from_array(b, f"mlp.{i}.bias")]
        last = i == len(weights) - 1
        nodes += [helper.make_node("MatMul", [current, f"mlp.{i}.weight"], [f"mm{i}"]),
                  helper.make_node("Add", [f"mm{i}", f"mlp.{i}.bias"], [output if last else f"pre{i}"])]
        if not last:
            nodes.append(helper.make_node("Tanh", [f"pre{i}"], [f"h{i}"]))
            current = hidden = f"h{i}"
    return nodes, inits, hidden


def _save(model: object, path: Path) -> None:
    import onnx

    model.ir_version = 8  # type: ignore[attr-defined]
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def make_plain(reach: Path, out: Path) -> None:
    """``out``: the reach MLP with its normalization inside, no metadata, ``obs`` -> ``actions``."""
    from onnx import TensorProto, helper, numpy_helper

    mean, std, weights, biases, _ = reach_parts(reach)
    n_in, n_out = weights[0].shape[0], weights[-1].shape[1]
    nodes = [helper.make_node("Sub", ["obs", "obs_mean"], ["centred"]),
             helper.make_node("Div", ["centred", "obs_std"], ["normalized"])]
    mlp, inits, _ = _mlp_nodes("normalized", weights, biases, "actions")
    graph = helper.make_graph(
        nodes + mlp, "plain_reach", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, n_out])],
        [numpy_helper.from_array(mean, "obs_mean"), numpy_helper.from_array(std, "obs_std"), *inits])
    _save(helper.make_model(graph, producer_name="pytorch", producer_version="2.5.1",
                            opset_imports=[helper.make_opsetid("", 17)]), out)


def make_sb3(reach: Path, out: Path) -> dict[str, list[float] | float]:
    """``out``: the reach MLP as SB3 exports a PPO policy (normalization outside); returns VecNormalize's stats."""
    from onnx import TensorProto, helper, numpy_helper

    mean, std, weights, biases, _ = reach_parts(reach)
    n_in, n_out = weights[0].shape[0], weights[-1].shape[1]
    mlp, inits, hidden = _mlp_nodes("input", weights, biases, "actions")
    hidden_size = weights[-1].shape[0]
    # The value head and the log-probability of the deterministic action, as a PPO export carries them.
    value_w = (np.arange(hidden_size, dtype=np.float32) % 7 - 3) / np.float32(100)
    constant = np.float32(-n_out * (LOG_STD + 0.5 * math.log(2 * math.pi)))
    nodes = mlp + [
        helper.make_node("MatMul", [hidden, "value_net.weight"], ["value_mm"]),
        helper.make_node("Add", ["value_mm", "value_net.bias"], ["values"]),
        helper.make_node("ReduceSum", ["zeros_like_actions", "sum_axes"], ["log_prob_zero"], keepdims=0),
        helper.make_node("Mul", ["actions", "zero"], ["zeros_like_actions"]),
        helper.make_node("Add", ["log_prob_zero", "log_prob_constant"], ["log_prob"]),
    ]
    inits += [numpy_helper.from_array(value_w.reshape(hidden_size, 1), "value_net.weight"),
              numpy_helper.from_array(np.zeros(1, dtype=np.float32), "value_net.bias"),
              numpy_helper.from_array(np.zeros(1, dtype=np.float32), "zero"),
              numpy_helper.from_array(np.array([1], dtype=np.int64), "sum_axes"),
              numpy_helper.from_array(np.array(constant, dtype=np.float32), "log_prob_constant")]
    graph = helper.make_graph(
        _topological(nodes), "sb3_ppo_reach",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, ["batch", n_out]),
         helper.make_tensor_value_info("values", TensorProto.FLOAT, ["batch", 1]),
         helper.make_tensor_value_info("log_prob", TensorProto.FLOAT, ["batch"])], inits)
    _save(helper.make_model(graph, producer_name="pytorch", producer_version="2.5.1",
                            opset_imports=[helper.make_opsetid("", 17)]), out)
    # VecNormalize divides by sqrt(var + epsilon): the variance that gives the reach MLP's std.
    var = std.astype(np.float64) ** 2 - VEC_NORMALIZE_EPSILON
    return {"mean": [float(v) for v in mean], "var": [float(v) for v in var], "epsilon": VEC_NORMALIZE_EPSILON,
            "clip": VEC_NORMALIZE_CLIP}


def _topological(nodes: list) -> list:
    """Nodes ordered so every input is produced before it is used (ONNX requires it)."""
    produced: set[str] = {"input", "actions_unused"}
    initial = {name for node in nodes for name in node.input}
    produced |= {name for name in initial if not any(name in n.output for n in nodes)}
    ordered, waiting = [], list(nodes)
    while waiting:
        for node in waiting:
            if all(name in produced for name in node.input):
                ordered.append(node)
                produced |= set(node.output)
                waiting.remove(node)
                break
        else:
            raise ValueError("the example graph has a cycle")
    return ordered


SB3_HEADER = """\
A Stable-Baselines3 PPO policy exported with SB3's "Export to ONNX" recipe
(OnnxableSB3Policy: input "input", outputs actions, values, log_prob), trained
with VecNormalize. The normalization is not in the graph: its statistics are
copied here from the saved VecNormalize (vec_normalize.pkl):
  venv = VecNormalize.load("vec_normalize.pkl", env)
  mean: venv.obs_rms.mean.tolist()   var: venv.obs_rms.var.tolist()
  epsilon: venv.epsilon               clip: venv.clip_obs
(The network is the shipped reach MLP re-exported this way by
tools/training/examples.py, so it reaches what reach.onnx reaches.)"""


def make(root: Path) -> None:
    """Write both examples' models (and the SB3 policy.yaml, whose numbers come from the model) under ``root``."""
    reach = root / "policies" / "reach.onnx"
    make_plain(reach, root / "policies" / "plain_reach" / "policy.onnx")
    stats = make_sb3(reach, root / "policies" / "sb3_reach" / "policy.onnx")
    _, _, weights, _, meta = reach_parts(reach)
    scale = [float(v) for v in __import__("json").loads(meta["roarm.action_scale"])]
    data = {
        "version": 1,
        "model": {"file": "policy.onnx", "input": "input", "output": "actions", "batch": "dynamic"},
        "period": float(meta["roarm.dt"]),
        "joints": ["base", "shoulder", "elbow", "wrist", "roll", "gripper"],
        "observation": ["joint_pos", "tcp_error"],
        "normalize": stats,
        "action": {"mode": "delta", "scale": scale},
    }
    (root / "policies" / "sb3_reach" / "policy.yaml").write_text(render(data, SB3_HEADER), encoding="utf-8")


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
