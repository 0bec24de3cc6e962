"""``hil run`` end to end: real node processes, real sockets, real reports.

Every run here is a separate ``hil run`` process started through the
``procs`` fixture (own process group, reaped whatever happens).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from bus.processes import Child
from tests.conftest import Procs
from tools.bench.rig import start_emulator

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
RUN_TIMEOUT_S = 120


def run_hil(procs: Procs, *args: str, timeout_s: float = RUN_TIMEOUT_S) -> tuple[int, str, str]:
    proc = procs.hil("run", *args)
    out, err = proc.communicate(timeout=timeout_s)
    return proc.returncode, out.decode(), err.decode()


def report_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live processes (not zombies) whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state not in ("Z", "X"):
            found.append((int(entry.name), cmdline))
    return found


def run_dir_of(report: dict[str, Any]) -> str:
    argv = report["nodes"]["robot"]["argv"]
    return argv[argv.index("--run-dir") + 1]


def check_report_files(out: Path) -> dict[str, Any]:
    """report.json and junit.xml are well formed and tell the same story."""
    report = report_of(out)
    for key in ("git_commit", "scenario_sha256", "policy_sha256", "seed", "randomization_hash", "schema_version"):
        assert key in report["provenance"], key
    assert re.fullmatch(r"[0-9a-f]{64}", report["provenance"]["scenario_sha256"])
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases if c.get("name") != "run"] == [v["name"] for v in report["verdicts"]]
    assert int(suite.get("failures", "-1")) == sum(not v["passed"] for v in report["verdicts"])
    for case, verdict in zip([c for c in cases if c.get("name") != "run"], report["verdicts"]):
        assert (case.find("failure") is None) == (verdict["passed"] or verdict["skipped"])
        assert (case.find("skipped") is not None) == verdict["skipped"]
    assert (out / "report.html").stat().st_size > 1000  # every run has its page
    return report


def test_smoke_on_mock_passes_end_to_end(procs: Procs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_hil(procs, str(SMOKE), "--target", "mock", "--out", str(out))
    assert code == 0, stdout + stderr
    assert "smoke on mock (lockstep, seed 0): PASS" in stdout
    report = check_report_files(out)
    assert report["outcome"] == "pass" and report["passed"] is True
    names = [v["name"] for v in report["verdicts"]]
    assert names[:3] == ["goal:left_low", "goal:right_low", "goal:home"]
    assert {"joint_limits", "loop_latency", "deadline_misses", "no_crash:robot", "no_crash:policy"} <= set(names)
    assert report["provenance"]["randomization_hash"] and report["provenance"]["robot_backend"] == "mock"
    timings = report["timings"]
    assert timings["startup_s"] > 0 and timings["run_s"] > 0 and timings["sim_time_s"] > 0
    assert report["figures"]["states"] > 50 and report["figures"]["commands"] > 50
    assert (out / "robot.log").exists() and (out / "policy.log").exists()
    assert not processes_mentioning(run_dir_of(report))
    assert not Path(run_dir_of(report)).exists()  # the ipc folder is cleaned up


@pytest.mark.slow
def test_same_scenario_passes_on_mujoco_without_edit(procs: Procs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_hil(procs, str(SMOKE), "--target", "mujoco", "--out", str(out))
    assert code == 0, stdout + stderr
    report = check_report_files(out)
    assert report["target"] == "mujoco" and report["provenance"]["robot_backend"] == "mujoco"


def test_watchdog_kill_is_reported_and_the_robot_holds(procs: Procs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_hil(procs, str(ROOT / "scenarios" / "watchdog.yaml"), "--target", "mock",
                                   "--out", str(out))
    assert code == 0, stdout + stderr
    verdicts = {v["name"]: v for v in check_report_files(out)["verdicts"]}
    assert verdicts["deadline_misses"]["figure"] >= 1
    assert verdicts["hold_after_kill"]["passed"] and verdicts["hold_after_kill"]["figure"] <= 0.02
    assert "killed on purpose" in verdicts["no_crash:policy"]["detail"]
    assert "killing policy (SIGKILL)" in stderr


LONG = """\
name: long
robot: {target: mock, mode: realtime, dt: 0.02}
policy: {scripted: hold}
goals:
  - id: never
    tcp: [0.0, 0.0, 0.9]
    timeout_s: 60
  - id: later
    tcp: [0.3, 0.0, 0.2]
    timeout_s: 5
