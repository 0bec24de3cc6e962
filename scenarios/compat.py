"""Do the policy and the robot of a run agree on the arm? (joint names, limits, period)

Both nodes describe themselves through ``info``; a policy trained for other
joints, limits or another control period must not drive the robot, so the
runner refuses the run (exit 2) before the first command.
"""

from __future__ import annotations

import math

from schemas import SCHEMA_MAJOR, services_pb2

_TOLERANCE = 1e-6


def mismatches(robot: services_pb2.NodeInfo, policy: services_pb2.NodeInfo, dt: float | None) -> list[str]:
    """What differs, in words; empty when the two fit. Fields a node leaves empty are not compared."""
    problems = []
    for info in (robot, policy):
        major = info.schema_version.split(".")[0]
        if major and major != str(SCHEMA_MAJOR):
            problems.append(f"{info.role} speaks schema {info.schema_version}, the runner {SCHEMA_MAJOR}.x")
    if not robot.joint_names:
        problems.append("the robot reports no joint names")
    if policy.joint_names and list(policy.joint_names) != list(robot.joint_names):
        problems.append(f"joint names: robot {list(robot.joint_names)}, policy {list(policy.joint_names)}")
    for field in ("lower", "upper"):
        mine, theirs = list(getattr(robot, field)), list(getattr(policy, field))
        if mine and theirs and (len(mine) != len(theirs) or any(abs(a - b) > _TOLERANCE for a, b in zip(mine, theirs))):
            problems.append(f"{field} limits: robot {_fmt(mine)}, policy {_fmt(theirs)}")
    if robot.dt > 0 and policy.dt > 0 and not math.isclose(robot.dt, policy.dt, rel_tol=1e-6):
        problems.append(f"control period: robot {robot.dt:g} s, policy {policy.dt:g} s")
    if dt is not None and robot.dt > 0 and not math.isclose(robot.dt, dt, rel_tol=1e-6):
        problems.append(f"control period: scenario asks {dt:g} s, the robot runs {robot.dt:g} s")
    return problems


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"
