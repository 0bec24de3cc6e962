"""The serial port to the arm: DTR and RTS held low, non-blocking lines,
a fault state instead of exceptions, reconnects with backoff.

DTR and RTS are wired to the ESP32's reset and boot pins: raising either may
reboot the arm, which then drives itself to its init pose. pyserial raises
both when it opens a port unless told otherwise *before* opening, so the port
is built with ``do_not_open=True``, both lines are set False, and only then
opened. Nothing here touches them afterwards.

One process per arm: the link holds the port's lock (hw_node/port_lock.py)
from its first open until ``close()``, across faults and reconnects, and
checks it *before* opening the device (opening a tty already pulses the
modem lines in the driver); pyserial's ``exclusive=True`` adds an flock on
the device itself.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field

import serial

from hw_node.lines import LineBuffer
from hw_node.port_lock import DeviceId, PortBusyError, PortLock, busy_message, device_id

READ_CHUNK = 4096


@dataclass(frozen=True)
class LinkConfig:
    port: str  # a device path or any pyserial URL (loop://, socket://, rfc2217://)
    baud: int = 115200
    max_line: int = 2048
    backoff_s: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)


def open_port(port: str, baud: int) -> serial.SerialBase:
    """An open port with DTR/RTS low from the first instant, exclusively ours
    (flock: a second exclusive opener is refused); raises SerialException."""
    ser = serial.serial_for_url(port, baudrate=baud, timeout=0, write_timeout=0.5, exclusive=True,
                                do_not_open=True)
    ser.dtr = False
    ser.rts = False
    try:
        ser.open()
    except serial.SerialException as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK) and "exclusive" in str(exc):
            # Held by a program that takes pyserial's flock but not our lock file.
            raise PortBusyError(busy_message(port, device_id(port) or DeviceId("", port), None)) from None
        raise
    return ser


@dataclass
class LinkCounters:
    opens: int = 0
    faults: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    tx_lines: int = 0
    rx_backlog_max: int = 0  # most bytes found waiting in one read
    tx_backlog: int = 0  # bytes in the OS output queue after the last write
    tx_backlog_max: int = 0
    first_fault: str = field(default="")


class SerialLink:
    """One serial connection that turns errors into a fault state.

    ``read_lines`` and ``write`` never raise for I/O problems: on a
    SerialException or OSError the port is closed, ``fault`` says why, and
    ``maybe_reconnect`` reopens it with backoff. ``generation`` grows with
    every successful open, so the owner notices a reconnect and re-seeds its
    state from fresh feedback instead of replaying an old command.
    """

    def __init__(self, config: LinkConfig) -> None:
        self.config = config
        self.port: serial.SerialBase | None = None
        self.lines = LineBuffer(config.max_line)
        self.fault = ""
        self.generation = 0
        self.counters = LinkCounters()
        self._attempt = 0
        self._next_attempt = 0.0
        self._lock: PortLock | None = None

    # -- opening ---------------------------------------------------------------
    def open(self) -> None:
        """First open; a SerialException propagates (bad path: the CLI reports
        it; PortBusyError: another process holds the port)."""
        self._claim()
        self.port = open_port(self.config.port, self.config.baud)
        self._opened()

    def _claim(self) -> None:
        """Hold the lock of the device the port path names now: kept across a
        reconnect to the same device, moved when the path now names another
        (the emulator's replugged pty). A missing path is left to open_port."""
        try:
            device = device_id(self.config.port)
        except OSError:
            return
        if device is None or (self._lock is not None and self._lock.device.key == device.key):
            return
        lock = PortLock.acquire(self.config.port)
        if self._lock is not None:
            self._lock.release()
        self._lock = lock

    def maybe_reconnect(self, now: float | None = None) -> bool:
        """Try to reopen a faulted port when its backoff has passed. True when open."""
        if self.port is not None:
            return True
        now = time.monotonic() if now is None else now
        if now < self._next_attempt:
            return False
        try:
            self._claim()
            self.port = open_port(self.config.port, self.config.baud)
        except (serial.SerialException, OSError, ValueError) as exc:
            delays = self.config.backoff_s
            delay = delays[min(self._attempt, len(delays) - 1)]
            self._attempt += 1
            self._next_attempt = now + delay
            self.fault = f"serial {self.config.port}: {exc} (retry in {delay:.2f} s)"
            return False
        self._opened()
        return True

    def _opened(self) -> None:
        self.fault = ""
        self._attempt = 0
        self.generation += 1
        self.counters.opens += 1
        self.lines.clear()
        assert self.port is not None
        # Whatever arrived before we listened is old news (a partial line at best).
        try:
            self.port.reset_input_buffer()
        except (serial.SerialException, OSError):
            pass

    @property
    def is_open(self) -> bool:
        return self.port is not None

    # -- I/O -------------------------------------------------------------------
    def read_lines(self) -> list[bytes]:
        """Complete lines waiting now; [] when none or in fault."""
        if self.port is None:
            return []
        out: list[bytes] = []
        try:
            while True:
                chunk = self.port.read(READ_CHUNK)
                if not chunk:
                    break
                self.counters.rx_bytes += len(chunk)
                self.counters.rx_backlog_max = max(self.counters.rx_backlog_max, len(chunk))
                out.extend(self.lines.feed(chunk))
                if len(chunk) < READ_CHUNK:
                    break
        except (serial.SerialException, OSError) as exc:
            self._fail(f"read: {exc}")
        return out

    def write(self, line: bytes) -> bool:
        """Send one command line; False (and fault) when the port failed."""
        if self.port is None:
            return False
        try:
            self.port.write(line)
            backlog = self.port.out_waiting if hasattr(self.port, "out_waiting") else 0
        except (serial.SerialException, serial.SerialTimeoutException, OSError) as exc:
            self._fail(f"write: {exc}")
            return False
        self.counters.tx_bytes += len(line)
        self.counters.tx_lines += 1
        self.counters.tx_backlog = int(backlog or 0)
        self.counters.tx_backlog_max = max(self.counters.tx_backlog_max, self.counters.tx_backlog)
        return True

    def _fail(self, why: str) -> None:
        self.counters.faults += 1
        self.fault = f"serial {self.config.port}: {why}"
        self.counters.first_fault = self.counters.first_fault or self.fault
        self._close_port()
        self._attempt = 0
        self._next_attempt = time.monotonic() + self.config.backoff_s[0]

    def _close_port(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            except (serial.SerialException, OSError):
                pass
            self.port = None

    def close(self) -> None:
        """Close the port and give up its lock (a reconnect keeps the lock; this does not)."""
        self._close_port()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
