"""One process per arm: a lock file, named after the device itself, that says
who holds the port.

Two processes writing to one ESP32 interleave their command lines, and the arm
follows both. A second ``hil node hw`` (or a ``hil run --target hw`` beside a
hand-started node) must therefore be refused before it even opens the device:
on Linux, opening a serial port raises DTR and RTS for an instant in the
driver, before pyserial can lower them, and those lines reset the ESP32.

The lock is a file in the lock folder (``$HIL_LOCK_DIR``, default
``/tmp/roarm-hil-locks``) named after the device's identity, not its path: a
character device by its major:minor number (``/dev/serial/by-id/...`` and
``/dev/ttyUSB0`` are one device, and so are the emulator's ``--link`` symlink
and its ``/dev/pts/N``), any other file by its inode. The holder keeps an
``flock`` on it for as long as it runs, so the kernel releases it when the
holder dies however it dies; the file's text names the holder (pid, command
line, since when) for the refusal message. A lock file left by a dead process
is simply taken over. pyserial's ``exclusive=True`` (an flock on the device
itself) is the second barrier, against programs that know nothing of this file.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import serial

from bus.errors import HilError

LOCK_DIR_ENV = "HIL_LOCK_DIR"
DEFAULT_LOCK_DIR = Path("/tmp/roarm-hil-locks")
# A reader may catch the holder between its flock and its write: retry briefly.
_READ_TRIES = 5
_READ_PAUSE_S = 0.02


class PortBusyError(HilError, serial.SerialException):
    """Another process holds the serial port (exit 2: a set-up problem)."""

    exit_code = 2


@dataclass(frozen=True)
class DeviceId:
    """Which device a port path really is."""

    key: str  # "char-188-0" or "file-<dev>-<inode>": the lock file's name
    path: str  # the path with every symlink resolved, for messages


@dataclass(frozen=True)
class Holder:
    """What the lock file says about the process that holds the port."""

    pid: int
    command: str
    since: float  # wall-clock seconds when it took the port
    port: str  # the path it was given
    device: str  # the resolved device path

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} (`{self.command}`, holding it since {when})"


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)


def device_id(port: str) -> DeviceId | None:
    """The identity of a local port path; None for pyserial URLs (loop://,
    socket://, rfc2217://), which are not a device of this host.

    Raises OSError when the path does not exist (an unplugged adapter).
    """
    if "://" in port:
        return None
    info = os.stat(port)  # follows symlinks: by-id names and --link meet here
    if stat.S_ISCHR(info.st_mode):
        key = f"char-{os.major(info.st_rdev)}-{os.minor(info.st_rdev)}"
    else:
        key = f"file-{info.st_dev}-{info.st_ino}"
    return DeviceId(key, os.path.realpath(port))


def _command_line() -> str:
    try:
        raw = Path("/proc/self/cmdline").read_bytes()
        parts = [p.decode(errors="replace") for p in raw.split(b"\0") if p]
    except OSError:
        parts = [sys.executable, *sys.argv]
    # "python .../bin/hil node hw ..." reads better as "hil node hw ..."
    if len(parts) > 1 and Path(parts[1]).name == "hil":
        parts = parts[1:]
    if parts:
        parts[0] = Path(parts[0]).name
    return " ".join(parts)


def _parse(text: str) -> Holder | None:
    try:
        data = json.loads(text)
        return Holder(int(data["pid"]), str(data["command"]), float(data["since"]), str(data["port"]),
                      str(data["device"]))
    except (ValueError, KeyError, TypeError):
        return None


def _read_holder(fd: int) -> Holder | None:
    for _ in range(_READ_TRIES):
        os.lseek(fd, 0, os.SEEK_SET)
        holder = _parse(os.read(fd, 65536).decode(errors="replace"))
        if holder is not None:
            return holder
        time.sleep(_READ_PAUSE_S)
    return None


def busy_message(port: str, device: DeviceId, holder: Holder | None) -> str:
    """The refusal: who holds the port and what to do about it."""
    same = "" if device.path == port else f" (= {device.path})"
    if holder is None or holder.pid == 0:
        who = "another process (it holds the lock but does not say who it is)"
        find = f"Find it with `fuser -v {device.path}`"
    else:
        who = holder.describe()
        find = f"Stop it first (Ctrl-C in its terminal, or `kill {holder.pid}`)"
    return (f"serial port {port}{same} is in use by {who}. One process per arm: two writers would both "
            f"command it. {find}, or drive the arm through the node that holds it (`hil bus ping robot` "
            f"with its --run-dir/--endpoints).")


def ensure_free(port: str) -> None:
    """PortBusyError naming the holder when a live process holds ``port``:
    the check before starting anything (a node, a run). Taking the port is
    PortLock's job; this only refuses early and clearly."""
    try:
        device = device_id(port)
    except OSError:
        return  # a missing port: opening it says so
    if device is None:
        return
    holder = current_holder(device)
    if holder is not None:
        raise PortBusyError(busy_message(port, device, holder))


def current_holder(device: DeviceId) -> Holder | None:
    """Who holds ``device`` now according to its lock file; None when free."""
    try:
        fd = os.open(lock_dir() / f"{device.key}.lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:  # the flock is the truth (a pid in a stale file may have been reused)
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd) or Holder(0, "unknown", 0.0, "", device.path)
        return None  # free: closing the fd drops our shared lock at once
    finally:
        os.close(fd)


class PortLock:
    """The lock on one device, held until ``release()``.

    ``PortLock.acquire(port)`` returns None for a pyserial URL, raises
    PortBusyError when another process holds the device and OSError when the
    path does not exist. When the lock folder cannot be written, the lock is
    a no-op with a warning: pyserial's exclusive flock still refuses a second
    opener, only without naming it.
    """

    def __init__(self, device: DeviceId, path: Path | None, fd: int | None) -> None:
        self.device = device
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, port: str) -> PortLock | None:
        device = device_id(port)
        if device is None:
            return None
        folder = lock_dir()
        try:
            _make_folder(folder)
        except OSError as exc:
            print(f"WARNING: cannot use the port lock folder {folder} ({exc.strerror or exc}); "
                  f"set {LOCK_DIR_ENV} to a writable folder", file=sys.stderr, flush=True)
            return cls(device, None, None)
        path = folder / f"{device.key}.lock"
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except PermissionError:
                return cls._foreign(port, device, path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise PortBusyError(busy_message(port, device, holder)) from None
            # A holder that released meanwhile unlinked the file we opened: start over on the new one.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        # Whatever the file says now is stale: its writer died without unlinking it.
        record = Holder(os.getpid(), _command_line(), time.time(), port, device.path)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(record)).encode(), 0)
        return cls(device, path, fd)

    @classmethod
    def _foreign(cls, port: str, device: DeviceId, path: Path) -> PortLock:
        """The lock file belongs to another user: refuse if its holder lives,
        else go on without a file (we may not replace theirs)."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PortBusyError(busy_message(port, device, _read_holder(fd))) from None
        finally:
            os.close(fd)
        print(f"WARNING: {path} is another user's stale port lock; remove it to name this process there",
              file=sys.stderr, flush=True)
        return cls(device, None, None)

    def release(self) -> None:
        """Unlink, then unlock (in that order, so no one locks a file that is about to vanish)."""
        if self._fd is None:
            return
        if self.path is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        os.close(self._fd)
        self._fd = None


def _make_folder(folder: Path) -> None:
    """The lock folder, shared by every user of the machine like /run/lock (sticky, world-writable)."""
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            folder.chmod(0o1777)
        except PermissionError:
            pass
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(13, "not writable")
