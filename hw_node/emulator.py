"""The arm's firmware on a real pseudo-terminal, for tests and benchmarks.

A driver opens the pty's slave path exactly as it would open /dev/ttyUSB0:
nothing in the driver knows it is talking to an emulator. The emulator owns
the master side and runs a firmware loop: read what the host wrote, let
``hw_node.firmware`` act on it, move the servos, print. Output (and input)
is paced at the baud rate (115200 baud, 8N1: 11.52 bytes per millisecond),
so rate limits and latencies are those of the real cable.

Faults, scheduled from the command line or sent at run time through a
control FIFO (one per line: ``unplug SECONDS``, ``garbage BYTES``,
``unpowered on|off``, ``reboot``):

- unplug: close the pty (the driver's next read or write fails) and remove
  the ``--link`` symlink, as a USB device disappears; after SECONDS open a
  new pty and point the symlink at it. The firmware keeps running meanwhile.
- garbage: a burst of random bytes, an overlong line without newline, bare
  numbers, half a JSON line and malformed feedback, mid-stream.
- unpowered: the servos stop answering (feedback turns into the captured
  garbage pattern, motion commands do nothing).
- reboot: boot text, print mode back to its boot value, drive to init pose.
"""

from __future__ import annotations

import errno
import os
import random
import select
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bus.errors import HilError
from hw_node import protocol
from hw_node.firmware import Firmware, FirmwareConfig
from hw_node.lines import LineBuffer

LOOP_S = 0.004  # one firmware loop pass while there is something to do
MIN_PASS_S = 0.001
MAX_OUTPUT = 16384  # bytes queued for the host before the oldest are dropped
FAULT_KINDS = ("unplug", "garbage", "unpowered", "reboot")
# What the firmware prints between JSON lines on its own (docs/roarm_m3.md).
NOISE = (b"Low operating voltage detected...\r\n", b"Servo ID:14 status: checked.\r\n", b"1\r\n", b"-1\r\n",
         b"All bus servos status checked.\r\n")


