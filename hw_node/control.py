"""What target the arm gets, and when: safety clamp, rate cap, deadline hold.

The policy may publish at any rate; the serial link carries about 25-40
command lines a second. So received commands only update a *desired* target
(validated at once, so a bad one is counted when it arrives), and on each
control tick the filter steps the *sent* target toward it through
``roarm.safety.check_command`` (joint limits, and a maximum joint speed over
the time since the previous sent target). A desired target far away is thus
approached at the speed limit over several ticks, never in one jump.

If no command arrives for ``deadline_s``, the filter holds the measured
position once. After a reconnect, reset, torque change or e-stop the owner
calls ``seed`` with fresh feedback: the sent target becomes the measured
position and any desired target from before is forgotten, so nothing old is
replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from roarm.joints import ROARM_M3, JointSpec
from roarm.safety import check_command, order_targets


@dataclass(frozen=True)
class ControlConfig:
    rate_hz: float = 25.0
    deadline_s: float = 0.5
    max_velocity: tuple[float, ...] = tuple(np.full(6, 2.0))  # rad/s, below the servo's 4.7 on purpose
    spec: JointSpec = ROARM_M3


@dataclass(frozen=True)
class Tick:
    """The outcome of one control tick."""

    target: np.ndarray | None  # send this, or None: nothing new to send
    clamped_limits: bool = False
    clamped_speed: bool = False
    hold: bool = False  # the deadline passed: this is the measured position


class CommandFilter:
    def __init__(self, config: ControlConfig) -> None:
        self.config = config
        self.period = 1.0 / config.rate_hz
        self.vmax = np.asarray(config.max_velocity, dtype=float)
        self.sent: np.ndarray | None = None  # None until seeded from feedback
        self.sent_at = 0.0
        self.desired: np.ndarray | None = None
        self.desired_names: tuple[str, ...] = ()
        self.last_command_at: float | None = None
        self.holding = False
        self.obs_seq = 0
        self.fresh = False  # the desired target arrived since the last tick
        self.desired_vmax: np.ndarray | None = None  # a slower limit for this target (reset)

    @property
    def seeded(self) -> bool:
        return self.sent is not None

    def seed(self, measured: np.ndarray, now: float) -> None:
        """Start over from the measured position; forget every older command."""
        self.sent = self.config.spec.clamp(np.asarray(measured, dtype=float))
        self.sent_at = now
        self.desired = None
        self.desired_vmax = None
        self.last_command_at = None
        self.holding = False

    def unseed(self) -> None:
        """Stop commanding until fresh feedback seeds again (fault, e-stop, torque off)."""
        self.sent = None
        self.desired = None
        self.last_command_at = None

    def accept(self, names: Sequence[str], position: Sequence[float], now: float, obs_seq: int = 0,
               max_velocity: float | np.ndarray | None = None) -> None:
        """Take a new desired target; raises roarm.safety.BadCommand (applies nothing).

        ``max_velocity`` (rad/s, one or per joint) slows this target below
        the configured limit, never above it.
        """
        self.desired = order_targets(names, position, self.config.spec)
        self.desired_vmax = None if max_velocity is None else np.minimum(self.vmax, max_velocity)
        self.last_command_at = now
        self.holding = False
        self.obs_seq = obs_seq
        self.fresh = True

    @property
    def speed_limit(self) -> float:
        """The fastest joint speed the current target may use (servo ``spd``)."""
        return float(np.max(self.vmax if self.desired_vmax is None else self.desired_vmax))

    def tick(self, now: float, measured: np.ndarray | None) -> Tick:
        """The target to send now, if any."""
        if self.sent is None:
            return Tick(None)
        if self.last_command_at is not None and now - self.last_command_at > self.config.deadline_s:
            self.last_command_at = None
            self.desired = None
            if measured is not None:
                self.holding = True
                self.sent = self.config.spec.clamp(np.asarray(measured, dtype=float))
                self.sent_at = now
                return Tick(self.sent.copy(), hold=True)
        if self.desired is None:
            return Tick(None)
        # Never credit more than two periods of motion: after a pause the
        # arm still starts from the last target at the speed limit.
        dt = min(now - self.sent_at, 2 * self.period)
        vmax = self.vmax if self.desired_vmax is None else self.desired_vmax
        checked = check_command((), self.desired, self.sent, dt, self.config.spec, vmax)
        fresh, self.fresh = self.fresh, False
        self.sent = checked.target
        self.sent_at = now
        return Tick(checked.target.copy(), fresh and checked.clamped_limits, fresh and checked.clamped_speed)