"""


def start_long_run(procs: Procs, tmp_path: Path, *extra: str) -> tuple[Child, Path, Path, dict[str, int]]:
    """A realtime run that lasts a minute, once its nodes are up and it is running."""
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG)
    out = tmp_path / "out"
    log = tmp_path / "runner.err"
    with open(log, "wb") as err:
        proc = procs.hil("run", str(scenario), "--out", str(out), *extra, stderr=err)
    deadline = time.monotonic() + 60
    while "running 2 goal" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    pids = {name: int(pid) for name, pid in re.findall(r"(\w+) \(pid (\d+)\)", log.read_text())}
    assert {"robot", "policy"} <= set(pids)
    return proc, out, log, pids


def test_ctrl_c_mid_run_leaves_no_process_behind(procs: Procs, tmp_path: Path) -> None:
    proc, out, log, pids = start_long_run(procs, tmp_path, "--record")
    assert set(pids) == {"recorder", "robot", "policy"}
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert proc.returncode == 130, log.read_text()
    report = report_of(out)
    assert report["outcome"] == "interrupted" and "SIGINT" in report["error"]
    # Nothing of the run is left: not the nodes, not anything they started.
    assert not processes_mentioning(run_dir_of(report))
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]
    assert {n["stopped_by"] for n in report["nodes"].values()} == {"shutdown service"}
    assert (out / "run.mcap").stat().st_size > 0  # the recorder closed its bag
    # The goal that never started is "not run" with no figure (the first one is cut short, or not
    # run either when the SIGINT came before the robot's first state reached the runner).
    verdicts = {v["name"]: v for v in report["verdicts"]}
    assert not verdicts["goal:never"]["passed"]
    assert verdicts["goal:later"]["skipped"] and verdicts["goal:later"]["figure"] is None
    assert verdicts["goal:later"]["detail"] == "not run: interrupted"
    assert "not run" in (out / "report.html").read_text()


def test_a_node_dying_mid_run_fails_the_run(procs: Procs, tmp_path: Path) -> None:
    proc, out, log, pids = start_long_run(procs, tmp_path)
    os.kill(pids["robot"], signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == 1, log.read_text()
    report = report_of(out)
    assert report["outcome"] == "fail" and "robot exited during the run" in report["error"]
    verdicts = {v["name"]: v for v in report["verdicts"]}
    assert not verdicts["no_crash:robot"]["passed"] and not verdicts["goal:never"]["passed"]
    assert not processes_mentioning(run_dir_of(report))


def test_a_robot_that_cannot_start_is_a_broken_setup(procs: Procs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_hil(procs, str(SMOKE), "--target", "hw", "--port", str(tmp_path / "no-such-tty"),
                                   "--out", str(out))
    assert code == 2, stdout + stderr
    report = check_report_files(out)
    assert report["outcome"] == "broken" and report["error"].startswith("robot exited with status")
    assert "junit" in stdout and ET.parse(out / "junit.xml").getroot().find("testsuite/testcase/error") is not None


def test_hw_without_a_port_says_so(procs: Procs, tmp_path: Path) -> None:
    code, stdout, stderr = run_hil(procs, str(SMOKE), "--target", "hw", "--out", str(tmp_path / "out"))
    assert code == 2 and "needs a serial port" in stdout + stderr


def test_sweep_runs_the_matrix_and_prints_one_table(procs: Procs, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    code, stdout, stderr = run_hil(procs, str(SMOKE), "--seeds", "0..1", "--target", "mock", "--out", str(out),
                                   timeout_s=240)
    assert code == 0, stdout + stderr
    # The cell table's rows (target, seed, ...); the statistics tables below it name goals instead.
    rows = [line.split() for line in stdout.splitlines() if line.startswith("mock ") and line.split()[1].isdigit()]
    assert sorted(row[1] for row in rows) == ["0", "1"] and all(row[2] == "pass" for row in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["outcome"] == "pass" and len(summary["cells"]) == 2
    for seed in (0, 1):
        report = check_report_files(out / f"mock-seed{seed}")
        assert report["seed"] == seed
    summary = json.loads((out / "sweep.json").read_text())
    assert [(c["seed"], c["outcome"]) for c in summary["cells"]] == [(0, "pass"), (1, "pass")]
    page = (out / "report.html").read_text()
    assert 'href="mock-seed0/report.html"' in page and 'href="mock-seed1/report.html"' in page
    assert f"sweep report: {out}/report.html" in stdout


def test_recorded_run_writes_a_bag_beside_the_report(procs: Procs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_hil(procs, str(ROOT / "scenarios" / "reach.yaml"), "--target", "mock",
                                   "--out", str(out))
    assert code == 0, stdout + stderr
    report = check_report_files(out)
    assert report["provenance"]["policy_sha256"] and report["provenance"]["policy_file"].endswith("reach.onnx")
    assert {v["name"]: v["passed"] for v in report["verdicts"]}["no_crash:recorder"]
    bag = out / "run.mcap"
    assert bag.stat().st_size > 1000 and bag.read_bytes()[:8] == b"\x89MCAP0\r\n"


def test_sigterm_stops_the_run_like_ctrl_c(procs: Procs, tmp_path: Path) -> None:
    proc, out, log, pids = start_long_run(procs, tmp_path)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 130, log.read_text()
    report = report_of(out)
    assert "SIGTERM" in report["error"] and not processes_mentioning(run_dir_of(report))


def test_ctrl_c_stops_a_sweep_and_every_run_in_it(procs: Procs, tmp_path: Path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG)
    out = tmp_path / "sweep"
    proc = procs.hil("run", str(scenario), "--seeds", "0..1", "--out", str(out))
    deadline = time.monotonic() + 90
    while not all((out / f"mock-seed{s}" / "policy.log").exists() for s in (0, 1)):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode == 130
    for seed in (0, 1):
        report = report_of(out / f"mock-seed{seed}")
        assert report["outcome"] == "interrupted"
        assert not processes_mentioning(run_dir_of(report))


def arm_port(request: pytest.FixtureRequest, procs: Procs, tmp_path: Path) -> str:
    """A real arm (--roarm-port) or the firmware emulator on a pty."""
    port = request.config.getoption("--roarm-port")
    if port:
        return str(port)
    link = tmp_path / "arm"
    start_emulator(procs, link, timeout_s=30)
    return str(link)


@pytest.mark.hil
@pytest.mark.slow
@pytest.mark.parametrize("name", ["smoke", "watchdog"])
def test_scenarios_run_on_hw_through_the_serial_driver(name: str, request: pytest.FixtureRequest, procs: Procs,
                                                      tmp_path: Path) -> None:
    """The same scenario files, now through hw_node and the serial protocol in
    real time; the watchdog one kills the policy and the arm must hold."""
    port = arm_port(request, procs, tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = run_hil(procs, str(ROOT / "scenarios" / f"{name}.yaml"), "--target", "hw",
                                   "--port", port, "--out", str(out))
    assert code == 0, stdout + stderr
    report = check_report_files(out)
    assert report["mode"] == "realtime" and report["provenance"]["robot_backend"] == "hw"


@pytest.mark.hil
@pytest.mark.slow
def test_track_on_hw_plans_from_where_the_reset_left_the_arm(request: pytest.FixtureRequest, procs: Procs,
                                                              tmp_path: Path) -> None:
    """track.yaml through hw_node at its default --max-speed: the real arm's reset is a
    slow move, and a policy that started its plan at the beginning of that move commanded
    ~1 rad away from the arm once it ended (tracking error 1.05 rad). The scripted policy
    moves at half the speed limit the hw node reports in its info (2 rad/s by default),
    so the node's clamp never distorts its path."""
    port = arm_port(request, procs, tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = run_hil(procs, str(ROOT / "scenarios" / "track.yaml"), "--target", "hw", "--port", port,
                                   "--out", str(out))
    report = check_report_files(out)
    assert "--max-speed" not in report["nodes"]["robot"]["argv"]
    tracking = next(v for v in report["verdicts"] if v["name"] == "tracking_error")
    assert tracking["passed"] and tracking["figure"] < 0.15, tracking
    assert code == 0, stdout + stderr
    assert report["figures"]["events"].get("hw.reset_done") == 1


@pytest.mark.hil
@pytest.mark.slow
def test_reach_onnx_runs_on_the_real_arm_target(request: pytest.FixtureRequest, procs: Procs,
                                                tmp_path: Path) -> None:
    """policies/reach.onnx (made for 100 Hz) on hw_node at 25 Hz: a realtime robot slower than the
    model's period gets the same per-step actions less often, so it moves slower, never faster;
    the run is accepted and reaches every goal."""
    port = arm_port(request, procs, tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = run_hil(procs, str(ROOT / "scenarios" / "reach.yaml"), "--target", "hw", "--port", port,
                                   "--out", str(out))
    assert code == 0, stdout + stderr
    report = check_report_files(out)
    assert report["nodes"]["robot"]["info"]["dt"] > report["nodes"]["policy"]["info"]["dt"]
    assert all(goal["reached"] for goal in report["goals"]), report["goals"]


def test_a_policy_that_does_not_fit_the_robot_is_a_broken_setup(procs: Procs, tmp_path: Path) -> None:
    """reach.onnx was made for a 0.01 s period; smoke runs the robot at 0.02 s."""
    scenario = tmp_path / "misfit.yaml"
    scenario.write_text(SMOKE.read_text().replace("scripted: ik", f"model: {ROOT / 'policies' / 'reach.onnx'}"))
    out = tmp_path / "out"
    code, stdout, stderr = run_hil(procs, str(scenario), "--out", str(out))
    assert code == 2, stdout + stderr
    report = report_of(out)
    assert report["outcome"] == "broken" and "does not fit the robot" in report["error"]
    assert "0.01" in report["error"] and "0.02" in report["error"]