class FaultError(HilError, ValueError):
    """A fault description that cannot be understood."""


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float = 0.0
    arg: float = 0.0  # unplug: seconds away; garbage: bytes; unpowered: seconds (0: for good)

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``KIND[@SECONDS][:ARG]``, e.g. ``unplug@5:2``, ``garbage@3:4000``, ``unpowered``."""
        head, _, arg = text.partition(":")
        kind, _, at = head.partition("@")
        if kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault {kind!r} in {text!r}; known: {', '.join(FAULT_KINDS)}")
        try:
            return cls(kind, float(at) if at else 0.0, float(arg) if arg else _default_arg(kind))
        except ValueError:
            raise FaultError(f"bad number in fault {text!r}; expected KIND[@SECONDS][:ARG]") from None


def _default_arg(kind: str) -> float:
    return {"unplug": 2.0, "garbage": 4000.0}.get(kind, 0.0)


@dataclass
class EmulatorConfig:
    link: Path | None = None  # a stable symlink to the current pty
    baud: int = protocol.BAUD  # 0: no pacing
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig)
    faults: tuple[Fault, ...] = ()
    control: Path | None = None  # FIFO for faults at run time
    seed: int = 0
    noise_s: float = 0.0  # print a line of debug text or a bare number this often (0: never)


def garbage(rng: random.Random, nbytes: int) -> bytes:
    """What a glitching cable or a confused firmware might print."""
    parts = [
        b"\r\n",
        bytes(rng.getrandbits(8) for _ in range(max(0, nbytes // 2))),
        b"\r\n",
        b"x" * max(0, nbytes // 2),  # a line far longer than any real one
        b"\r\n3.14\r\n-1\r\n",
        b'{"T":1051,"x":12.5,"b":',  # cut short
        b"\r\n",
        b'{"T":1051,"b":"nan","s":null}\r\n',
        b"Low operating voltage detected...\r\n",
        b"[1,2,3]\r\n",
    ]
    return b"".join(parts)


class Wire:
    """One direction of the UART: n bytes occupy it for n * 10 / baud seconds.

    ``allowance`` is what may be handed over now so the wire stays busy at
    most one loop pass ahead; with baud 0 the wire is unlimited.
    """

    def __init__(self, baud: int) -> None:
        self.byte_s = protocol.line_seconds(1, baud) if baud > 0 else 0.0
        self.busy_until = 0.0
        self.backlogged = False  # the last allowance was smaller than what waited

    def allowance(self, now: float) -> int:
        if self.byte_s == 0.0:
            return 1 << 20
        return max(0, int((now + LOOP_S - max(self.busy_until, now)) / self.byte_s))

    def used(self, nbytes: int, now: float) -> None:
        self.busy_until = max(self.busy_until, now) + nbytes * self.byte_s


class Pty:
    """One pseudo-terminal: the master for us, the slave path for the driver."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line discipline: bytes as they are
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class Emulator:
    def __init__(self, config: EmulatorConfig, announce: Callable[[str], None] = print) -> None:
        self.config = config
        self.firmware = Firmware(config.firmware)
        self.announce = announce
        self.rng = random.Random(config.seed)
        self.lines = LineBuffer(max_line=1024)
        self.pty: Pty | None = None
        self.out = bytearray()
        self.pending = sorted(config.faults, key=lambda f: f.at_s)
        self.replug_at: float | None = None
        self.power_back_at: float | None = None
        self.running = True
        self.started = time.monotonic()
        self.next_noise = self.started + config.noise_s
        self.control_fd: int | None = None
        self.control_lines = LineBuffer(max_line=256)
        self.rx_wire = Wire(config.baud)
        self.tx_wire = Wire(config.baud)
        self.stats = {"rx_bytes": 0, "tx_bytes": 0, "dropped_out": 0, "lines": 0}

    # -- the pty -----------------------------------------------------------------
    def plug(self) -> str:
        self.pty = Pty()
        self.out.clear()
        self.lines.clear()
        if self.config.link is not None:
            tmp = self.config.link.with_name(self.config.link.name + ".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.pty.path)
            tmp.replace(self.config.link)
        self.announce(f"emulated RoArm-M3 on {self.pty.path}" +
                      (f" (link {self.config.link})" if self.config.link else ""))
        return self.pty.path

    def unplug(self, seconds: float) -> None:
        if self.pty is None:
            return
        self.announce(f"unplugged for {seconds:g} s")
        self.pty.close()
        self.pty = None
        if self.config.link is not None:
            self.config.link.unlink(missing_ok=True)
        self.replug_at = time.monotonic() + seconds

    def open_control(self) -> None:
        if self.config.control is None:
            return
        path = self.config.control
        if not path.exists():
            os.mkfifo(path)
        # O_RDWR keeps the FIFO open when writers come and go (no EOF storms).
        self.control_fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)

    # -- faults --------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        if fault.kind == "unplug":
            self.unplug(fault.arg)
        elif fault.kind == "garbage":
            self.announce(f"garbage burst of about {int(fault.arg)} bytes")
            self._queue(garbage(self.rng, int(fault.arg)), force=True)
        elif fault.kind == "unpowered":
            on = fault.arg >= 0
            self.firmware.unpowered = on
            self.power_back_at = time.monotonic() + fault.arg if on and fault.arg > 0 else None
            self.announce("servos unpowered" if on else "servos powered")
        elif fault.kind == "reboot":
            self.announce("reboot")
            self.out.clear()
            self._queue(b"".join(self.firmware.boot()), force=True)

    def _control(self) -> None:
        if self.control_fd is None:
            return
        try:
            data = os.read(self.control_fd, 4096)
        except BlockingIOError:
            return
        for raw in self.control_lines.feed(data):
            words = raw.decode(errors="replace").split()
            if not words:
                continue
            kind, arg = words[0], (words[1] if len(words) > 1 else "")
            if kind == "unpowered":
                arg = {"on": "0", "off": "-1"}.get(arg, arg or "0")
            try:
                self.inject(Fault.parse(f"{kind}:{arg}" if arg else kind))
            except FaultError as exc:
                self.announce(f"control: {exc}")

    # -- the firmware loop ---------------------------------------------------------
    def _queue(self, data: bytes, force: bool = False) -> None:
        if self.pty is None and not force:
            return
        self.out += data
        if len(self.out) > MAX_OUTPUT:
            drop = len(self.out) - MAX_OUTPUT
            del self.out[:drop]
            self.stats["dropped_out"] += drop

    def step(self, now: float, dt: float) -> None:
        """One firmware loop pass: faults, input, servo motion, output."""
        while self.pending and now - self.started >= self.pending[0].at_s:
            self.inject(self.pending.pop(0))
        if self.replug_at is not None and now >= self.replug_at:
            self.replug_at = None
            self.plug()
        if self.power_back_at is not None and now >= self.power_back_at:
            self.power_back_at = None
            self.inject(Fault("unpowered", arg=-1))
        self._control()
        if self.config.noise_s > 0 and now >= self.next_noise:
            self.next_noise = now + self.config.noise_s
            self._queue(self.rng.choice(NOISE))
        if self.pty is not None:
            self._receive(self.rx_wire.allowance(now))
        self.firmware.advance(dt)
        if self.pty is not None and self.firmware.print_mode == 2 and not self.out and not self.firmware.busy:
            self._queue(self.firmware.feedback())
        if self.pty is not None:
            self._transmit(self.tx_wire.allowance(now), now)

    def _receive(self, budget: int) -> None:
        assert self.pty is not None
        if self.firmware.busy:
            return  # T:100 blocks the firmware loop; input waits in the buffer
        if budget <= 0:
            self.rx_wire.backlogged = True
            return
        try:
            data = os.read(self.pty.master, budget)
        except BlockingIOError:
            self.rx_wire.backlogged = False
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return  # no slave open right now
            raise
        self.rx_wire.backlogged = len(data) >= budget
        self.stats["rx_bytes"] += len(data)
        self.rx_wire.used(len(data), time.monotonic())
        for raw in self.lines.feed(data):
            self.stats["lines"] += 1
            for reply in self.firmware.handle(raw):
                self._queue(reply)

    def _transmit(self, budget: int, now: float) -> None:
        assert self.pty is not None
        if not self.out or budget <= 0:
            return
        try:
            sent = os.write(self.pty.master, bytes(self.out[:budget]))
        except BlockingIOError:
            return  # nobody reading and the pty buffer is full
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            raise
        del self.out[:sent]
        self.stats["tx_bytes"] += sent
        self.tx_wire.used(sent, now)

    def run(self) -> None:
        """Boot, then loop until ``running`` is cleared (a signal handler does)."""
        self.open_control()
        self.plug()
        self._queue(b"".join(self.firmware.boot()))
        last = time.monotonic()
        while self.running:
            fds = [self.control_fd] if self.control_fd is not None else []
            if self.pty is not None and not self.firmware.busy:
                fds.append(self.pty.master)
            busy = self.out or self.firmware.print_mode == 2 or self.firmware.busy or self.pty is None \
                or self.rx_wire.backlogged
            try:
                select.select(fds, [], [], LOOP_S if busy else 0.05)
            except InterruptedError:
                pass
            now = time.monotonic()
            if now - last < MIN_PASS_S:  # input arrived: let a few bytes cross the wire first
                time.sleep(MIN_PASS_S - (now - last))
                now = time.monotonic()
            self.step(now, min(now - last, 0.1))
            last = now

    def close(self) -> None:
        if self.pty is not None:
            self.pty.close()
            self.pty = None
        if self.config.link is not None:
            self.config.link.unlink(missing_ok=True)
        if self.control_fd is not None:
            os.close(self.control_fd)
