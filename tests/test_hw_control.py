"""The hw_node's command filter: limits, speed, deadline hold, no replay after a re-seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hw_node.control import CommandFilter, ControlConfig
from roarm.joints import pose
from roarm.safety import BadCommand

HOME = pose("home")


def make(rate: float = 25.0, deadline: float = 0.5, vmax: float = 1.0) -> CommandFilter:
    f = CommandFilter(ControlConfig(rate_hz=rate, deadline_s=deadline, max_velocity=tuple(np.full(6, vmax))))
    f.seed(HOME, now=0.0)
    return f


def test_nothing_is_sent_before_seeding_or_before_a_command() -> None:
    f = CommandFilter(ControlConfig())
    f.accept((), HOME, now=0.0)
    assert f.tick(0.04, HOME).target is None  # not seeded: never command an arm we have not seen
    f.seed(HOME, now=0.0)
    assert f.tick(0.04, HOME).target is None  # seeded, but the seed forgot the command


def test_targets_are_clamped_to_the_limits() -> None:
    f = make(vmax=100.0)
    target = HOME.copy()
    target[2] = 3.5  # elbow beyond 2.95
    f.accept((), target, now=0.0)
    tick = f.tick(0.04, HOME)
    assert tick.clamped_limits and tick.target is not None
    assert tick.target[2] == pytest.approx(2.95)


def test_a_far_target_is_approached_at_the_speed_limit() -> None:
    f = make(vmax=1.0)
    target = HOME.copy()
    target[0] = 1.0
    f.accept((), target, now=0.0)
    now, sent = 0.0, []
    for _ in range(40):
        now += 0.04
        f.accept((), target, now=now)  # a policy keeps asking for the same far target
        tick = f.tick(now, None)
        assert tick.target is not None
        sent.append(tick.target[0])
    steps = np.diff([0.0, *sent])
    assert np.all(steps <= 1.0 * 0.04 + 1e-9)
    assert sent[-1] == pytest.approx(1.0)


def test_a_pause_does_not_buy_a_jump() -> None:
    """After a long gap the next step is still at most two periods of motion."""
    f = make(vmax=1.0)
    target = HOME.copy()
    target[0] = 1.0
    f.accept((), target, now=10.0)
    tick = f.tick(10.0, None)
    assert tick.target is not None and tick.target[0] <= 2 * 0.04 + 1e-9


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_targets_are_refused_whole(bad: float) -> None:
    f = make()
    target = HOME.copy()
    target[1] = bad
    with pytest.raises(BadCommand) as info:
        f.accept((), target, now=0.0)
    assert info.value.reason == "non_finite"
    assert f.tick(0.04, HOME).target is None


def test_wrong_joint_count_is_refused() -> None:
    with pytest.raises(BadCommand):
        make().accept((), [0.0, 1.0], now=0.0)


def test_deadline_holds_the_measured_position_once() -> None:
    f = make(deadline=0.3)
    target = HOME.copy()
    target[0] = 1.0
    f.accept((), target, now=0.0)
    assert f.tick(0.04, HOME).target is not None
    measured = HOME.copy()
    measured[0] = 0.05
    tick = f.tick(0.35, measured)
    assert tick.hold and tick.target is not None
    np.testing.assert_allclose(tick.target, measured)
    assert f.holding
    assert f.tick(0.40, measured).target is None  # nothing more until a new command


def test_seed_forgets_the_old_command() -> None:
    """After a reconnect the node re-seeds: the command from before must not be replayed."""
    f = make(deadline=100.0)
    target = HOME.copy()
    target[0] = 1.0
    f.accept((), target, now=0.0)
    f.tick(0.04, None)
    elsewhere = pose("zero")
    f.seed(elsewhere, now=1.0)
    assert f.tick(1.04, elsewhere).target is None


def test_a_slower_target_uses_its_own_speed() -> None:
    f = make(vmax=2.0)
    target = HOME.copy()
    target[0] = 1.0
    f.accept((), target, now=0.0, max_velocity=0.5)
    assert f.speed_limit == pytest.approx(0.5)
    tick = f.tick(0.04, None)
    assert tick.target is not None and tick.target[0] == pytest.approx(0.5 * 0.04)


def test_per_joint_speed_limits_only_slow_down() -> None:
    f = make(vmax=1.0)
    target = HOME.copy()
    target[0] = 1.0
    target[1] = 1.0
    f.accept((), target, now=0.0, max_velocity=np.array([0.25, 5.0, 1, 1, 1, 1]))
    tick = f.tick(0.04, None)
    assert tick.target is not None
    assert tick.target[0] == pytest.approx(0.25 * 0.04)
    assert tick.target[1] == pytest.approx(1.0 * 0.04)  # 5 rad/s asked, the configured 1 rad/s kept
