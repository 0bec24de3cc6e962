"""Child processes in their own process groups: start, wait until ready, stop, measure.

The one process harness of the project: the runner, the sweep, the
benchmarks and the tests all start and stop their processes here.

Each child runs in its own session (``start_new_session=True``), so it has
its own process group: a Ctrl-C at the terminal reaches only the parent,
which then stops the children in order, and a whole group (a node plus
anything it started) can be signalled at once. On Linux each child also gets
PR_SET_PDEATHSIG, so even a SIGKILLed parent leaves no child behind.
Stopping is bounded at every step: ask politely (the caller's ``ask``, in
practice the shutdown service), then SIGTERM to the group, then SIGKILL.

CPU time and resident memory are read from /proc for a whole group, so a
figure covers a node and whatever it started.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bus.errors import HilError

_PR_SET_PDEATHSIG = 1

# probe(wait_s) -> True once the child is ready; it may block up to wait_s (a ping does).
Probe = Callable[[float], bool]
# Called for each live child when a stop begins: request a clean exit. Must not raise; bounded in time.
Ask = Callable[["Child"], None]

PROBE_WAIT_S = 0.2


class NotReady(HilError, RuntimeError):
    """A process that exited or did not become ready in time; the text names it and shows its log."""


class Child(subprocess.Popen):  # type: ignore[type-arg]  # bytes or text, as started
    """A started process, with what the harness knows about it.

    It is a ``subprocess.Popen`` (wait, poll, communicate, pipes work as
    usual) that also carries its name, its bus role if it has one, its log,
    when it started, how long it took to be ready and how it was stopped.
    """

    def __init__(self, name: str, argv: Sequence[str], *, role: str = "", log_path: Path | None = None,
                 **popen: Any) -> None:
        self.name = name
        self.role = role
        self.log_path = log_path
        self.started = time.monotonic()
        self.ready_s: float | None = None
        self.stop_how = ""  # "shutdown service", "SIGTERM", "SIGKILL", "exited", "killed on purpose"
        self.killed_on_purpose = False
        popen.setdefault("stdin", subprocess.DEVNULL)
        if sys.platform.startswith("linux"):
            popen.setdefault("preexec_fn", _die_with_parent)
        if log_path is None:
            super().__init__(list(argv), start_new_session=True, **popen)
            return
        if "stdout" in popen or "stderr" in popen:
            raise ValueError(f"{name}: output goes to {log_path}; stdout/stderr cannot be redirected as well")
        with open(log_path, "wb") as log:
            log.write(("$ " + " ".join(argv) + "\n").encode())
            log.flush()
            super().__init__(list(argv), start_new_session=True, stdout=log, stderr=subprocess.STDOUT, **popen)

    def alive(self) -> bool:
        return self.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The end of the child's log, for error messages."""
        if self.log_path is None:
            return "    (output not logged)"
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "    (no log)"
        kept = text.rstrip().splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in kept) if kept else "    (log is empty)"

    def cpu_seconds(self) -> float:
        """CPU time so far of the child's process group (every live member, all threads)."""
        return group_cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        """Resident memory of the child's process group in KiB (0 once it is gone)."""
        return group_rss_kib(self.pid)


