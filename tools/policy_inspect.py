"""``hil policy inspect``: what a policy observes and drives, and whether it fits a robot, before any run.

Prints the model's inputs and outputs, the observation layout (slice ->
term), the action mapping and the period. With ``against`` ("mock" or
"mujoco") it builds that robot in this process (the sim backend directly,
no bus), applies the compatibility rule the policy node and the runner
apply (``policy_node.policy.compat.check_fit``), builds one real
observation from the robot's measured state and a reachable goal, and runs
one inference. Every problem is collected, each a sentence with the fix;
nothing stops at the first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from policy_node.policy import description as desc_mod
from policy_node.policy.base import Goal, Observation
from policy_node.policy.compat import Requirements, RobotFacts, check_fit
from policy_node.policy.description import PolicyDescription, PolicyDescriptionError
from policy_node.policy.onnx_model import ModelError, OnnxPolicy, open_session, shape_text
from roarm.joints import LOWER, NAMES, UPPER, URDF_NAMES, pose
from roarm.kinematics import body_position, fk
from sim_node.backend import BackendUnavailable
from sim_node.backends import make_backend

ROBOTS = ("mock", "mujoco")
MUJOCO_PHYSICS_DT = 0.002
# base, shoulder, elbow, wrist of the inspection's goal: a little away from home, reachable by every body.
GOAL_POSE = (0.3, 0.2, 1.3, 0.1)


@dataclass
class Inspection:
    """What ``inspect`` found: lines to print, problems (exit 1) and warnings."""

    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def inspect(source: Path, against: str | None = None) -> Inspection:
    """Everything ``hil policy inspect`` prints for ``source`` (a model, folder or description)."""
    out = Inspection()
    try:
        desc = desc_mod.load(Path(source))
    except PolicyDescriptionError as exc:
        out.errors += exc.errors
        return out
    out.lines.append(f"description: {desc.source}")
    _model_lines(desc, out)
    _layout_lines(desc, out)
    _action_lines(desc, out)
    out.lines.append(f"period: {desc.period:g} s ({1 / desc.period:.4g} Hz)" if desc.period
                     else "period: any (the robot's)")
    try:
        policy = OnnxPolicy(desc)
    except ModelError as exc:
        out.errors += str(exc).splitlines()
        return out
    if against is not None:
        _against(policy, against, out)
    return out


def _model_lines(desc: PolicyDescription, out: Inspection) -> None:
    out.lines.append(f"model: {desc.model.path}")
    try:
        session = open_session(desc.model.path)
    except ModelError as exc:
        out.errors.append(str(exc))
        return
    for kind, tensors in (("input", session.get_inputs()), ("output", session.get_outputs())):
        for t in tensors:
            out.lines.append(f"  {kind:<6} {t.name!r} {shape_text(t.shape)} {t.type}")


def _layout_lines(desc: PolicyDescription, out: Inspection) -> None:
    out.lines.append(f"observation: {desc.observation_size} values")
    for (start, stop, label), term in zip(desc.layout(), desc.observation, strict=True):
        detail = []
        if term.joint_names:
            detail.append("joints " + ",".join(term.joint_names))
        if term.kind in ("goal_position", "goal_pose", "tcp", "tcp_error"):
            detail.append(f"body {term.body}, frame {term.frame}")
        if term.kind == "goal_pose":
            detail.append(f"quat {term.quat_order}")
        for key in ("offset", "clip", "scale"):
            if getattr(term, key) is not None:
                value = getattr(term, key)
                detail.append(f"{key} {_short(value)}")
        out.lines.append(f"  [{start:>3}:{stop:<3}] {label}" + (f"  ({'; '.join(detail)})" if detail else ""))
    if desc.normalize is not None:
        clip = f", clip {desc.normalize.clip:g}" if desc.normalize.clip is not None else ""
        out.lines.append(f"  then the whole vector: (x - mean) / std{clip}")


def _action_lines(desc: PolicyDescription, out: Inspection) -> None:
    a = desc.action
    clip = f", raw output clipped to [{a.clip[0]:g}, {a.clip[1]:g}]" if a.clip else ""
    out.lines.append(f"action: {a.mode}{clip}; {desc.action_size} outputs")
    formula = {"absolute": "scale * a + offset", "offset": "default + scale * a + offset",
               "delta": "measured + scale * a + offset"}[a.mode]
    for k, (name, bus) in enumerate(zip(desc.joints, desc.joint_index, strict=True)):
        out.lines.append(f"  output[{k}] -> {NAMES[bus]} ({URDF_NAMES[bus]}): {formula} with scale {a.scale[k]:g}, "
                         f"offset {a.offset[k]:g}, default {desc.default_pose[bus]:g}")
    held = [NAMES[i] for i in range(len(NAMES)) if i not in desc.joint_index]
    if held:
        where = "at the default pose" if a.hold == "default" else "where they are after a reset"
        out.lines.append(f"  held {where}: {', '.join(held)}")


def _short(values: object) -> str:
    if isinstance(values, tuple) and values and all(v == values[0] for v in values):
        return f"{values[0]:g}"
    if isinstance(values, tuple):
        return "[" + ", ".join(f"{v:g}" for v in values) + "]"
    return str(values)


def _robot_dt(kind: str, period: float | None) -> tuple[float, bool]:
    """The period to step the robot at, and whether it only approximates the policy's."""
    if period is None:
        return 0.02, False
    if kind == "mujoco":
        steps = max(1, round(period / MUJOCO_PHYSICS_DT))
        dt = steps * MUJOCO_PHYSICS_DT
        return dt, not math.isclose(dt, period, rel_tol=1e-6)
    return period, False


