"""Sweep cells as Ray tasks, on whichever node has room (and hw cells on the node with the arm).

Each task runs the very ``hil run`` child command a local cell runs
(scenarios/cell_command.py) in its own session and process group, with
PR_SET_PDEATHSIG, in the cell's own output folder; the run makes its own run
folder for its sockets. So a cell is the same real processes wherever it
runs, and:

- a task cancelled gently (``ray.cancel``) stops its run like Ctrl-C does
  (SIGTERM to the group; the run stops its nodes and writes its report);
- a task cancelled by force, or a worker or node that dies, takes the run
  with it (the kernel SIGTERMs it when the worker's thread goes), and the
  cell is recorded as broken, never as passed;
- report.json, junit.xml and the end of runner.log come back with the
  result, for a driver that does not share the node's disk.

Tasks are submitted no faster than the cluster has slots (CPUs per cell for
simulated cells, one per arm and no CPU for hw cells), so the time from submit to start measures Ray's
scheduling, and a Ctrl-C has little queued work to cancel.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError, TaskCancelledError

from bus.processes import Processes
from scenarios.bench_resources import arm_resource
from scenarios.executors import ExecutorError
from scenarios.launch import hil_command
from scenarios.ray_session import RaySettings, advertised_arms, cpu_slots, ray_session
from scenarios.report import EXIT_BROKEN, EXIT_INTERRUPTED

POLL_S = 0.05  # how often a task looks at its run; short, so a gentle cancel is felt at once
STOP_S = 15.0  # a cancelled run gets this long to stop its nodes before SIGKILL
CANCEL_GRACE_S = 25.0  # after Ctrl-C, gently cancelled tasks get this long to return
REFRESH_S = 2.0  # how often the driver looks at the cluster's resources again
GONE_S = 10.0  # an arm missing this long: its cells are broken, not waited for forever
SHIPPED = ("report.json", "junit.xml")
LOG_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class CellJob:
    """One cell to run: ``args`` follow ``hil``; hw cells get ``--port`` from the arm they are given."""

    target: str
    seed: int
    out: Path
    args: list[str]
    port: str | None = None  # hw: this arm only (--port); None: any advertised arm

    @property
    def hw(self) -> bool:
        return self.target == "hw"


@dataclass
class CellOutcome:
    """How a cell ended, as the task (or the driver, for a task that never returned) saw it."""

    exit_code: int
    wall_s: float = 0.0
    error: str = ""
    where: str = ""
    port: str = ""
    submitted_at: float = 0.0
    started_at: float = 0.0
    ended_at: float = 0.0
    out_used: str = ""
    files: dict[str, str] = field(default_factory=dict)

    @property
    def scheduling_delay_s(self) -> float:
        """Submit to start, on the wall clock (same machine for a local Ray; NTP-close on a cluster)."""
        return max(0.0, self.started_at - self.submitted_at) if self.started_at else 0.0


def run_cell(args: list[str], out: str, port: str | None, submitted_at: float) -> dict[str, Any]:
    """The task body, on a Ray worker: run ``hil ARGS [--port PORT]`` to its end and report back."""
    started_at = time.time()
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # the driver's folder is not on this node's disk: run here, ship the files back
        folder = Path(tempfile.mkdtemp(prefix="hil-cell-"))
        args = [str(folder) if i and args[i - 1] == "--out" else a for i, a in enumerate(args)]
    argv = [*hil_command(), *args, *(["--port", port] if port else [])]
    processes = Processes()  # own process group, SIGTERMed if this worker's thread dies
    with open(folder / "runner.log", "wb") as log:
        proc = processes.start("cell", argv, stdout=log, stderr=subprocess.STDOUT)
    error = ""
    try:
        while proc.poll() is None:
            time.sleep(POLL_S)
    except KeyboardInterrupt:  # ray.cancel(force=False): stop the run as Ctrl-C would
        error = "cancelled"
    finally:
        if proc.poll() is None:  # SIGTERM stops the run as Ctrl-C does (its nodes, its report)
            processes.stop([proc], term_s=STOP_S)
    ended_at = time.time()
    return {
        "exit_code": proc.returncode, "wall_s": ended_at - started_at, "error": error,
        "where": f"{socket.gethostname()} (node {ray.get_runtime_context().get_node_id()[:12]})",
        "port": port or "", "submitted_at": submitted_at, "started_at": started_at, "ended_at": ended_at,
        "out_used": str(folder), "files": _files(folder),
    }


def _files(folder: Path) -> dict[str, str]:
    files = {}
    for name in SHIPPED:
        try:
            files[name] = (folder / name).read_text()
        except OSError:
            continue
    try:
        with open(folder / "runner.log", "rb") as log:
            log.seek(0, 2)
            log.seek(max(0, log.tell() - LOG_TAIL_BYTES))
            files["runner.log"] = log.read().decode(errors="replace")
    except OSError:
        pass
    return files


def land_files(out: Path, outcome: CellOutcome) -> None:
    """Write the shipped files into the cell's folder here, unless the task wrote them there itself."""
    if (out / "report.json").exists() or not outcome.files:
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in outcome.files.items():
        (out / name).write_text(text)


