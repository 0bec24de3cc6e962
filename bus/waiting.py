"""How a loop waits for its next message: block at once, or spin a little first.

A message that arrives while its receiver sleeps in poll() costs a wake-up:
the kernel has to schedule the receiving thread again, which on an idle
virtual machine takes tens of microseconds (a deep C-state, a vCPU to wake).
Looking for the message without blocking for a bounded time first (a spin)
turns that into a plain read when the answer comes quickly, as it does in a
lockstep loop, at the price of a core held busy while spinning.

That price is only worth paying when a core is spare: on a machine whose
cores are all taken, the spinning receiver steals the time the sender (and
ZMQ's I/O threads) need to produce the very message it waits for. So
``Waiting.auto()`` turns spinning on only when the machine has cores to
spare, and every loop that spins can be told not to (``spin_us=0``).
docs/benchmarks.md has the measured gain and CPU price.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import zmq

from bus.sockets import EVENTS, POLLIN

# Long enough to cover a lockstep peer's answer on a fast machine (a raw
# ping-pong between two processes takes 20-60 us), short enough that a
# spin that finds nothing costs little beside the wait that follows it.
DEFAULT_SPIN_US = 50
# Cores that must be idle (usable cores minus the 1-minute load average) for
# ``auto`` to spin: the loop's two processes take one core each while they
# spin, and ZMQ's I/O threads need time besides.
SPARE_CORES_NEEDED = 2.0


def spare_cores() -> float:
    """Usable cores minus the 1-minute load average (what the scheduler reports)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return usable - os.getloadavg()[0]


@dataclass(frozen=True)
class Waiting:
    """A loop's waiting strategy: ``spin_us`` microseconds of non-blocking looks before blocking (0 = never spin)."""

    spin_us: int = 0

    def __post_init__(self) -> None:
        if self.spin_us < 0:
            raise ValueError(f"spin_us must be >= 0, got {self.spin_us}")

    @classmethod
    def auto(cls, spin_us: int = DEFAULT_SPIN_US, needed: float = SPARE_CORES_NEEDED) -> Waiting:
        """Spin when the machine has ``needed`` cores to spare now, else block at once."""
        return cls(spin_us if spare_cores() >= needed else 0)

    @classmethod
    def parse(cls, text: str) -> Waiting:
        """``auto``, ``off`` or a number of microseconds (command-line options)."""
        if text == "auto":
            return cls.auto()
        if text == "off":
            return cls(0)
        try:
            return cls(int(text))
        except ValueError:
            raise ValueError(f"spin must be 'auto', 'off' or microseconds, got {text!r}") from None

    @property
    def spins(self) -> bool:
        return self.spin_us > 0

    def describe(self) -> str:
        return f"spin {self.spin_us} us before blocking" if self.spin_us else "block at once (no spin)"


def spin_until_readable(sock: zmq.Socket, spin_us: int) -> bool:
    """Look for a whole message on ``sock`` for up to ``spin_us`` microseconds; True as soon as one waits."""
    end = time.perf_counter_ns() + spin_us * 1000
    get = sock.get
    while True:
        if get(EVENTS) & POLLIN:
            return True
        if time.perf_counter_ns() >= end:
            return False


def spin_poll(poller: zmq.Poller, spin_us: int) -> list[tuple[zmq.Socket, int]]:
    """Poll without blocking for up to ``spin_us`` microseconds; the first non-empty result (or [])."""
    end = time.perf_counter_ns() + spin_us * 1000
    poll = poller.poll
    while True:
        ready = poll(0)
        if ready or time.perf_counter_ns() >= end:
            return ready