def _against(policy: OnnxPolicy, kind: str, out: Inspection) -> None:
    desc = policy.description
    dt, approx = _robot_dt(kind, desc.period)
    out.lines.append(f"against {kind} (lockstep, dt {dt:g} s{', the nearest it can step' if approx else ''}):")
    fit = check_fit(Requirements.of(desc), RobotFacts(NAMES, tuple(LOWER), tuple(UPPER), dt, "lockstep"),
                    period_defaulted=True)
    out.errors += fit.errors
    out.warnings += fit.warnings
    try:
        backend = make_backend(kind, dt=dt)
        backend.connect()
    except (BackendUnavailable, ValueError, OSError) as exc:
        out.errors.append(f"cannot build the {kind} robot: {exc}")
        return
    try:
        backend.reset(pose("home"), seed=0)
        backend.step()
        state = backend.read_state()
    finally:
        backend.close()
    goal = _sample_goal(desc)
    obs = Observation(0, state.position, state.velocity, state.tcp, None, goal)
    policy.reset()
    vector = policy.builder.build(obs.position, obs.velocity, policy.mapper.last_action, goal, obs.tcp)[0]
    out.lines.append(f"  observation from the measured state (home pose) and goal {np.round(goal.position, 3).tolist()}"
                     f" for {goal.body}:")
    for start, stop, label in desc.layout():
        out.lines.append(f"    [{start:>3}:{stop:<3}] {label:<24} {np.round(vector[start:stop].astype(float), 4).tolist()}")
    if not np.all(np.isfinite(vector)):
        out.errors.append("the observation holds NaN or infinity: check the terms' scale, offset and normalize.std")
    try:
        target = policy.act(obs)
    except ModelError as exc:
        out.errors.append(str(exc))
        return
    raw = policy.mapper.last_action
    out.lines.append(f"  one inference: raw output {np.round(raw, 4).tolist()}")
    out.lines.append(f"  joint targets (bus order {','.join(NAMES)}): {np.round(target, 4).tolist()}")
    if not np.all(np.isfinite(target)):
        out.errors.append("the model's output is NaN or infinite for this observation: the node would hold; "
                          "check the observation layout and normalization against training")
    step = np.abs(target - state.position)
    if np.any(step > 1.0):
        out.warnings.append(f"one step asks for up to {float(np.max(step)):.2f} rad at once from the home pose: check "
                            "the action mode, scale and default pose")


def _sample_goal(desc: PolicyDescription) -> Goal:
    """A reachable goal for the body the policy observes (world frame): where that body is at a pose near home."""
    q = pose("home")
    q[:4] = GOAL_POSE
    body = next(iter(sorted(desc.goal_bodies)), "tcp")
    position = fk(q) if body == "tcp" else body_position(q, body)
    return Goal(np.asarray(position, dtype=float), np.array([1.0, 0.0, 0.0, 0.0]), body)
