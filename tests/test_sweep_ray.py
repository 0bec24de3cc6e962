"""Sweeps on Ray: the same ``hil run`` cells as Ray tasks, on a local Ray or a cluster.

Every test starts ``hil`` as a real process with a marker in its environment;
whatever it starts (Ray's own processes, workers, cells, nodes) inherits the
marker, so "nothing is left behind" is checked by scanning /proc for it,
whoever the processes' parents ended up being.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from scenarios.bench_resources import bench_resources
from tests.conftest import ROOT

Procs = Any
SMOKE = ROOT / "scenarios" / "smoke.yaml"
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed: pip install 'roarm-hil[ray]' "
                                                    "(make test installs it)")

LONG = """\
name: long
robot: {target: mock, mode: realtime, dt: 0.02}
policy: {scripted: hold}
goals:
  - id: never
    tcp: [0.0, 0.0, 0.9]
    timeout_s: 60
"""
MARK = "HIL_TEST_MARK"


def marked(mark: str) -> list[tuple[int, str]]:
    """Live processes (not zombies) whose environment carries ``MARK=mark``."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in environ and state not in ("Z", "X"):
            found.append((int(entry.name), cmdline))
    return found


def wait_until_none_marked(mark: str, timeout_s: float = 30.0) -> list[tuple[int, str]]:
    """Orphans finish stopping on their own (a SIGTERMed run stops its nodes): bounded wait."""
    deadline = time.monotonic() + timeout_s
    while (left := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def start_marked(procs: Procs, *args: str, stdout: Any = subprocess.PIPE) -> tuple[Any, str]:
    mark = uuid.uuid4().hex
    proc = procs.hil(*args, env={MARK: mark, "RAY_USAGE_STATS_ENABLED": "0"}, stdout=stdout)
    return proc, mark


def wait_for(path: Path, proc: Any, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"hil exited ({proc.returncode}) before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout_s} s"
        time.sleep(0.1)


def test_ray_missing_is_a_broken_setup_that_says_how_to_install(tmp_path: Path) -> None:
    """Without Ray importable, --executor ray exits 2 with the install line, not a traceback."""
    code = ("import sys; sys.modules['ray'] = None; from tools.cli import main; "
            f"sys.argv = ['hil', 'run', {str(SMOKE)!r}, '--executor', 'ray', '--out', {str(tmp_path / 'o')!r}]; main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--executor ray needs Ray, which is not installed: pip install 'roarm-hil[ray]'" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["outcome"] == "broken" and "needs Ray" in summary["error"]


@needs_ray
@pytest.mark.slow
def test_smoke_sweep_on_a_local_ray_passes_and_writes_one_summary(procs: Procs, tmp_path: Path) -> None:
    """The README's command, on 10 seeds (the 100-seed run takes minutes: docs/evaluation.md)."""
    out = tmp_path / "sweep"
    proc, mark = start_marked(procs, "run", str(SMOKE), "--seeds", "0..9", "--target", "mock", "--executor", "ray",
                              "--jobs", "2", "--out", str(out))
    stdout, stderr = proc.communicate(timeout=400)
    assert proc.returncode == 0, stdout.decode() + stderr.decode()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["executor"] == "ray" and summary["complete"] and summary["outcome"] == "pass"
    assert [c["seed"] for c in summary["cells"]] == list(range(10))
    assert all(c["outcome"] == "pass" and "node" in c["where"] for c in summary["cells"])
    assert all((out / f"mock-seed{s}" / "report.json").exists() for s in range(10))
    assert {(g["goal"], g["reached"], g["runs"]) for g in summary["goals"]} == {
        ("left_low", 10, 10), ("right_low", 10, 10), ("home", 10, 10)}
    suites = ET.parse(out / "junit.xml").getroot()
    cases = [c for s in suites for c in s.findall("testcase")]
    assert len(cases) == 10 * 3 + 10 and suites.get("failures") == "0" and suites.get("errors") == "0"
    assert "left_low     10/10    100.0%" in stdout.decode()
    assert not wait_until_none_marked(mark)


@needs_ray
@pytest.mark.slow
def test_ctrl_c_mid_ray_sweep_leaves_no_hil_node_or_ray_process(procs: Procs, tmp_path: Path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG)
    out = tmp_path / "sweep"
    proc, mark = start_marked(procs, "run", str(scenario), "--seeds", "0..1", "--executor", "ray", "--jobs", "2",
                              "--out", str(out))
    for seed in (0, 1):
        wait_for(out / f"mock-seed{seed}" / "policy.log", proc)
    time.sleep(1.0)
    kinds = " ".join(cmd for _pid, cmd in marked(mark))
    assert "raylet" in kinds and "node policy" in kinds and "node sim" in kinds  # the scan sees them all
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 130, stdout.decode() + stderr.decode()
    assert not wait_until_none_marked(mark)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "interrupted" and summary["exit_code"] == 130
    assert [c["outcome"] for c in summary["cells"]] == ["interrupted", "interrupted"]
    for seed in (0, 1):  # each run stopped its own nodes and said why
        report = json.loads((out / f"mock-seed{seed}" / "report.json").read_text())
        assert report["outcome"] == "interrupted"
        assert {n["stopped_by"] for n in report["nodes"].values()} == {"shutdown service"}


@needs_ray
@pytest.mark.slow
def test_a_worker_that_dies_marks_its_cell_broken(procs: Procs, tmp_path: Path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG)
    out = tmp_path / "sweep"
    proc, mark = start_marked(procs, "run", str(scenario), "--seeds", "0", "--executor", "ray", "--jobs", "1",
                              "--out", str(out))
    wait_for(out / "mock-seed0" / "policy.log", proc)
    cell = [pid for pid, cmd in marked(mark) if " run " in cmd and "mock-seed0" in cmd]
    assert len(cell) == 1
    worker = int((Path(f"/proc/{cell[0]}/stat").read_text().rsplit(")", 1)[1].split())[1])
    assert "ray::" in Path(f"/proc/{worker}/cmdline").read_text(errors="replace")
    os.kill(worker, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 2, stdout.decode() + stderr.decode()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "broken"
    (cell_entry,) = summary["cells"]
    assert cell_entry["outcome"] == "broken" and "the Ray task ended without a result" in cell_entry["error"]
    assert summary["failures"][0]["reason"].startswith("broken: the Ray task ended without a result")
    # The run died with its worker (PR_SET_PDEATHSIG), and took its nodes along.
    assert not wait_until_none_marked(mark)


@needs_ray
@pytest.mark.slow
def test_hw_cells_run_on_the_bench_that_has_the_arm_one_at_a_time(procs: Procs, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two firmware emulators stand in for two benches, each on its own Ray worker node
    (always the emulators: one real arm cannot be two benches, so no ``hil`` marker)."""
    from ray.cluster_utils import Cluster

    links = [tmp_path / "arm0", tmp_path / "arm1"]
    for link in links:
        procs.hil("emulate", "roarm", "--link", str(link))
    for link in links:
        deadline = time.monotonic() + 30
        while not link.exists():
            assert time.monotonic() < deadline, "the emulator made no pty"
            time.sleep(0.05)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # nothing runs on the head
    try:
        # Two CPUs each: only the arm resource keeps two cells off one arm.
        port_of_node = {cluster.add_node(num_cpus=2, resources=bench_resources([str(link)])).node_id: str(link)
                        for link in links}
        cluster.wait_for_nodes()
        out = tmp_path / "sweep"
        proc, mark = start_marked(procs, "run", str(SMOKE), "--seeds", "0..3", "--target", "hw", "--executor", "ray",
                                  "--address", cluster.address, "--out", str(out))
        stdout, stderr = proc.communicate(timeout=400)
        assert proc.returncode == 0, stdout.decode() + stderr.decode()
        cells = json.loads((out / "summary.json").read_text())["cells"]
        assert len(cells) == 4 and all(c["outcome"] == "pass" for c in cells)
        by_port: dict[str, list[tuple[float, float]]] = {}
        for cell in cells:
            node = re.search(r"node ([0-9a-f]{12})", cell["where"]).group(1)  # type: ignore[union-attr]
            (node_port,) = [port for node_id, port in port_of_node.items() if node_id.startswith(node)]
            assert cell["port"] == node_port, cell  # the port of the node it ran on
            report = json.loads((Path(cell["out"]) / "report.json").read_text())
            argv = report["nodes"]["robot"]["argv"]
            assert argv[argv.index("--port") + 1] == node_port and report["mode"] == "realtime"
            by_port.setdefault(node_port, []).append((cell["started_at"], cell["ended_at"]))
        assert set(by_port) == {str(link) for link in links}  # both benches worked
        for spans in by_port.values():  # never two cells at once on one arm
            spans.sort()
            assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans
        assert not wait_until_none_marked(mark)
    finally:
        cluster.shutdown()


def test_cluster_join_advertises_the_arms_by_port(tmp_path: Path) -> None:
    """The one command a bench runs; the resources are those the two-bench test gives its nodes."""
    hil = str(Path(sys.executable).with_name("hil"))
    dry = subprocess.run([hil, "cluster", "join", "--address", "10.0.0.5:6379", "--arm", "/dev/ttyUSB0",
                          "--arm", "/dev/ttyUSB1", "--dry-run"], capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == ("ray start --address 10.0.0.5:6379 --resources '" +
                                  json.dumps(bench_resources(["/dev/ttyUSB0", "/dev/ttyUSB1"])) + "' --num-cpus 0")
    assert json.loads(dry.stdout.split("'")[1]) == {"roarm_m3": 2, "roarm_m3:/dev/ttyUSB0": 1,
                                                    "roarm_m3:/dev/ttyUSB1": 1}
    not_a_port = tmp_path / "file"
    not_a_port.write_text("")
    refused = subprocess.run([hil, "cluster", "join", "--address", "10.0.0.5:6379", "--arm", str(not_a_port),
                              "--arm", str(tmp_path / "none")], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"{not_a_port}: not a character device" in refused.stderr
    assert f"{tmp_path / 'none'}: No such file or directory" in refused.stderr


@needs_ray
def test_an_unreachable_cluster_is_a_broken_setup_at_once(tmp_path: Path) -> None:
    """ray.init would retry an unreachable head for minutes; the sweep says so within seconds."""
    hil = str(Path(sys.executable).with_name("hil"))
    started = time.monotonic()
    result = subprocess.run([hil, "run", str(SMOKE), "--executor", "ray", "--address", "127.0.0.1:1",
                             "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and time.monotonic() - started < 60, result.stdout + result.stderr
    assert "cannot reach the Ray head at 127.0.0.1:1: Connection refused" in result.stdout
    result = subprocess.run([hil, "run", str(SMOKE), "--executor", "ray", "--address", "head-without-port",
                             "--out", str(tmp_path / "p")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "expected HOST:PORT of a Ray head" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
