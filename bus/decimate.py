"""Publishing a topic on every n-th step only.

``sim/clock`` repeats what every JointState already carries (``sim_time``,
``seq``): published each lockstep step it is a third of the messages the
loop sends, receives and records, for nothing a consumer lacks. A node asks
``Every(n).due(step)`` before building such a message, so the skipped ones
cost neither the protobuf nor the send.

How the sim node uses it (sim_node/node.py, ``hil node sim --clock-every N``):

    self.clock_every = Every(config.clock_every)   # 1 = every step, 0 = never
    ...
    if self.clock_every.due(self.k):
        self.node.publish(CLOCK, clock)

The sim node's default is ``CLOCK_EVERY_LOCKSTEP`` in lockstep and every
step in realtime (docs/contracts.md).
"""

from __future__ import annotations

from dataclasses import dataclass

# Suggested for lockstep runs: one clock message per 10 control steps
# (0.1 s of simulated time at dt 10 ms) is plenty for a viewer's time axis.
CLOCK_EVERY_LOCKSTEP = 10


@dataclass(frozen=True)
class Every:
    """Publish on steps ``0, n, 2n, ...``; ``n == 1`` every step, ``n == 0`` never."""

    n: int = 1

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"every must be >= 0 steps (0 = never), got {self.n}")

    def due(self, step: int) -> bool:
        n = self.n
        return n == 1 or (n > 0 and step % n == 0)

    @classmethod
    def parse(cls, text: str) -> Every:
        """A count of steps from a command line: ``1`` every step, ``10`` every tenth, ``0`` or ``never``."""
        if text == "never":
            return cls(0)
        try:
            return cls(int(text))
        except ValueError:
            raise ValueError(f"publish every N steps needs a whole number >= 0 or 'never', got {text!r}") from None
