"""The one compatibility rule between a policy and a robot (joints, limits, control period).

The policy node applies it at start, the scenario runner before a run, and
``hil policy inspect`` on demand: all three call ``check_fit``, so a policy
that one of them accepts the others accept too, with the same words.

The rule:

- every joint the policy drives must be one of the robot's (a subset is
  fine: the others are held);
- limits agree per driven joint within ``LIMIT_TOLERANCE`` (1e-3 rad: float
  round trips through protobuf and JSON must not count as a mismatch), and
  only where the policy states limits;
- the control period: equal (relative 1e-6) is fine; a *realtime* robot
  slower than the policy's period is accepted with a warning (the real arm's
  serial link carries 25-37 commands/s, so a 100 Hz model gets the same
  per-step actions less often and moves slower than trained, never faster);
  a *lockstep* robot must match exactly, unless the scenario's dt was
  defaulted from the policy's period and the robot could only come close
  (MuJoCo steps in 2 ms: 1/30 s becomes 0.034 s), which is a warning.
  A robot faster than the policy is refused: the policy would move it faster
  than it was trained to.

``goal_kinds_observed`` says which kinds of goal (``tcp``, ``joints``) a
description can see, so the runner warns before a run that gives an ONNX
reach policy a joint goal it cannot observe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from policy_node.policy.description import PolicyDescription
from roarm.joints import NAMES, URDF_NAMES

LIMIT_TOLERANCE = 1e-3  # rad
PERIOD_TOLERANCE = 1e-6  # relative
GOAL_KINDS = ("tcp", "joints", "visual")  # the names of roarm.v1.Goal's target oneof


@dataclass(frozen=True)
class CameraNeed:
    """A camera a policy looks through: its bus name, and the oldest frame (s) it accepts from a real camera.

    Simulated frames belong to a robot step: their age is counted in steps
    of the robot's period (policy_node/frames.py)."""

    camera: str
    max_age_s: float = 0.1


@dataclass(frozen=True)
class Requirements:
    """What a policy needs of a robot.

    ``joints``: bus names of the joints it drives, in its output order.
    ``lower``/``upper``: their limits as the policy was made for (None: no
    claim, nothing to compare). ``period``: the control period (s) it was
    trained at (None: any; scripted and most Python policies).
    ``goal_kinds``: the goals it can observe (``tcp``, ``joints``).
    ``cameras``: the cameras whose frames it needs with each state, and how
    old a real camera's frame may be (none: a policy without vision).
    """

    joints: tuple[str, ...] = NAMES
    lower: tuple[float, ...] | None = None
    upper: tuple[float, ...] | None = None
    period: float | None = None
    goal_kinds: frozenset[str] = frozenset()
    cameras: tuple[CameraNeed, ...] = ()

    @classmethod
    def of(cls, desc: PolicyDescription) -> Requirements:
        """A description's requirements (limits only where it states them)."""
        lower, upper = desc.limits if desc.limits is not None else (None, None)
        cameras: dict[str, float] = {}
        for image in desc.images:  # one camera may feed two tensors: the stricter age wins
            cameras[image.camera] = min(cameras.get(image.camera, math.inf), image.max_age_ms / 1e3)
        return cls(tuple(NAMES[i] for i in desc.joint_index), lower, upper, desc.period, goal_kinds_observed(desc),
                   tuple(CameraNeed(name, age) for name, age in cameras.items()))


@dataclass(frozen=True)
class RobotFacts:
    """What a robot says of itself in ``info``: bus joint names, limits, period, realtime or lockstep."""

    joints: tuple[str, ...]
    lower: tuple[float, ...] = ()
    upper: tuple[float, ...] = ()
    dt: float = 0.0
    mode: str = "realtime"

    @classmethod
    def of_info(cls, info: object) -> RobotFacts:
        """From a ``roarm.v1.NodeInfo`` (any object with those fields)."""
        return cls(tuple(info.joint_names), tuple(info.lower), tuple(info.upper),  # type: ignore[attr-defined]
                   float(info.dt), info.mode or "realtime")  # type: ignore[attr-defined]


