"""An ONNX model run through onnxruntime as its PolicyDescription says, tuned for a control loop on a small CPU.

One InferenceSession for the life of the node, one intra-op and one inter-op
thread, sequential execution and no spinning: a small MLP gains nothing from
threads, and spinning workers would steal the only other core from the robot
node. Every array fed to the model is allocated once and refilled each step.

What the description names is resolved against the model here, once, and
every disagreement is a ``ModelError`` in words (tensor, shape, dtype and how
to fix it), never an onnxruntime traceback:

- input: ``model.input``, else the model's only input that is not a
  recurrent state; rank 1 ``[N]``, or rank 2 with a fixed batch of 1
  (``[1, N]`` as Isaac Lab exports) or a dynamic one (``[batch, N]``);
- output: ``model.output``, else the only output that is not a recurrent
  state (Stable-Baselines3's PPO export has ``actions, values, log_prob``:
  name ``actions``);
- dtype: the observation is built in float64 and cast to what the input
  takes (float32, float64 or float16).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bus.errors import Failed, HilError
from policy_node.policy.action import ActionMapper, ActionSizeError
from policy_node.policy.base import Observation
from policy_node.policy.compat import Requirements
from policy_node.policy.description import PolicyDescription, PolicyDescriptionError
from policy_node.policy.image_inputs import ImageInput, ImagePreprocessor
from policy_node.policy.observation import MissingGoal, ObservationBuilder
from policy_node.policy.recurrent import RecurrentState
from roarm.joints import LOWER, UPPER

ONNX_DTYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16"}
IMAGE_ONNX_DTYPES = {**ONNX_DTYPES, "tensor(uint8)": "uint8"}


class ModelError(Failed, ValueError):
    """The model cannot be run as its description says (with the reason and the fix)."""


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


def open_session(path: Path) -> Any:
    """An onnxruntime InferenceSession for ``path``, or a ModelError saying why not."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), sess_options=session_options(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors (InvalidProtobuf, Fail, ...) share no narrower base
        raise ModelError(f"{path}: onnxruntime cannot load it: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def shape_text(shape: Any) -> str:
    return "[" + ", ".join(str(d) if d is not None else "?" for d in shape) + "]"


class ModelIO:
    """The model's tensors resolved against a description: what to feed, what to fetch.

    Every disagreement found is listed in one ModelError (``hil policy
    inspect`` shows them all at once), each with how to fix it.
    """

    def __init__(self, desc: PolicyDescription, session: Any) -> None:
        self.desc = desc
        self.problems: list[str] = []
        where = f"{desc.model.path}"
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name: o for o in session.get_outputs()}
        self.inputs, self.outputs = inputs, outputs
        state_in = {p.input for p in desc.recurrent}
        state_out = {p.output for p in desc.recurrent}
        self.images = self._image_inputs(where, inputs, state_in)
        image_in = {name for _, name in self.images}
        self.input = self._pick(where, "input", desc.model.input,
                                [n for n in inputs if n not in state_in and n not in image_in], desc.source)
        self.output = self._pick(where, "output", desc.model.output, [n for n in outputs if n not in state_out],
                                 desc.source)
        self.input_shape: list[Any] = []
        self.dtype = "float32"
        self.batched = True
        if self.input is not None and self.input not in inputs:
            self.problems.append(f"{desc.source}: model.input: the model has no input {self.input!r} "
                                 f"(its inputs: {', '.join(inputs)}): name one of them")
        elif self.input is not None:
            self._check_input(where, inputs[self.input])
        if self.output is not None and self.output not in outputs:
            self.problems.append(f"{desc.source}: model.output: the model has no output {self.output!r} "
                                 f"(its outputs: {', '.join(outputs)}): name one of them")
        elif self.output is not None:
            out = outputs[self.output]
            out_width = out.shape[-1] if out.shape else None
            if isinstance(out_width, int) and out_width != desc.action_size:
                self.problems.append(
                    f"{where}: output {self.output!r} has {out_width} values per step ({shape_text(out.shape)}), "
                    f"the description drives {desc.action_size} joints ({', '.join(desc.joints)}): list one "
                    "joint per output value in `joints`")
        unfed = [n for n in inputs if n != self.input and n not in state_in and n not in image_in]
        if unfed:
            self.problems.append(
                f"{where}: the model also takes {', '.join(repr(n) for n in unfed)}, which the description does "
                "not feed: pair each recurrent state in `recurrent` ({input: NAME_IN, output: NAME_OUT}), or "
                "export the model with one input")
        try:
            self.recurrent = RecurrentState.for_session(desc.recurrent, session, desc.source)
        except PolicyDescriptionError as exc:
            self.problems += exc.errors
            self.recurrent = RecurrentState((), {})
        if self.problems:
            raise ModelError("\n".join(self.problems))
        self.fetch = [self.output, *self.recurrent.output_names]

    def _image_inputs(self, where: str, inputs: dict[str, Any], taken: set[str]) -> list[tuple[ImageInput, str]]:
        """Each image input of the description with its tensor, checked against the model; a size the
        description leaves out is the model's when the model fixes it."""
        images = self.desc.images
        named = {image.input for image in images if image.input is not None}
        spare = [n for n, i in inputs.items() if n not in taken and n not in named and len(i.shape) == 4]
        out = []
        for k, image in enumerate(images):
            path = f"{self.desc.source}: images[{k}]"
            name = image.input
            if name is None:
                if len(spare) != 1 or sum(i.input is None for i in images) != 1:
                    rank4 = ", ".join(spare) or "none"
                    self.problems.append(f"{path}.input: cannot tell which tensor takes camera {image.camera!r} "
                                         f"(4-d inputs not named elsewhere: {rank4}): name it as input")
                    continue
                name = spare[0]
            info = inputs.get(name)
            if info is None:
                self.problems.append(f"{path}.input: the model has no input {name!r} (its inputs: "
                                     f"{', '.join(inputs)}): name one of them")
                continue
            resolved = self._check_image(path, image, name, info)
            if resolved is not None:
                out.append((resolved, name))
        return out

    def _check_image(self, path: str, image: ImageInput, name: str, info: Any) -> ImageInput | None:
        shape = list(info.shape)
        if len(shape) != 4:
            self.problems.append(f"{path}: input {name!r} has shape {shape_text(shape)}; an image input is 4-d "
                                 f"({'[1, C, H, W]' if image.layout == 'NCHW' else '[1, H, W, C]'} for layout "
                                 f"{image.layout})")
            return None
        batch, *dims = shape
        channels, height, width = (dims[0], dims[1], dims[2]) if image.layout == "NCHW" else (dims[2], dims[0], dims[1])
        problems = []
        if isinstance(batch, int) and batch != 1:
            problems.append(f"a fixed batch of {batch}: export it with batch 1 or a dynamic batch")
        if isinstance(channels, int) and channels != image.depth:
            other = "NHWC" if image.layout == "NCHW" else "NCHW"
            problems.append(f"{channels} channels where {image.channels} gives {image.depth}: set channels "
                            f"({'gray' if channels == 1 else 'rgb or bgr'}) or layout ({other}?)")
        dtype = IMAGE_ONNX_DTYPES.get(info.type)
        if dtype != image.dtype:
            problems.append(f"element type {info.type}, the description says dtype {image.dtype}: set dtype: "
                            f"{dtype or 'float32 (export a float or uint8 input)'}")
        size = image.size
        fixed = (width, height) if isinstance(width, int) and isinstance(height, int) else None
        if size is not None and fixed is not None and size != fixed:
            problems.append(f"{fixed[0]}x{fixed[1]} pixels, the description resizes to {size[0]}x{size[1]}: set "
                            f"size: [{fixed[0]}, {fixed[1]}]")
        for problem in problems:
            self.problems.append(f"{path}: input {name!r} {shape_text(shape)} ({image.layout}) has {problem}")
        if problems:
            return None
        return replace(image, input=name, size=size or fixed)

    def _check_input(self, where: str, info: Any) -> None:
        desc = self.desc
        self.input_shape = list(info.shape)
        dtype = ONNX_DTYPES.get(info.type)
        if dtype is None:
            self.problems.append(f"{where}: input {self.input!r} is {info.type}, not a float tensor: export the "
                                 "observation input as float32 (or float64/float16)")
        else:
            self.dtype = dtype
        rank = len(self.input_shape)
        size = desc.observation_size
        if rank not in (1, 2):
            self.problems.append(
                f"{where}: input {self.input!r} has shape {shape_text(self.input_shape)} (rank {rank}); an "
                f"observation is [N] or [1, N] / [batch, N] with N = {size}: export it flat")
            return
        width = self.input_shape[-1]
        if isinstance(width, int) and width != size:
            layout = ", ".join(f"{label} {stop - start}" for start, stop, label in desc.layout())
            self.problems.append(
                f"{where}: input {self.input!r} takes {width} values, the description's observation has {size} "
                f"({layout}): add or remove terms in `observation` until they sum to {width}")
        batch = self.input_shape[0] if rank == 2 else None
        self.batched = rank == 2
        if isinstance(batch, int) and batch != 1:
            self.problems.append(f"{where}: input {self.input!r} has a fixed batch of {batch} "
                                 f"({shape_text(self.input_shape)}): export it with batch 1 or a dynamic batch")
        found = "none" if rank == 1 else "fixed" if batch == 1 else "dynamic"
        declared = desc.model.batch
        if declared is not None and (declared == "none") != (found == "none"):
            self.problems.append(
                f"{desc.source}: model.batch: says {declared!r}, the model's input {self.input!r} is "
                f"{shape_text(self.input_shape)} ({found}): set model.batch: {found} or leave it out")

    def _pick(self, where: str, kind: str, named: str | None, candidates: list[str], source: str) -> str | None:
        if named is not None:
            return named
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            self.problems.append(f"{where}: the model has no {kind} left for the observation/action once the "
                                 f"recurrent pairs are taken: check `recurrent` in {source}")
        else:
            self.problems.append(
                f"{where}: the model has {len(candidates)} {kind}s ({', '.join(candidates)}): name the one to use "
                f"as model.{kind} in {source} (Stable-Baselines3's PPO export: output: actions)")
        return None

    def describe_input(self) -> str:
        return f"input {self.input!r} {shape_text(self.input_shape)} {self.dtype}"