class Processes:
    """Owns a set of children, in start order; closing it stops every group.

    ``log_dir``: each child's output goes to ``<log_dir>/<name>.log``
    (else wherever its ``stdout``/``stderr`` arguments say). ``env`` is
    added to this process's environment as it is when each child starts
    (with PYTHONUNBUFFERED=1, so a log shows what a child printed before it
    died).
    """

    def __init__(self, *, log_dir: Path | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.env = {"PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.children: list[Child] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def by_name(self) -> dict[str, Child]:
        return {child.name: child for child in self.children}

    def start(self, name: str, argv: Sequence[str], *, role: str = "", env: dict[str, str] | None = None,
              **popen: Any) -> Child:
        """Start ``argv`` in its own process group; ``popen`` goes to subprocess.Popen."""
        log_path = self.log_dir / f"{name}.log" if self.log_dir is not None else None
        popen.setdefault("cwd", self.cwd)
        child = Child(name, argv, role=role, log_path=log_path, env={**os.environ, **self.env, **(env or {})}, **popen)
        self.children.append(child)
        return child

    def wait_ready(self, child: Child, probe: Probe, timeout_s: float, *,
                   keep_going: Callable[[], bool] = lambda: True, waiting_for: str = "answer ping") -> float:
        """Call ``probe`` until it says ready; seconds since the child started.

        Raises NotReady naming the child (with its log tail) when it exits
        first or is not ready within ``timeout_s``. ``keep_going`` is asked
        before every probe; once it says no, the wait ends as interrupted.
        """
        wait_ready(probe, timeout_s, what=child.name, child=child, keep_going=keep_going, waiting_for=waiting_for)
        child.ready_s = time.monotonic() - child.started
        return child.ready_s

    def kill(self, child: Child) -> None:
        """SIGKILL a child's whole group on purpose (fault injection): not a crash."""
        child.killed_on_purpose = True
        child.stop_how = "killed on purpose"
        signal_group(child.pid, signal.SIGKILL)
        child.wait()

    def crashed(self) -> list[Child]:
        """Children that exited although nobody asked them to."""
        return [c for c in self.children if not c.alive() and not c.killed_on_purpose and not c.stop_how]

    def stop(self, children: Sequence[Child] | None = None, *, ask: Ask | None = None, grace_s: float = 3.0,
             term_s: float = 10.0, kill_s: float = 5.0) -> None:
        """Stop children (all by default), last started first, whole groups at once.

        ``ask`` (if given) requests a clean exit and gets ``grace_s`` to work;
        then SIGTERM to every group still running, so they wind down in
        parallel, ``term_s`` for that; then SIGKILL to what is left,
        including members that outlived their leader. Bounded at each step;
        afterwards no process of any of the groups remains.
        """
        order = list(reversed(self.children if children is None else children))
        if ask is not None:
            for child in order:
                if child.alive():
                    child.stop_how = "shutdown service"
                    ask(child)
            _wait_all(order, grace_s)
        for child in order:
            if child.alive():
                child.stop_how = "SIGTERM"
                signal_group(child.pid, signal.SIGTERM)
        _wait_all(order, term_s)
        for child in order:
            if child.alive():
                child.stop_how = "SIGKILL"
            # The leader may be gone while something it started lives on.
            if child.alive() or living_members(child.pid):
                signal_group(child.pid, signal.SIGKILL)
            child.wait(kill_s)
            if not child.stop_how:
                child.stop_how = "exited"
        deadline = time.monotonic() + kill_s
        while any(living_members(c.pid) for c in order) and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        """Stop every child (SIGTERM, then SIGKILL)."""
        self.stop()


def wait_ready(probe: Probe, timeout_s: float, *, what: str, child: Child | None = None,
               keep_going: Callable[[], bool] = lambda: True, waiting_for: str = "answer ping") -> None:
    """Call ``probe(wait_s)`` until it returns True: the one readiness wait.

    ``child`` (if known) is watched: its exit ends the wait at once, with
    its log. Raises NotReady naming ``what`` otherwise after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while keep_going():
        if child is not None and not child.alive():
            raise NotReady(f"{what} exited with status {child.returncode} before it was ready{_log_end(child)}")
        if probe(PROBE_WAIT_S):
            return
        if time.monotonic() > deadline:
            raise NotReady(f"{what} did not {waiting_for} within {timeout_s:g} s{_log_end(child)}")
    raise NotReady(f"interrupted while waiting for {what}")


def _log_end(child: Child | None) -> str:
    if child is None or child.log_path is None:
        return ""
    return f"; end of {child.log_path}:\n{child.tail()}"


def file_appears(path: Path) -> Probe:
    """A probe that says ready once ``path`` exists (an emulator's pty link, a ready file)."""

    def probe(wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        while not path.exists():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    return probe


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the parent dies."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _wait_all(children: Sequence[Child], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            continue


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to every process of group ``pgid``; a group already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _stat(pid: int | str) -> list[str] | None:
    """/proc/PID/stat from the state field on (comm may hold spaces: split after its ")")."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


# Fields of _stat(): 0 state, 2 pgrp, 11 utime, 12 stime (clock ticks).
_STATE, _PGRP, _UTIME, _STIME = 0, 2, 11, 12


def living_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that still run (zombies waiting to be reaped excluded).

    Read from /proc: a zombie still counts for kill(0) until some parent
    reaps it, which in a container without an init may be never.
    """
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        if fields and len(fields) > _PGRP and int(fields[_PGRP]) == pgid and fields[_STATE] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far, all threads (0 once it is gone)."""
    fields = _stat(pid)
    if fields is None or len(fields) <= _STIME:
        return 0.0
    return (int(fields[_UTIME]) + int(fields[_STIME])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU time so far of every live process of group ``pgid``."""
    return sum(cpu_seconds(pid) for pid in living_members(pgid))


def rss_kib(pid: int) -> int:
    """Resident memory of one process in KiB (VmRSS; 0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_rss_kib(pgid: int) -> int:
    """Resident memory of every live process of group ``pgid``, in KiB."""
    return sum(rss_kib(pid) for pid in living_members(pgid))
