"""An ONNX model run through onnxruntime, tuned for a control loop on a small CPU.

One InferenceSession for the life of the node, one intra-op and one inter-op
thread, sequential execution and no spinning: a small MLP gains nothing from
threads, and spinning workers would steal the only other core from the robot
node. The input array is allocated once and refilled every step.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from bus.errors import Failed
from policy_node.policy.features import ActionMap, MissingInput, fill
from policy_node.policy.base import Observation
from policy_node.policy.spec import PolicySpec, SpecError


class ModelError(Failed, ValueError):
    """The file is not a model this node can run (with the reason)."""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def session_options() -> object:
    """onnxruntime SessionOptions for a 1-thread, non-spinning control loop."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class OnnxPolicy:
    """A Policy backed by an ONNX file whose metadata carries its PolicySpec.

    Without a Cartesian goal (when the spec needs one) it holds the target it
    last commanded, or the first measured position: a policy with nothing to
    do must stay put, not sag or guess.
    """

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.name = f"onnx:{self.path.name}"
        self.model_hash = file_sha256(self.path)
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors (InvalidProtobuf, Fail, ...) share no narrower base
            raise ModelError(f"{self.path}: onnxruntime cannot load it: {exc}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.spec = PolicySpec.from_metadata(meta)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelError(f"{self.path}: expected one input and one output, got {len(inputs)} and {len(outputs)}")
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        width = inputs[0].shape[-1] if inputs[0].shape else None
        if isinstance(width, int) and width != self.spec.observation_size:
            raise SpecError(
                "observation",
                f"layout {','.join(self.spec.observation)} has {self.spec.observation_size} values, "
                f"the model's input {self.input_name!r} takes {width}",
            )
        self._input = np.zeros((1, self.spec.observation_size), dtype=np.float32)
        self._feed = {self.input_name: self._input}
        self._fetch = [self.output_name]
        self._features = self._input[0]
        self._to_targets = ActionMap(self.spec)
        self._held: np.ndarray | None = None
        # The first run allocates and plans; do it now, not inside the first control step's budget.
        self.session.run(self._fetch, self._feed)

    def reset(self) -> None:
        self._held = None

    def infer(self, features: np.ndarray) -> np.ndarray:
        """Raw model output for one observation vector (benchmarks time this)."""
        self._input[0, :] = features
        return self.session.run(self._fetch, self._feed)[0].reshape(-1)

    def act(self, obs: Observation) -> np.ndarray:
        try:
            fill(self.spec, obs, self._features)
        except MissingInput:
            if self._held is None:
                self._held = np.clip(obs.position, self.spec.lower, self.spec.upper)
            return self._held.copy()
        output = self.session.run(self._fetch, self._feed)[0].reshape(-1)
        if output.size != len(self.spec.joint_names):
            raise ModelError(f"{self.path}: output has {output.size} values for {len(self.spec.joint_names)} joints")
        if not np.all(np.isfinite(output)):
            return output.astype(float)  # the caller's watchdog turns this into a hold
        target = self._to_targets(output, obs.position)
        self._held = target
        return target
