"""Do the policy and the robot of a run agree on the arm? (schema, joint names, limits, period)

Both nodes describe themselves through ``info``; a policy trained for other
joints, limits or another control period must not drive the robot, so the
runner refuses the run (exit 2) before the first command. The rule itself
is the policy library's ``compat.check_fit``, the one the policy node and
``hil policy inspect`` apply: here it is only fed from the two ``info``
replies.
"""

from __future__ import annotations

import math

from policy_node.policy.compat import PERIOD_TOLERANCE, Fit, Requirements, RobotFacts, check_fit
from schemas import SCHEMA_MAJOR, services_pb2


def requirements_of(policy: services_pb2.NodeInfo) -> Requirements:
    """A policy node's ``info`` as Requirements: the joints it drives (``extra.policy_joints``, else all it
    commands), their limits where it states them, its period (``dt`` 0: any)."""
    joints = tuple(n for n in policy.extra.get("policy_joints", "").split(",") if n) or tuple(policy.joint_names)
    lower = upper = None
    stated = policy.extra.get("limits_stated", "yes") == "yes"
    commanded = list(policy.joint_names)
    if stated and policy.lower and policy.upper and all(n in commanded for n in joints) \
            and len(policy.lower) == len(commanded) == len(policy.upper):
        lower = tuple(policy.lower[commanded.index(n)] for n in joints)
        upper = tuple(policy.upper[commanded.index(n)] for n in joints)
    kinds = frozenset(k for k in policy.extra.get("goal_kinds", "").split(",") if k)
    return Requirements(joints, lower, upper, policy.dt if policy.dt > 0 else None, kinds)


def check(robot: services_pb2.NodeInfo, policy: services_pb2.NodeInfo, dt: float | None,
          *, dt_from_policy: bool = False) -> Fit:
    """The verdict for a run: errors refuse it, warnings are said before it starts.

    ``dt`` is the period the scenario asks of the robot (None: not compared,
    e.g. the real arm sets its own); ``dt_from_policy`` says the scenario
    took it from the policy, so a lockstep robot that can only come close is
    a warning, not an error.
    """
    fit = Fit()
    for info in (robot, policy):
        major = info.schema_version.split(".")[0]
        if major and major != str(SCHEMA_MAJOR):
            fit.errors.append(f"{info.role} speaks schema {info.schema_version}, the runner {SCHEMA_MAJOR}.x")
    if not robot.joint_names:
        fit.errors.append("the robot reports no joint names")
    if policy.joint_names and list(policy.joint_names) != list(robot.joint_names):
        fit.errors.append(f"joint names: robot {list(robot.joint_names)}, policy {list(policy.joint_names)}")
    if robot.joint_names:
        rule = check_fit(requirements_of(policy), RobotFacts.of_info(robot), period_defaulted=dt_from_policy)
        fit.errors += rule.errors
        fit.warnings += rule.warnings
    if dt is not None and robot.dt > 0 and not math.isclose(robot.dt, dt, rel_tol=PERIOD_TOLERANCE) \
            and not dt_from_policy:
        fit.errors.append(f"control period: scenario asks {dt:g} s, the robot runs {robot.dt:g} s")
    return fit


def mismatches(robot: services_pb2.NodeInfo, policy: services_pb2.NodeInfo, dt: float | None,
               *, dt_from_policy: bool = False) -> list[str]:
    """What refuses the run, in words; empty when the two fit (warnings: ``check``)."""
    return check(robot, policy, dt, dt_from_policy=dt_from_policy).errors