@dataclass
class Fit:
    """The verdict: ``errors`` refuse the pairing, ``warnings`` are said and accepted."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_fit(policy: Requirements, robot: RobotFacts, *, period_defaulted: bool = False) -> Fit:
    """Apply the rule (module docstring); every problem is a sentence that says how to fix it."""
    fit = Fit()
    if robot.joints != NAMES:
        fit.errors.append(
            f"joints: the robot reports {list(robot.joints)}, policies command the RoArm-M3's bus order "
            f"{list(NAMES)}: the robot node must publish its joints in that order")
        return fit
    index: list[int | None] = []
    for name in policy.joints:
        bus = _bus_name(name)
        if bus not in robot.joints:
            fit.errors.append(
                f"joint {name!r}: the robot has no such joint (its joints: {', '.join(robot.joints)}): "
                "list the policy's joints by the robot's names (bus or URDF) in the description's `joints`")
            index.append(None)
        else:
            index.append(robot.joints.index(bus))
    for side, ours, theirs in (("lower", policy.lower, robot.lower), ("upper", policy.upper, robot.upper)):
        if ours is None or not theirs:
            continue
        for name, i, a in zip(policy.joints, index, ours, strict=False):
            if i is None or i >= len(theirs):
                continue
            if abs(a - theirs[i]) > LIMIT_TOLERANCE:
                fit.errors.append(
                    f"{side} limit of {name}: policy {a:.4f} rad, robot {theirs[i]:.4f} rad (tolerance "
                    f"{LIMIT_TOLERANCE:g}): the policy was made for another arm or URDF; fix `limits` in its "
                    "description, or drop them to take the robot's")
    _check_period(fit, policy.period, robot, period_defaulted)
    return fit


def _check_period(fit: Fit, period: float | None, robot: RobotFacts, defaulted: bool) -> None:
    if period is None or period <= 0:
        return
    if not robot.dt > 0:
        fit.errors.append(f"control period: the policy runs at {period:g} s and the robot reports none: "
                          "start the robot with a control period (--dt)")
        return
    if math.isclose(robot.dt, period, rel_tol=PERIOD_TOLERANCE):
        return
    trained = f"the policy was trained at {period:g} s ({1 / period:.4g} Hz), the robot runs {robot.dt:g} s " \
              f"({1 / robot.dt:.4g} Hz)"
    if robot.mode != "lockstep" and robot.dt > period:
        fit.warnings.append(f"control period: {trained}; a realtime robot that is slower gets the same steps less "
                            "often, so the arm moves slower than trained (accepted)")
    elif robot.mode == "lockstep" and defaulted:
        fit.warnings.append(f"control period: {trained}, the nearest period this robot can step (accepted: the "
                            "scenario's dt was taken from the policy)")
    elif robot.mode == "lockstep":
        fit.errors.append(f"control period: {trained}; a lockstep robot must step at the policy's period: run it "
                          f"at {period:g} s (robot.dt in a scenario, or leave it out to take the policy's; "
                          f"--dt for hil node sim)")
    else:
        fit.errors.append(f"control period: {trained}; faster than trained would move the arm faster than the "
                          f"policy learned: run the robot at --dt {period:g} or slower")


def _bus_name(name: str) -> str:
    return NAMES[URDF_NAMES.index(name)] if name in URDF_NAMES else name


def goal_kinds_observed(desc: PolicyDescription) -> frozenset[str]:
    """The kinds of goal (``tcp``, ``joints``) the description's observation can see.

    An ONNX reach policy observes a Cartesian goal (``goal_position``,
    ``goal_pose``, ``tcp_error``) and nothing of a joint goal: give it one
    and it will not move toward it, which the runner says before the run.
    """
    return frozenset({"tcp"}) if desc.needs_goal else frozenset()


def joint_bus_names(names: Sequence[str]) -> tuple[str, ...]:
    """Bus names for joints named by bus or URDF name (unknown names are kept as given)."""
    return tuple(_bus_name(n) for n in names)
