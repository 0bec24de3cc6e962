"""Real ONNX files for the bring-your-own-policy tests, built with onnx.helper (no training).

``mlp`` is laid out like rsl_rl's exporter writes an Isaac Lab actor: input
``obs`` [1, N], ELU hidden layers, output ``actions``; ``recurrent`` is a
one-step state update with an ``h_in`` -> ``h_out`` pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def mlp(path: Path, n_in: int, n_out: int, hidden: Sequence[int] = (64, 64), *, seed: int = 0,
        batch: int | str = 1, input_name: str = "obs", outputs: Sequence[str] = ("actions",),
        metadata: Mapping[str, str] | None = None, opset: int = 18) -> list[np.ndarray]:
    """Write the model; returns its weights and biases [W0, b0, W1, b1, ...] for a numpy reference.

    Extra names in ``outputs`` (SB3's ``values``, ``log_prob``) are further
    outputs computed from the first.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    sizes = [n_in, *hidden, n_out]
    params: list[np.ndarray] = []
    nodes, inits = [], []
    current = input_name
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = (rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32)
        bias = (0.1 * rng.normal(size=b)).astype(np.float32)
        params += [w, bias]
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        last = i == len(sizes) - 2
        nodes += [helper.make_node("MatMul", [current, f"w{i}"], [f"mm{i}"]),
                  helper.make_node("Add", [f"mm{i}", f"b{i}"], [outputs[0] if last else f"pre{i}"])]
        if not last:
            nodes.append(helper.make_node("Elu", [f"pre{i}"], [f"h{i}"], alpha=1.0))
            current = f"h{i}"
    out_infos = [helper.make_tensor_value_info(outputs[0], TensorProto.FLOAT, [batch, n_out])]
    for extra in outputs[1:]:
        nodes.append(helper.make_node("ReduceSum", [outputs[0]], [extra], keepdims=1))
        out_infos.append(helper.make_tensor_value_info(extra, TensorProto.FLOAT, [batch, 1]))
    graph = helper.make_graph(nodes, "actor", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, n_in])],
                              out_infos, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, dict(metadata))
    onnx.save(model, str(path))
    return params


def mlp_reference(params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The same network in numpy (float64), to check what onnxruntime returns."""
    h = np.asarray(x, dtype=float)
    for i in range(0, len(params), 2):
        h = h @ params[i].astype(float) + params[i + 1].astype(float)
        if i + 2 < len(params):
            h = np.where(h > 0, h, np.expm1(np.minimum(h, 0)))
    return h


def recurrent(path: Path, n_in: int, n_out: int, state: int = 4) -> None:
    """h_out = h_in + sum(obs) (every state element); actions = first n_out of h_out."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    ones = numpy_helper.from_array(np.ones((n_in, state), dtype=np.float32), "ones")
    starts = numpy_helper.from_array(np.array([0], dtype=np.int64), "starts")
    ends = numpy_helper.from_array(np.array([n_out], dtype=np.int64), "ends")
    axes = numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")
    shape = numpy_helper.from_array(np.array([1, 1, state], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["obs", "ones"], ["summed"]),
        helper.make_node("Reshape", ["summed", "shape"], ["summed3"]),
        helper.make_node("Add", ["h_in", "summed3"], ["h_out"]),
        helper.make_node("Slice", ["h_out", "starts", "ends", "axes"], ["sliced"]),
        helper.make_node("Reshape", ["sliced", "out_shape"], ["actions"]),
    ]
    out_shape = numpy_helper.from_array(np.array([1, n_out], dtype=np.int64), "out_shape")
    graph = helper.make_graph(
        nodes, "rnn",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, n_in]),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 1, state])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, n_out]),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 1, state])],
        [ones, starts, ends, axes, shape, out_shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def session(path: Path):  # noqa: ANN201 - onnxruntime's InferenceSession
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
