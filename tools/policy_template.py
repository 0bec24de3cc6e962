"""``hil policy init``: a commented ``policy.yaml`` for a model, from its input and output shapes.

What the shapes say is filled in (tensor names, batch, dtype, how many
joints); what only the person who trained the policy knows (the observation
terms, the action mode, the period) is left as a commented choice to make.
The template does not validate until the observation is listed, on purpose:
``hil policy inspect`` then names what is still missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policy_node.policy.description import TERM_KINDS
from policy_node.policy.onnx_model import ONNX_DTYPES, open_session, shape_text
from roarm.joints import URDF_NAMES


def template(model: Path, file_name: str) -> str:
    """The commented ``policy.yaml`` text for ``model`` (referred to as ``file_name``)."""
    session = open_session(model)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    obs = inputs[0]
    width = obs.shape[-1] if obs.shape else None
    n_in = width if isinstance(width, int) else None
    action = outputs[0]
    out_width = action.shape[-1] if action.shape else None
    n_out = out_width if isinstance(out_width, int) else 6
    batch = "none" if len(obs.shape) == 1 else "fixed" if obs.shape[0] == 1 else "dynamic"
    joints = list(URDF_NAMES[:n_out]) if n_out <= len(URDF_NAMES) else list(URDF_NAMES)
    lines = [
        f"# Policy description for {file_name}, written by hil policy init. Complete the TODOs, then check it:",
        "#   hil policy inspect THIS_FOLDER --against mujoco",
        "# Reference: docs/policies.md (## policy.yaml reference).",
        "#",
        "# The model's tensors:",
        *[f"#   input  {t.name!r} {shape_text(t.shape)} {t.type}" for t in inputs],
        *[f"#   output {t.name!r} {shape_text(t.shape)} {t.type}" for t in outputs],
        "version: 1",
        "model:",
        f"  file: {file_name}",
        f"  input: {obs.name}",
        f"  output: {action.name}" + ("   # several outputs: this one must be the actions" if len(outputs) > 1 else ""),
        f"  batch: {batch}",
        f"  dtype: {ONNX_DTYPES.get(obs.type, 'float32')}",
        "",
        "# TODO: the control period the policy was trained at, in seconds (Isaac Lab: sim.dt x decimation).",
        "period: null",
        "",
        f"# The joints the policy drives, in the order of its {n_out} outputs (URDF or bus names; a subset is",
        "# fine, the others are held). TODO: check the order.",
        "joints: " + _flow(joints),
        "",
        "# The pose offsets and relative terms are measured from (rad, per joint; unlisted joints are 0).",
        "default_pose: {" + ", ".join(f"{name}: 0.0" for name in joints) + "}",
        "",
        f"# TODO: the terms of the model's input in order; their sizes must sum to {n_in if n_in else 'N'}.",
        f"# Terms: {', '.join(TERM_KINDS)}.",
        "# Each may have scale, clip, offset; joint terms may list joints; goal terms body, frame, quat. E.g.:",
        "#   - joint_pos_rel",
        "#   - joint_vel_rel",
        "#   - {term: goal_pose, body: gripper_link, frame: world, quat: wxyz}",
        "#   - last_action",
        "observation: []",
        "",
        "# Whole-vector normalization after the terms (Stable-Baselines3 VecNormalize: mean, var, epsilon, clip).",
        "# normalize: {mean: [...], std: [...], clip: 10.0}",
        "",
        "# TODO: how an output becomes a joint target: absolute (scale*a + offset), delta (measured + scale*a),",
        "# offset (default + scale*a + offset, Isaac Lab's use_default_offset). clip bounds the raw output.",
        "action: {mode: absolute, scale: 1.0, offset: 0.0, hold: current}",
        "",
        "# Recurrent state pairs carried between steps and zeroed on reset, e.g.:",
        "# recurrent: [{input: h_in, output: h_out}]",
    ]
    return "\n".join(lines) + "\n"


def _flow(items: list[Any]) -> str:
    return "[" + ", ".join(str(i) for i in items) + "]"
