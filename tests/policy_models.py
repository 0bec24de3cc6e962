"""Tiny ONNX models for the policy tests, built with onnx.helper (no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from policy_node.policy.spec import PolicySpec


def write_model(path: Path, spec: PolicySpec, bias: np.ndarray, multiply: float = 0.0) -> Path:
    """action = observation @ (multiply * W) + bias, with ``spec`` in the metadata.

    ``multiply`` NaN makes every output NaN (a diverged model); 0 makes a
    constant policy; W picks the first 6 observation values.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = spec.observation_size
    weights = np.zeros((n, 6), dtype=np.float32)
    weights[: min(n, 6), : min(n, 6)] = np.eye(min(n, 6), dtype=np.float32)
    weights *= np.float32(multiply)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["observation", "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["action"])],
        "test_model",
        [helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 6])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.asarray(bias, dtype=np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, spec.to_metadata())
    onnx.save(model, str(path))
    return path


def write_vision_model(path: Path, height: int, width: int, layout: str = "NCHW") -> Path:
    """actions (1, 6) = per-channel means of ``image`` twice (r, g, b, r, g, b) + 0 * obs.

    ``image`` is (1, 3, H, W) for NCHW, (1, H, W, 3) for NHWC; ``obs`` is (1, 6).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = [1, 3, height, width] if layout == "NCHW" else [1, height, width, 3]
    axes = [2, 3] if layout == "NCHW" else [1, 2]
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["means"], axes=axes, keepdims=0),
         helper.make_node("Concat", ["means", "means"], ["twice"], axis=1),
         helper.make_node("Mul", ["obs", "zero"], ["nothing"]),
         helper.make_node("Add", ["twice", "nothing"], ["actions"])],
        "vision_model",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 6]),
         helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, 6])],
        [numpy_helper.from_array(np.zeros(1, dtype=np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


VISION_YAML = """\
model: {file: vision.onnx, input: obs, output: actions}
observation: [joint_pos]
action: {mode: absolute}
images:
  - camera: front
    input: image
    layout: NCHW
    channels: rgb
    max_age_ms: 25
"""