class MissingFrame(HilError, LookupError):
    """A vision policy was asked to act without a frame of one of its cameras (the node holds instead)."""


class OnnxPolicy:
    """A Policy backed by an ONNX file and its PolicyDescription.

    Without a Cartesian goal (when the description observes one) it holds the
    target it last commanded, or the first measured position: a policy with
    nothing to do must stay put, not sag or guess. Image inputs are fed from
    ``obs.images`` (policy_node/policy/image_inputs.py).
    """

    def __init__(self, desc: PolicyDescription) -> None:
        self.description = desc
        self.path = Path(desc.model.path)
        self.name = f"onnx:{self.path.name}"
        self.model_hash = file_sha256(self.path)
        self.requirements = Requirements.of(desc)
        self.session = open_session(self.path)
        self.io = ModelIO(desc, self.session)
        if desc.model.dtype != self.io.dtype:
            desc = replace(desc, model=replace(desc.model, dtype=self.io.dtype))  # cast to what the model takes
        self.builder = ObservationBuilder(desc)
        lower, upper = LOWER.copy(), UPPER.copy()
        if desc.limits is not None:
            lower[list(desc.joint_index)] = desc.limits[0]
            upper[list(desc.joint_index)] = desc.limits[1]
        self.lower, self.upper = lower, upper
        self.mapper = ActionMapper(desc, lower, upper)
        self.recurrent = self.io.recurrent
        self._feed: dict[str, np.ndarray] = {
            self.io.input: self.builder.batch if self.io.batched else self.builder.vector, **self.recurrent.inputs}
        self._images = [(image.camera, name, ImagePreprocessor(image)) for image, name in self.io.images]
        for _camera, name, pre in self._images:
            if pre.image.size is not None:  # known now: allocate (and plan the first run) before the loop
                self._feed[name] = pre.prepare(*pre.image.size)
        sized = all(name in self._feed for _c, name, _p in self._images)
        self._fetch = self.io.fetch
        self._state_names = self.recurrent.output_names
        self._held: np.ndarray | None = None
        self._binding: Any = None
        self._outputs: list[np.ndarray] = []
        # The first run allocates and plans; do it now, not inside the first control step's budget.
        if sized:
            outputs = self._run()
            if not self._images:
                self._bind(outputs)
        self.reset()

    def _bind(self, outputs: list[np.ndarray]) -> None:
        """Bind every input and output to its fixed buffer once (onnxruntime's IOBinding).

        Without images every array the model reads is allocated once and
        refilled in place, so each step can skip converting the feed dict and
        allocating the outputs: in the live node ``session.run`` cost about
        50 us of CPU per step, and binding cut the act phase by about a third
        (docs/benchmarks.md).
        A frame of a new size reallocates its tensor, so image models keep
        ``session.run``. The outputs' shapes are the warm-up run's.
        """
        binding = self.session.io_binding()
        for name, array in self._feed.items():
            binding.bind_cpu_input(name, array)
        self._outputs = [np.empty_like(array) for array in outputs]
        for name, array in zip(self._fetch, self._outputs, strict=True):
            binding.bind_output(name, "cpu", 0, array.dtype, list(array.shape), array.ctypes.data)
        self._binding = binding

    def reset(self) -> None:
        """A new episode: last action and recurrent state back to zero, nothing held."""
        self._held = None
        self.mapper.reset()
        self.recurrent.reset()

    def _run(self) -> list[np.ndarray]:
        """The model's outputs in ``fetch`` order; with a binding, its buffers (valid until the next run)."""
        try:
            if self._binding is not None:
                self.session.run_with_iobinding(self._binding)
                return self._outputs
            return self.session.run(self._fetch, self._feed)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own (Fail, InvalidArgument, ...) classes
            feed = ", ".join(f"{name} {list(a.shape)} {a.dtype}" for name, a in self._feed.items())
            raise ModelError(f"{self.path}: onnxruntime could not run the model on {feed}: {_first_line(exc)}") from None

    def infer(self, features: np.ndarray) -> np.ndarray:
        """Raw model output for one observation vector (benchmarks time this); valid until the next call."""
        self.builder.vector[:] = features
        return self._run()[0].reshape(-1)

    def act(self, obs: Observation) -> np.ndarray:
        try:
            self.builder.build(obs.position, obs.velocity, self.mapper.last_action, obs.target, obs.tcp)
        except MissingGoal:
            if self._held is None:
                self._held = np.clip(obs.position, self.lower, self.upper)
            return self._held.copy()
        for camera, name, pre in self._images:
            frame = obs.images.get(camera)
            if frame is None:
                raise MissingFrame(f"no frame of camera {camera!r} with state {obs.seq}")
            self._feed[name] = pre(frame.rgb)
        outputs = self._run()
        if self._state_names:
            self.recurrent.update(dict(zip(self._state_names, outputs[1:], strict=True)))
        try:
            target = self.mapper(outputs[0], obs.position)
        except ActionSizeError as exc:
            raise ModelError(f"{self.path}: {exc}") from None
        if all(map(math.isfinite, target.tolist())):  # six values: cheaper than np.isfinite + np.all
            self._held = target
        return target
