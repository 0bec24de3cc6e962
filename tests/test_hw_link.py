"""The serial link: DTR/RTS low before open, lines from a real pty, bounded
memory on garbage, fault on unplug, reconnect with a new generation."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import serial
from serial.urlhandler import protocol_loop

from hw_node.emulator import Pty
from hw_node.link import LinkConfig, SerialLink, open_port


def test_dtr_and_rts_are_low_before_open_and_never_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyserial would raise both on open unless told first; they reset the ESP32."""
    seen: list[tuple[str, bool, bool]] = []
    original_open = protocol_loop.Serial.open

    def recording_open(self: protocol_loop.Serial) -> None:
        seen.append(("open", self.dtr, self.rts))
        original_open(self)

    def record_dtr(self: protocol_loop.Serial) -> None:
        seen.append(("dtr", self.is_open, self.dtr))

    def record_rts(self: protocol_loop.Serial) -> None:
        seen.append(("rts", self.is_open, self.rts))

    monkeypatch.setattr(protocol_loop.Serial, "open", recording_open)
    monkeypatch.setattr(protocol_loop.Serial, "_update_dtr_state", record_dtr)
    monkeypatch.setattr(protocol_loop.Serial, "_update_rts_state", record_rts)
    link = SerialLink(LinkConfig("loop://"))
    link.open()
    assert seen[0] == ("open", False, False)
    assert all(value is False for kind, _, value in seen if kind in ("dtr", "rts")), seen
    link.write(b'{"T":105}\n')
    link.read_lines()
    link.close()
    assert all(value is False for kind, _, value in seen if kind in ("dtr", "rts")), seen


def test_a_real_pty_opens_with_modem_lines_low() -> None:
    pty = Pty()
    try:
        port = open_port(pty.path, 115200)
        assert port.dtr is False and port.rts is False
        port.close()
    finally:
        pty.close()


def test_missing_port_raises_a_serial_exception() -> None:
    with pytest.raises(serial.SerialException):
        SerialLink(LinkConfig("/nonexistent/ttyUSB9")).open()


def read_until(link: SerialLink, count: int, timeout_s: float = 5.0) -> list[bytes]:
    lines: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(lines) < count and time.monotonic() < deadline:
        lines.extend(link.read_lines())
        time.sleep(0.005)
    return lines


def test_lines_from_a_pty_and_garbage_stays_bounded() -> None:
    pty = Pty()
    link = SerialLink(LinkConfig(pty.path, max_line=512))
    try:
        link.open()
        os.write(pty.master, b"boot text\r\n" + b'{"T":10')
        os.write(pty.master, b'51}\r\n')
        assert read_until(link, 2) == [b"boot text", b'{"T":1051}']
        for _ in range(50):  # 200 kB without a newline
            os.write(pty.master, b"\x00garbage" * 500)
            link.read_lines()
            assert link.lines.pending <= 512
        os.write(pty.master, b"\r\nok\r\n")
        assert read_until(link, 1) == [b"ok"]
        assert link.lines.stats.overlong == 1
        link.write(b'{"T":105}\n')
        assert os.read(pty.master, 100) == b'{"T":105}\n'
    finally:
        link.close()
        pty.close()


def test_unplug_faults_and_replug_reconnects(tmp_path: Path) -> None:
    path = tmp_path / "arm"
    pty = Pty()
    path.symlink_to(pty.path)
    link = SerialLink(LinkConfig(str(path), backoff_s=(0.05, 0.1)))
    link.open()
    assert link.generation == 1
    pty.close()  # the cable is gone
    path.unlink()
    deadline = time.monotonic() + 5
    while not link.fault and time.monotonic() < deadline:
        link.read_lines() or link.write(b'{"T":105}\n')
        time.sleep(0.01)
    assert link.fault and not link.is_open
    assert not link.maybe_reconnect(time.monotonic() + 1)  # still unplugged: backoff, no exception
    assert "retry in" in link.fault
    replugged = Pty()
    try:
        path.symlink_to(replugged.path)
        deadline = time.monotonic() + 5
        while not link.maybe_reconnect() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert link.is_open and link.generation == 2 and link.fault == ""
        os.write(replugged.master, b"fresh\r\n")
        assert read_until(link, 1) == [b"fresh"]
    finally:
        link.close()
        replugged.close()
