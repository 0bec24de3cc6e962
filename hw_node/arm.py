"""The RoArm-M3 as a small robot backend: connect, read state, apply a
command, torque, e-stop, close. Knows the serial protocol, not the bus.

Feedback is polled with T:105 once per control tick (print mode 0, as
Waveshare's own driver does). If the arm keeps streaming anyway (print mode
2 on a build that ignores T:605, or lines still in flight from before),
unsolicited feedback lines are used as they come and polling pauses, so the
link is never asked to carry both.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from hw_node import protocol
from hw_node.link import LinkConfig, SerialLink
from hw_node.protocol import Feedback, Kind

# Until a real feedback line has been seen, assume a long one (all fields of
# the newest builds, wide numbers) so the rate cap starts conservative.
FEEDBACK_BYTES_GUESS = 330
# A stream (print mode 2) sends a line every firmware loop pass, throttled by
# the wire to one per ~25 ms: a longer silence means it has stopped.
STREAM_GAP_S = 0.1
# Boot and debug text kept for `info` (the firmware's own words about itself).
MAX_FIRMWARE_LINES = 12


@dataclass(frozen=True)
class ArmConfig:
    link: LinkConfig
    feedback_timeout_s: float = 1.0  # no feedback this long while open: degraded
    request_timeout_s: float = 0.25  # an unanswered T:105 is given up after this
    acc: int = 0  # T:102 acceleration, 0..254 (0: the servo's maximum)


class RoArmM3:
    def __init__(self, config: ArmConfig, counters: Counter[str]) -> None:
        self.config = config
        self.link = SerialLink(config.link)
        self.counters = counters
        self.latest: Feedback | None = None
        self.latest_at = 0.0
        self.untrusted_why = ""
        self.firmware_text: list[str] = []
        self._longest_feedback = 0
        self.command_bytes = len(protocol.joints_command(np.zeros(6))) + len(protocol.feedback_request())
        self._generation = 0
        self._connected_at = 0.0
        self._request_at: float | None = None  # an outstanding T:105
        self._unsolicited: deque[float] = deque(maxlen=3)  # when feedback nobody asked for arrived
        self._mode_set_at = -1e9
        self._owed = False

    # -- connection ------------------------------------------------------------
    def connect(self) -> None:
        """Open the port (SerialException propagates) and set the print mode."""
        self.link.open()
        self._configure()

    def _configure(self) -> None:
        """After every (re)connect: quiet print mode, then ask for fresh feedback."""
        self._generation = self.link.generation
        self._connected_at = time.monotonic()
        self.latest = None
        self._request_at = None
        self._owed = False
        self._set_print_mode(self._connected_at)
        self.request_feedback(self._connected_at)

    def _set_print_mode(self, now: float) -> None:
        """Print mode 0: feedback only when asked, so the link carries commands too."""
        self._mode_set_at = now
        self.link.write(protocol.print_mode(0))

    @property
    def fault(self) -> str:
        return self.link.fault

    @property
    def generation(self) -> int:
        return self.link.generation

    # -- reading ---------------------------------------------------------------
    def poll(self, now: float) -> Feedback | None:
        """Read what the arm sent; the newest feedback line, or None.

        Reconnects a faulted port when its backoff allows; a reconnect
        drops the previous reading, so nothing measured before it is used.
        """
        if not self.link.is_open:
            if not self.link.maybe_reconnect(now):
                return None
            self.counters["serial.reconnect"] += 1
        if self.link.generation != self._generation:
            self._configure()
        newest: Feedback | None = None
        for raw in self.link.read_lines():
            line = protocol.parse_line(raw)
            if line.kind is Kind.FEEDBACK:
                assert line.feedback is not None
                newest = line.feedback
                if self._request_at is None:
                    self._unsolicited.append(now)
                    self.counters["serial.unsolicited"] += 1
                    if self.streaming(now) and now - self._mode_set_at > 1.0:  # a reboot? ask for quiet again
                        self._set_print_mode(now)
                self._request_at = None
                if self._owed:  # a tick passed while this line was on its way
                    self.request_feedback(now)
                continue
            self.counters[f"serial.{line.kind.value}"] += 1
            if line.kind is Kind.TEXT and len(self.firmware_text) < MAX_FIRMWARE_LINES \
                    and line.text not in self.firmware_text:
                self.firmware_text.append(line.text)
        if self.link.lines.stats.overlong:
            self.counters["serial.overlong"] = self.link.lines.stats.overlong
        if self.link.fault:
            self.counters["serial.fault"] += 1
            self.latest = None
            return None
        if newest is not None:
            self.latest = newest
            self.latest_at = now
            self._longest_feedback = max(self._longest_feedback, newest.nbytes)
            self.counters["feedback.lines"] += 1
            self.untrusted_why = protocol.plausibility(newest)
            if self.untrusted_why:
                self.counters["feedback.untrusted"] += 1
        return newest

    @property
    def feedback_bytes(self) -> int:
        """The longest feedback line seen (a conservative guess before the first)."""
        return self._longest_feedback or FEEDBACK_BYTES_GUESS

    def feedback_age(self, now: float) -> float:
        """Seconds since the last feedback (or since connecting, if none yet)."""
        return now - (self.latest_at if self.latest is not None else self._connected_at)

    def streaming(self, now: float) -> bool:
        """The arm sends feedback nobody asked for (print mode 2): several lines
        within a second and still coming. Late replies that were stuck behind a
        burst of noise arrive together and then stop: not a stream."""
        recent = self._unsolicited
        return len(recent) == recent.maxlen and now - recent[0] < 1.0 and now - recent[-1] < STREAM_GAP_S

    def request_feedback(self, now: float) -> None:
        """Ask for one feedback line unless one is on its way or the arm streams."""
        if self.streaming(now):
            return
        if self._request_at is not None:
            if now - self._request_at < self.config.request_timeout_s:
                self._owed = True  # ask as soon as the line on its way has arrived
                return
            self.counters["feedback.timeout"] += 1
        self._owed = False
        if self.link.write(protocol.feedback_request()):
            self._request_at = now

    # -- commanding ------------------------------------------------------------
    def send_joints(self, target: np.ndarray, max_velocity: float) -> bool:
        """T:102 in bus radians, with the servo speed capped at ``max_velocity``."""
        line = protocol.joints_command(target, spd=protocol.speed_steps(max_velocity), acc=self.config.acc)
        self.command_bytes = len(line) + len(protocol.feedback_request())
        return self.link.write(line)

    def set_torque(self, enable: bool) -> bool:
        return self.link.write(protocol.torque(enable))

    def estop(self, engage: bool) -> bool:
        return self.link.write(protocol.estop() if engage else protocol.clear_estop())

    def link_rate_hz(self, utilization: float = 0.8) -> float:
        """Control ticks per second the link carries: each tick sends one T:102
        and one T:105 and receives one feedback line; the busier direction
        decides, with headroom for the odd debug line."""
        busiest = max(self.command_bytes, self.feedback_bytes)
        return utilization / protocol.line_seconds(busiest, self.config.link.baud)

    def close(self) -> None:
        self.link.close()
