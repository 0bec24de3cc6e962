"""The policy node's watchdog: when to replace the policy's answer with a hold.

Three things make an answer unsafe to send: no fresh state within the
deadline (the robot or the link is gone, so anything computed is stale), an
inference that overran its budget (the arm has moved on meanwhile), and an
output with NaN/inf. In each case the node sends a hold: the last measured
position, ``hold=True``, answering the last state it received, never an
older one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from schemas import messages_pb2


@dataclass(frozen=True)
class WatchdogConfig:
    """Deadline between fresh states, and the time ``act`` may take.

    Defaults suit a shared 2-core machine: generous enough that scheduling
    noise is not a miss, tight enough that a dead robot shows within 0.2 s.
    """

    deadline_s: float = 0.2
    budget_s: float = 0.005

    def __post_init__(self) -> None:
        for name in ("deadline_s", "budget_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"watchdog {name} must be > 0, got {value!r}")


class Watchdog:
    """Remembers the last state and judges each answer; knows nothing of sockets."""

    def __init__(self, config: WatchdogConfig) -> None:
        self.config = config
        self.last_seq: int | None = None
        self.last_position: np.ndarray | None = None
        self._last_fresh = 0.0  # monotonic s of the last state or hold
        self.armed = False

    def on_state(self, seq: int, position: np.ndarray, now: float | None = None) -> None:
        """Note a fresh state; the deadline is armed once the robot has advanced.

        Before its first step after a start or reset, a lockstep robot
        re-publishes its state every deadline while the policy joins (the
        run contract), so silence then is not a miss; from the first advance
        on, it is.
        """
        if self.last_seq is not None and seq != self.last_seq:
            self.armed = seq > self.last_seq
        self.last_seq = seq
        self.last_position = position
        self._last_fresh = time.monotonic() if now is None else now

    def stale(self, now: float | None = None) -> bool:
        """A deadline has passed since the last state (or last hold) of a stepping robot."""
        if self.last_seq is None or not self.armed:
            return False  # nothing measured yet, or the robot has not started stepping
        now = time.monotonic() if now is None else now
        return now - self._last_fresh >= self.config.deadline_s

    def until_stale(self, now: float | None = None) -> float:
        """Seconds until ``stale`` would turn true (for the loop's poll timeout)."""
        if self.last_seq is None or not self.armed:
            return self.config.deadline_s
        now = time.monotonic() if now is None else now
        return max(0.0, self._last_fresh + self.config.deadline_s - now)

    def judge(self, target: np.ndarray, elapsed_s: float) -> str | None:
        """Why this answer must not be sent ("non_finite_output", "budget_overrun"), or None."""
        # On six values, math.isfinite per value costs a fraction of numpy's isfinite + all.
        if target.shape != (6,) or not all(map(math.isfinite, target.tolist())):
            return "non_finite_output"
        if elapsed_s > self.config.budget_s:
            return "budget_overrun"
        return None

    def hold_command(self, lower: np.ndarray, upper: np.ndarray, now: float | None = None) -> messages_pb2.JointCommand:
        """A hold at the last measured position answering the last state; restarts the deadline.

        Restarting means a dead robot gets one hold per deadline, not a flood.
        """
        assert self.last_seq is not None and self.last_position is not None
        self._last_fresh = time.monotonic() if now is None else now
        return messages_pb2.JointCommand(
            obs_seq=self.last_seq,
            position=np.clip(self.last_position, lower, upper).tolist(),
            hold=True,
        )
