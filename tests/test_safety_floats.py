"""roarm.safety on plain floats gives bit for bit what its numpy form gave.

The robot nodes judge every command with ``check_command``; it was written
on six-element numpy arrays (``np.clip`` to the limits, ``np.clip`` to the
speed window) and is now written on Python floats for speed. Lockstep runs
must stay reproducible for a seed, so the new form must not differ in a
single bit, signed zeros included, and must refuse the same input with the
same reason. The numpy form is kept here, as it was, as the reference.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roarm.joints import LOWER, MAX_VELOCITY, NAMES, ROARM_M3, UPPER, JointSpec
from roarm.safety import BadCommand, check_command, order_floats, order_targets


def reference_order(names: Sequence[str], position: Sequence[float], spec: JointSpec = ROARM_M3) -> np.ndarray:
    """order_targets as it was written on numpy (commit 6ddb647)."""
    values = np.asarray(position, dtype=float)
    n = len(spec.names)
    if not names:
        if values.shape != (n,):
            raise BadCommand("joint_count", f"expected {n} positions, got {values.size}")
        ordered = values
    else:
        if len(names) != values.size:
            raise BadCommand("joint_count", f"{len(names)} names but {values.size} positions")
        unknown = [name for name in names if name not in spec.names]
        if unknown:
            raise BadCommand("unknown_joint", f"unknown joint(s) {unknown}; known: {list(spec.names)}")
        if len(set(names)) != n:
            raise BadCommand("joint_count", f"command names {len(set(names))} of the {n} joints; all are required")
        index = {name: i for i, name in enumerate(names)}
        ordered = values[[index[name] for name in spec.names]]
    if not np.all(np.isfinite(ordered)):
        raise BadCommand("non_finite", f"NaN or inf in targets {ordered.tolist()}")
    return ordered


def reference_check(names: Sequence[str], position: Sequence[float], previous: np.ndarray, dt: float,
                    spec: JointSpec = ROARM_M3, max_velocity: np.ndarray | None = None
                    ) -> tuple[np.ndarray, bool, bool]:
    """check_command as it was written on numpy (commit 6ddb647)."""
    target = reference_order(names, position, spec)
    limited = np.clip(target, spec.lower, spec.upper)
    clamped_limits = not np.array_equal(limited, target)
    vmax = np.asarray(spec.max_velocity if max_velocity is None else max_velocity, dtype=float)
    step = vmax * max(dt, 0.0)
    stepped = np.clip(limited, previous - step, previous + step)
    clamped_speed = not np.array_equal(stepped, limited)
    return stepped, clamped_limits, clamped_speed


def bits(values: np.ndarray | Sequence[float]) -> list[int]:
    """Each value's IEEE bits (tells 0.0 from -0.0)."""
    return [struct.unpack("<q", struct.pack("<d", float(v)))[0] for v in values]


def outcome(fn, *args):  # noqa: ANN001, ANN202 - a test helper over both forms
    try:
        return ("ok", fn(*args))
    except BadCommand as bad:
        return ("bad", bad.reason, bad.detail)


# Values around and at the limits (both signs of zero), far outside them, and non-finite ones.
EDGES = [0.0, -0.0, *LOWER.tolist(), *UPPER.tolist(), math.pi, -math.pi, 1e300, -1e300, 5e-324]
joint_value = st.one_of(st.floats(-10, 10), st.sampled_from(EDGES), st.floats(allow_nan=True, allow_infinity=True))
finite_value = st.one_of(st.floats(-10, 10), st.sampled_from(EDGES))
six = st.lists(joint_value, min_size=6, max_size=6)
dts = st.one_of(st.floats(0, 0.1), st.sampled_from([0.0, -0.0, 0.01, -0.01, 1e-9, 10.0]))
vmaxes = st.one_of(st.none(), st.lists(st.floats(0, 10), min_size=6, max_size=6).map(np.array),
                   st.floats(0, 10))