@dataclass
class _Running:
    job: CellJob
    port: str | None
    submitted_at: float


class _Lanes:
    """Free slots: CPUs for simulated cells, one per arm for hw cells; refreshed from the cluster."""

    def __init__(self, cpus_per_cell: float, max_parallel: int | None) -> None:
        self.cpus_per_cell = cpus_per_cell
        self.max_parallel = max_parallel
        self.cpu_busy = 0
        self.arm_busy: dict[str, int] = {}
        self.arms: dict[str, int] = {}
        self.cpu_cap = 1
        self.arms_seen: set[str] = set()
        self.missing_since: dict[str, float] = {}
        self.refreshed = 0.0

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.refreshed < REFRESH_S:
            return
        self.refreshed = now
        self.arms = advertised_arms()
        self.arms_seen |= set(self.arms)
        self.cpu_cap = cpu_slots(self.cpus_per_cell)
        if self.max_parallel:
            self.cpu_cap = min(self.cpu_cap, self.max_parallel)
        for port in list(self.arms_seen):
            if port in self.arms:
                self.missing_since.pop(port, None)
            else:
                self.missing_since.setdefault(port, now)

    def gone(self, port: str) -> bool:
        """The arm left the cluster (its node died or was removed) at least GONE_S ago."""
        since = self.missing_since.get(port)
        return since is not None and time.monotonic() - since > GONE_S

    def take(self, job: CellJob) -> tuple[bool, str | None]:
        """(slot found, arm port) for ``job``; marks the slot busy."""
        if not job.hw:
            if self.cpu_busy >= self.cpu_cap:
                return False, None
            self.cpu_busy += 1
            return True, None
        ports = [job.port] if job.port else sorted(self.arms, key=lambda p: self.arm_busy.get(p, 0))
        for port in ports:
            if port is not None and self.arm_busy.get(port, 0) < self.arms.get(port, 0):
                self.arm_busy[port] = self.arm_busy.get(port, 0) + 1
                return True, port
        return False, None

    def give(self, running: _Running) -> None:
        if running.port is None:
            self.cpu_busy -= 1
        else:
            self.arm_busy[running.port] -= 1


def check_arms(jobs: list[CellJob], arms: dict[str, int]) -> None:
    """hw cells need an advertised arm (the given --port's, if any): say which exist if not."""
    hw = [j for j in jobs if j.hw]
    if not hw:
        return
    known = ", ".join(sorted(arms)) or "none"
    if not arms:
        raise ExecutorError("--target hw on Ray needs a bench: no node of the cluster advertises an arm "
                            "(join one with: hil cluster join --address HEAD:6379 --arm /dev/ttyUSB0)")
    wanted = {j.port for j in hw if j.port}
    missing = sorted(p for p in wanted if p not in arms)
    if missing:
        raise ExecutorError(f"--port {', '.join(missing)}: no node of the cluster advertises that arm "
                            f"(advertised: {known})")


def _warm(seconds: float) -> None:
    """A no-op task that holds its worker a moment, so that parallel ones land on different workers."""
    time.sleep(seconds)


