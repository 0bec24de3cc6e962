"""``hil bench run``: wall time of ``hil run SCENARIO``, split into start-up and the run.

The figures come from the runner's own phase timings (report.json:
start-up = processes started until every node answers ping and info; run =
first reset until the last goal is judged; sim time / run time = how much
faster than real time the lockstep loop went). Two baselines are measured in
the same invocation, on the same busy or idle machine:

- process floor: as many bare Python processes as the run has nodes, each
  importing the ``hil`` CLI, started together (what start-up cannot beat);
- loop floor: the same robot and policy nodes stepping in lockstep on their
  own (no runner, no recorder), to show what the runner's watching costs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import zmq

from bus.client import NodeClient
from bus.endpoints import Endpoints
from bus.processes import Processes
from roarm.robot_client import RobotClient
from scenarios.launch import RunSettings, control_period, hil_command, node_launches
from scenarios.schema import Scenario, load
from tools.bench.targets import Targets, verdict

READY_TARGET_S = 3.0
SPEED_TARGET = 20.0


@dataclass(frozen=True)
class RunFigures:
    exit_code: int
    wall_s: float
    startup_s: float
    reset_s: float
    run_s: float
    sim_s: float
    stop_s: float
    error: str = ""

    @property
    def speed(self) -> float:
        return self.sim_s / self.run_s if self.run_s > 0 else 0.0


def process_floor(count: int) -> float:
    """Seconds for ``count`` Python processes importing the CLI, started together."""
    with Processes() as processes:
        started = time.monotonic()
        children = [processes.start(f"bare {i}", [sys.executable, "-c", "import tools.cli"]) for i in range(count)]
        for child in children:
            child.wait()
        return time.monotonic() - started


def loop_floor(scenario: Scenario, target: str, seconds: float) -> float:
    """Simulated seconds per wall second of the robot and policy nodes alone in lockstep."""
    with tempfile.TemporaryDirectory(prefix="hbr-", dir="/tmp") as tmp:
        run_dir = Path(tmp)
        endpoints = Endpoints.for_run(run_dir)
        settings = RunSettings(target, scenario.robot.mode, scenario.seed, None, False, run_dir, run_dir)
        processes = Processes(log_dir=run_dir)
        ctx = zmq.Context()
        robot = RobotClient(ctx, endpoints["robot"].rep, "bench", timeout_s=2.0, retries=1)
        try:
            for launch in node_launches(scenario, settings):
                extra = ["--autostart"] if launch.role == "robot" else []
                processes.start(launch.name, launch.argv + extra, role=launch.role)
            for node in processes.children:
                client = NodeClient(ctx, endpoints[node.role].rep, "bench", timeout_s=0.5, retries=1)
                processes.wait_ready(node, client.answers_ping, 60.0)
                client.close()
            time.sleep(0.5)  # past the first steps and the policy's connect
            first, t0 = _steps(robot), time.monotonic()
            time.sleep(seconds)
            last, t1 = _steps(robot), time.monotonic()
        finally:
            robot.close()
            processes.stop(term_s=3.0)
            ctx.destroy(linger=0)
    return (last - first) * control_period(scenario) / (t1 - t0)


def _steps(client: RobotClient) -> float:
    info = client.info()
    if "steps" not in info.metrics:
        raise RuntimeError(f"the robot reports no 'steps' metric (has {sorted(info.metrics)})")
    return info.metrics["steps"]


def one_run(scenario_path: Path, target: str, out: Path, record: bool) -> RunFigures:
    """``hil run`` as a user runs it, timed from outside and from its report."""
    argv = [*hil_command(), "run", str(scenario_path), "--target", target, "--out", str(out), "--no-progress",
            "--record" if record else "--no-record"]
    with Processes() as processes:
        started = time.monotonic()
        run = processes.start("hil run", argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run.wait(600)
        wall = time.monotonic() - started
    report = json.loads((out / "report.json").read_text())
    timings = report["timings"]
    failed = [v["name"] for v in report["verdicts"] if not v["passed"]]
    error = (report["error"] or "").split("\n")[0] or ", ".join(failed)
    return RunFigures(run.returncode, wall, timings.get("startup_s", 0.0), timings.get("reset_s", 0.0),
                      timings.get("run_s", 0.0), timings.get("sim_time_s", 0.0), timings.get("stop_s", 0.0),
                      error)


def report(scenario_path: Path, target: str | None, repeats: int, record: bool | None, loop_seconds: float,
           targets: Targets) -> str:
    scenario = load(scenario_path)
    target = target or scenario.robot.target
    record = scenario.record if record is None else record
    nodes = 3 if record else 2
    floor = process_floor(nodes)
    loop = loop_floor(scenario, target, loop_seconds)
    with tempfile.TemporaryDirectory(prefix="hbr-out-") as tmp:
        runs = [one_run(scenario_path, target, Path(tmp) / f"r{i}", record) for i in range(repeats)]
    lines = [
        f"hil run {scenario_path} --target {target} ({scenario.robot.mode}, dt {control_period(scenario):g} s, "
        f"recording {'on' if record else 'off'}), {repeats} run(s)",
        f"baseline: {nodes} bare Python processes importing the hil CLI, started together: {floor:.2f} s",
        f"baseline: robot + policy nodes alone in {scenario.robot.mode} (no runner, no recorder): "
        f"{loop:.1f}x real time",
        "",
        f"  {'run':>3} {'wall s':>7} {'start-up s':>10} {'reset s':>8} {'run s':>6} {'sim s':>6} "
        f"{'x real time':>11} {'stop s':>7} {'exit':>4}",
    ]
    for i, run in enumerate(runs):
        lines.append(f"  {i:>3} {run.wall_s:>7.2f} {run.startup_s:>10.2f} {run.reset_s:>8.2f} {run.run_s:>6.2f} "
                     f"{run.sim_s:>6.2f} {run.speed:>11.1f} {run.stop_s:>7.2f} {run.exit_code:>4}"
                     + (f"  {run.error[:80]}" if run.exit_code else ""))
    startup = statistics.median(r.startup_s for r in runs)
    speed = statistics.median(r.speed for r in runs)
    lines += [
        f"  med {statistics.median(r.wall_s for r in runs):>7.2f} {startup:>10.2f} "
        f"{statistics.median(r.reset_s for r in runs):>8.2f} {statistics.median(r.run_s for r in runs):>6.2f} "
        f"{statistics.median(r.sim_s for r in runs):>6.2f} {speed:>11.1f} "
        f"{statistics.median(r.stop_s for r in runs):>7.2f}",
        "",
        f"ready < {READY_TARGET_S:g} s: {verdict(targets.check('ready', startup, READY_TARGET_S))} "
        f"({startup:.2f} s; process floor {floor:.2f} s); lockstep >= {SPEED_TARGET:g}x real time: "
        f"{verdict(targets.check('lockstep x real time', speed, SPEED_TARGET, kind='min'))} "
        f"({speed:.1f}x; nodes alone {loop:.1f}x)",
        f"machine: {os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    return "\n".join(lines)