@settings(max_examples=600, deadline=None)
@given(position=six, previous=st.lists(finite_value, min_size=6, max_size=6), dt=dts, vmax=vmaxes)
def test_check_command_matches_numpy_bit_for_bit(position: list[float], previous: list[float], dt: float,
                                                 vmax: np.ndarray | float | None) -> None:
    prev = np.array(previous)
    old = outcome(reference_check, (), position, prev, dt, ROARM_M3, vmax)
    new = outcome(lambda *a: check_command(*a), (), position, prev, dt, ROARM_M3, vmax)
    if old[0] == "bad":
        assert new == old
        return
    assert new[0] == "ok"
    stepped, clamped_limits, clamped_speed = old[1]
    checked = new[1]
    assert isinstance(checked.target, np.ndarray) and checked.target.dtype == np.float64
    assert bits(checked.target) == bits(stepped)
    assert (checked.clamped_limits, checked.clamped_speed) == (clamped_limits, clamped_speed)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_named_and_malformed_commands_refused_alike(data: st.DataObject) -> None:
    """Reordered, partial, unknown and repeated names; wrong counts; ints and nested input (numpy's path)."""
    names = data.draw(st.one_of(
        st.just(()),
        st.permutations(list(NAMES)).map(tuple),
        st.lists(st.sampled_from([*NAMES, "elbow2", ""]), max_size=8).map(tuple)))
    position = data.draw(st.one_of(
        st.lists(joint_value, min_size=0, max_size=8),
        st.lists(st.integers(-3, 3), min_size=6, max_size=6),
        st.lists(finite_value, min_size=6, max_size=6).map(tuple),
        st.lists(finite_value, min_size=6, max_size=6).map(np.array),
        st.lists(st.integers(-3, 3), min_size=6, max_size=6).map(np.array),
        st.lists(finite_value, min_size=6, max_size=6).map(lambda v: np.array(v).reshape(6, 1))))
    if np.ndim(position) != 1:
        # Nested input: numpy's form refused it without names but, with six names, returned a (6, 1)
        # "target" that broadcast into a 6x6 clip. Now it is refused either way, before any check.
        for fn in (order_targets, order_floats):
            with pytest.raises(BadCommand) as refused:
                fn(names, position)
            assert refused.value.reason in ("joint_count", "unknown_joint")
        return
    old = outcome(reference_order, names, position)
    for new in (outcome(order_targets, names, position), outcome(order_floats, names, position)):
        assert new[0] == old[0]
        if old[0] == "bad":
            assert new == old
        else:
            assert bits(new[1]) == bits(old[1])
    prev = np.array(data.draw(st.lists(finite_value, min_size=6, max_size=6)))
    old_check = outcome(reference_check, names, position, prev, 0.01, ROARM_M3, MAX_VELOCITY)
    new_check = outcome(check_command, names, position, prev, 0.01, ROARM_M3, MAX_VELOCITY)
    assert new_check[0] == old_check[0]
    if old_check[0] == "bad":
        assert new_check == old_check
    else:
        assert bits(new_check[1].target) == bits(old_check[1][0])


def test_protobuf_fields_take_the_float_path() -> None:
    """What a node receives (a repeated double field) is judged on floats, with the numpy result."""
    from schemas import messages_pb2

    command = messages_pb2.JointCommand(position=[4.0, -2.0, 3.0, 0.1, -0.0, 1.6])
    previous = np.zeros(6)
    checked = check_command(command.names, command.position, previous, 0.01)
    stepped, limits, speed = reference_check(command.names, command.position, previous, 0.01)
    assert bits(checked.target) == bits(stepped) and (checked.clamped_limits, checked.clamped_speed) == (limits, speed)
    assert checked.clamped_limits and checked.clamped_speed
    assert checked.target.tolist() == pytest.approx([0.047, -0.047, 0.047, 0.047, 0.0, 0.047])
    assert np.all(checked.target >= LOWER) and np.all(checked.target <= UPPER)
