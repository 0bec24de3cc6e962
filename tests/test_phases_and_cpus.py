"""``--phases`` (a node's CPU per phase of its loop) and ``--cpus`` (pinning a node and its ZMQ I/O thread)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from bus.affinity import CpuSetError, cpu_list, parse_cpus
from bus.phases import PhaseClock, phase_clock, phases_of
from tools.bench.lockstep import LockstepPair, one_core
from tools.info_summary import summary
from tests.conftest import HIL


def test_a_mark_charges_the_cpu_since_the_previous_mark_to_its_phase() -> None:
    clock = PhaseClock(("wait", "work"))
    for _ in range(3):
        clock.mark("wait")  # nothing done since the last mark
        deadline = time.thread_time() + 0.002
        while time.thread_time() < deadline:  # 2 ms of this thread's CPU
            pass
        clock.mark("work")
        clock.step()
    figures = clock.as_metrics()
    assert list(figures) == ["cpu_us.wait", "cpu_us.work"]
    assert figures["cpu_us.work"] >= 2000.0
    assert figures["cpu_us.wait"] < figures["cpu_us.work"] / 4
    assert clock.order == "wait,work"


def test_without_phases_the_marks_measure_nothing() -> None:
    clock = phase_clock(False, ("wait",))
    clock.mark("wait")
    clock.step()
    assert clock.as_metrics() == {} and clock.steps == 0


def test_cpu_lists_parse_and_refuse_clearly() -> None:
    mine = sorted(os.sched_getaffinity(0))
    assert parse_cpus(str(mine[0])) == frozenset({mine[0]})
    assert parse_cpus(",".join(map(str, mine))) == frozenset(mine)
    assert cpu_list({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8" and cpu_list({3}) == "3"
    assert parse_cpus(cpu_list(frozenset(mine))) == frozenset(mine)
    with pytest.raises(CpuSetError, match="is not available to this process"):
        parse_cpus("4096")
    with pytest.raises(CpuSetError, match="not a CPU list"):
        parse_cpus("one")
    with pytest.raises(CpuSetError, match="not a CPU range"):
        parse_cpus("3-1")


def _threads_allowed(pid: int) -> dict[int, str]:
    """Each thread of ``pid`` -> its Cpus_allowed_list, as the kernel reports it."""
    allowed = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                allowed[int(tid)] = line.split(":", 1)[1].strip()
    return allowed


def test_a_pinned_lockstep_loop_runs_every_thread_on_its_core_and_reports_its_phases(tmp_path: Path) -> None:
    core = one_core()
    loop = LockstepPair(tmp_path, "mock", "lockstep", "--phases", cpus=core,
                        policy_args=["--scripted", "hold", "--deadline-ms", "1000", "--phases"])
    try:
        loop.robot.reset(seed=1)
        loop.wait_running("pinned loop", steps=300)
        robot, policy = loop.robot.info(), loop.policy.info()
        for process in (loop.sim, loop.policy_process):
            threads = _threads_allowed(process.pid)
            assert len(threads) >= 2, threads  # the node's thread and ZMQ's I/O thread at least
            assert set(threads.values()) == {core}, threads
    finally:
        loop.close()
    robot_phases, policy_phases = phases_of(robot), phases_of(policy)
    assert list(robot_phases) == ["wait", "receive", "check", "physics", "state", "publish"]
    assert list(policy_phases) == ["wait", "receive", "observe", "act", "send", "bookkeeping"]
    assert all(value > 0 for value in (*robot_phases.values(), *policy_phases.values()))
    # hil bus info policy: one line for the phases, in the loop's order, not a counter each
    page = summary(policy, None)
    line = next(text for text in page.splitlines() if text.startswith("  cpu/step"))
    assert line.split()[1::3][:6] == ["wait", "receive", "observe", "act", "send", "bookkeeping"], line
    assert "cpu_us." not in page


SCENARIO = """\
name: pinned
robot:
  target: mock
  mode: lockstep
  dt: 0.02
  options: {mock: ["--cpus", "CORE", "--phases"]}
policy:
  scripted: ik
  args: ["--cpus", "CORE", "--phases"]
goals:
  - id: left_low
    tcp: [0.328, 0.179, 0.194]
    tolerance_mm: 10
    timeout_s: 4
record: false
"""


def test_a_scenario_pins_its_nodes_and_the_report_keeps_where_they_ran_and_their_phases(tmp_path: Path) -> None:
    core = one_core()
    scenario = tmp_path / "pinned.yaml"
    scenario.write_text(SCENARIO.replace("CORE", core))
    out = tmp_path / "out"
    run = subprocess.run([HIL, "run", str(scenario), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(next(out.rglob("report.json")).read_text())
    for role in ("robot", "policy"):
        node = next(n for n in report["nodes"].values() if n["info"] and n["info"]["role"] == role)
        assert node["info"]["extra"]["cpus"] == core, node["info"]["extra"]
        assert node["info"]["metrics"]["cpu_us.wait"] > 0
