"""Starting node processes and making sure none outlives the run.

Each node runs in its own session (``start_new_session=True``), so it has
its own process group: a Ctrl-C at the terminal reaches only the runner,
which then stops the nodes in order, and a whole group (a node plus anything
it started) can be signalled at once. Stopping is bounded at every step:
ask politely (the shutdown service), then SIGTERM to the group, then SIGKILL.
On Linux each child also gets PR_SET_PDEATHSIG, so even a SIGKILLed runner
leaves no node behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bus.errors import HilError

_PR_SET_PDEATHSIG = 1


class NodeFailed(HilError, RuntimeError):
    """A node that exited or never became ready; the text names it and shows its log."""


@dataclass
class NodeProcess:
    name: str
    role: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    ready_s: float | None = None
    killed_on_purpose: bool = False
    stop_how: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The end of the node's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        kept = text.rstrip().splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in kept) if kept else "    (log is empty)"


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the runner dies."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def living_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that still run (zombies waiting to be reaped excluded).

    Read from /proc: a zombie still counts for kill(0) until some parent
    reaps it, which in a container without an init may be never.
    """
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ")".
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def stop_groups(procs: list[subprocess.Popen], term_s: float = 10.0, kill_s: float = 5.0) -> None:
    """Stop children started with ``start_new_session=True``, whole groups at once.

    SIGTERM every group first so they wind down in parallel, wait up to
    ``term_s`` for each, then SIGKILL what is left: bounded, and nothing the
    children started themselves is left behind.
    """
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(term_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(kill_s)


class Supervisor:
    """Owns the node processes of one run, in start order."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.nodes: dict[str, NodeProcess] = {}

    def start(self, name: str, role: str, argv: list[str]) -> NodeProcess:
        """Start ``argv`` in its own session with output in ``<log_dir>/<name>.log``."""
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as log:
            log.write(("$ " + " ".join(argv) + "\n").encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        node = NodeProcess(name, role, argv, log_path, proc)
        self.nodes[name] = node
        return node

    def wait_ready(self, node: NodeProcess, probe: Callable[[float], bool], timeout_s: float,
                   keep_going: Callable[[], bool] = lambda: True) -> float:
        """Call ``probe(wait_s)`` until it returns True; seconds it took.

        Raises NodeFailed naming the node (with its log tail) when the process
        exits or does not answer within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while keep_going():
            if not node.alive():
                raise NodeFailed(f"{node.name} exited with status {node.proc.returncode} before it was ready; "
                                 f"end of {node.log_path}:\n{node.tail()}")
            if probe(0.2):
                node.ready_s = time.monotonic() - node.started
                return node.ready_s
            if time.monotonic() > deadline:
                raise NodeFailed(f"{node.name} did not answer ping within {timeout_s:g} s; "
                                 f"end of {node.log_path}:\n{node.tail()}")
        raise NodeFailed(f"interrupted while waiting for {node.name}")

    def kill(self, name: str) -> None:
        """SIGKILL a node's whole group on purpose (fault injection)."""
        node = self.nodes[name]
        node.killed_on_purpose = True
        node.stop_how = "killed on purpose"
        _signal_group(node.pid, signal.SIGKILL)
        node.proc.wait()

    def crashed(self) -> list[NodeProcess]:
        """Nodes that exited although nobody asked them to."""
        return [n for n in self.nodes.values() if not n.alive() and not n.killed_on_purpose and not n.stop_how]

    def stop_all(self, ask: Callable[[NodeProcess], None], grace_s: float = 3.0, term_s: float = 3.0) -> None:
        """Stop every node, last started first: ask, then SIGTERM, then SIGKILL.

        ``ask`` requests a clean exit (the shutdown service); it must not
        raise and must be bounded in time. Afterwards no process of any
        node's group remains.
        """
        order = list(reversed(self.nodes.values()))
        for node in order:
            if node.alive():
                node.stop_how = "shutdown service"
                ask(node)
        self._wait(order, grace_s)
        for node in order:
            if node.alive():
                node.stop_how = "SIGTERM"
                _signal_group(node.pid, signal.SIGTERM)
        self._wait(order, term_s)
        for node in order:
            if node.alive():
                node.stop_how = "SIGKILL"
            # The leader may be gone while something it started lives on.
            if node.alive() or living_members(node.pid):
                _signal_group(node.pid, signal.SIGKILL)
            node.proc.wait()
            if not node.stop_how:
                node.stop_how = "exited"
        deadline = time.monotonic() + term_s
        while any(living_members(n.pid) for n in order) and time.monotonic() < deadline:
            time.sleep(0.01)

    @staticmethod
    def _wait(nodes: list[NodeProcess], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for node in nodes:
            try:
                node.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                continue

    def pgids(self) -> list[int]:
        return [n.pid for n in self.nodes.values()]