def run_cells(jobs: list[CellJob], settings: RaySettings, on_done: Callable[[CellJob, CellOutcome], None],
              should_stop: Callable[[], bool], *, cpus_per_cell: float = 1.0,
              max_parallel: int | None = None, warm_up: bool = False) -> bool:
    """Run every job as a Ray task, calling ``on_done`` as each ends; True when stopped early.

    ``warm_up``: first start a worker per slot (Ray starts them lazily, ~2 s
    each on a busy machine), so the cells' scheduling delay is Ray's alone.
    """
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with ray_session(settings):
        for sig, handler in handlers.items():  # ray.init puts in its own SIGTERM handler: ours decide
            signal.signal(sig, handler)
        lanes = _Lanes(cpus_per_cell, max_parallel)
        lanes.refresh(force=True)
        check_arms(jobs, lanes.arms)
        if warm_up:
            warm = ray.remote(_warm).options(num_cpus=cpus_per_cell, max_retries=0)
            ray.get([warm.remote(0.5) for _ in range(lanes.cpu_cap)])
        task = ray.remote(run_cell)
        waiting = list(jobs)
        running: dict[ray.ObjectRef, _Running] = {}

        def finish(ref: ray.ObjectRef, outcome: CellOutcome | None = None) -> None:
            item = running.pop(ref)
            lanes.give(item)
            if outcome is None:
                outcome = _collect(ref, item)
            land_files(item.job.out, outcome)
            on_done(item.job, outcome)

        while (waiting or running) and not should_stop():
            lanes.refresh()
            for job in list(waiting):
                if job.hw and job.port and lanes.gone(job.port):
                    waiting.remove(job)
                    on_done(job, CellOutcome(EXIT_BROKEN, error=f"the bench with arm {job.port} left the cluster"))
                    continue
                found, port = lanes.take(job)
                if not found:
                    continue
                waiting.remove(job)
                resources = {arm_resource(port): 1.0} if port else {}
                submitted = time.time()
                # An hw cell is limited by its arm, not by CPUs: a bench may lend none to simulated cells.
                ref = task.options(num_cpus=0 if port else cpus_per_cell, resources=resources, max_retries=0,
                                   name=f"hil-{job.target}-seed{job.seed}").remote(job.args, str(job.out), port,
                                                                                   submitted)
                running[ref] = _Running(job, port, submitted)
            for ref, item in list(running.items()):  # a task for an arm that left would wait forever
                if item.port is not None and lanes.gone(item.port):
                    ray.cancel(ref, force=True)
                    finish(ref, CellOutcome(EXIT_BROKEN, error=f"the bench with arm {item.port} left the cluster "
                                            "before the run ended", port=item.port, submitted_at=item.submitted_at))
            if waiting and not running and any(j.hw for j in waiting) and not lanes.arms and \
                    all(lanes.gone(p) for p in lanes.arms_seen):
                for job in [j for j in waiting if j.hw]:
                    waiting.remove(job)
                    on_done(job, CellOutcome(EXIT_BROKEN, error="no bench with an arm is left in the cluster"))
            if not running:
                time.sleep(0.05)
                continue
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
            if ready:
                rest = [r for r in running if r not in ready]
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0) if rest else ([], [])
                for ref in [*ready, *more]:
                    finish(ref)
        if not running and not waiting:
            return False
        _cancel(running, finish)
        return True


def _collect(ref: ray.ObjectRef, item: _Running) -> CellOutcome:
    """The task's result, or why there is none: cancelled (interrupted) or died (broken)."""
    try:
        return CellOutcome(**ray.get(ref))
    except TaskCancelledError:
        return CellOutcome(EXIT_INTERRUPTED, wall_s=time.time() - item.submitted_at,
                           error="cancelled before the run ended", port=item.port or "", submitted_at=item.submitted_at)
    except RayError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return CellOutcome(EXIT_BROKEN, wall_s=time.time() - item.submitted_at,
                           error=f"the Ray task ended without a result ({type(exc).__name__}): {first}",
                           port=item.port or "", submitted_at=item.submitted_at)


def _cancel(running: dict[ray.ObjectRef, _Running], finish: Callable[..., None]) -> None:
    """Ctrl-C: cancel gently (each run stops its nodes and writes its report), then by force."""
    for ref in running:
        ray.cancel(ref, force=False)
    deadline = time.monotonic() + CANCEL_GRACE_S
    while running and time.monotonic() < deadline:
        ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
        for ref in ready:
            finish(ref)
    for ref, item in list(running.items()):
        ray.cancel(ref, force=True)
        finish(ref, CellOutcome(EXIT_INTERRUPTED, error="cancelled by force (the run did not stop in time)",
                                port=item.port or "", submitted_at=item.submitted_at))
