"""A robot that already runs (``robot.remote``, ``robot.endpoints``, ``hil run
--remote --endpoints``), on this host's loopback: what the scenario file
accepts, and the set-ups that cannot work, each said plainly (exit 2) with
the robot left running. The two-host run with CURVE is
tests/test_run_across_hosts.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zmq

from bus.endpoints import Endpoints
from scenarios.schema import ScenarioError, loads
from tests.conftest import ROOT, Procs, wait_robot
from tests.test_run_e2e import report_of, run_hil
from tests.test_security import free_base_port

SMOKE = (ROOT / "scenarios" / "smoke.yaml").read_text()
ROBOT = "robot:\n  target: mock\n"


def test_robot_endpoints_in_a_scenario_are_a_file_next_to_it_and_make_the_robot_remote(tmp_path: Path) -> None:
    (tmp_path / "bench.json").write_text(Endpoints.tcp("127.0.0.1", 5550).to_json())
    scenario = loads(SMOKE.replace(ROBOT, "robot:\n  endpoints: bench.json\n"), tmp_path / "s.yaml")
    assert scenario.robot.endpoints == (tmp_path / "bench.json").resolve() and scenario.robot.remote
    explicit = loads(SMOKE.replace(ROBOT, "robot:\n  endpoints: bench.json\n  remote: false\n"), tmp_path / "s.yaml")
    assert not explicit.robot.remote  # every node started here, on the file's endpoints
    assert loads(SMOKE.replace(ROBOT, "robot:\n  remote: true\n"), tmp_path / "s.yaml").robot.remote
    assert not loads(SMOKE, tmp_path / "s.yaml").robot.remote
    with pytest.raises(ScenarioError) as caught:
        loads(SMOKE.replace(ROBOT, "robot:\n  remote: yes please\n  endpoints: nowhere.json\n"), tmp_path / "s.yaml")
    text = "\n".join(caught.value.errors)
    assert 's.yaml:8: robot.remote: expected true or false, got "yes please"' in text
    assert "s.yaml:9: robot.endpoints: no such file 'nowhere.json'" in text


def test_remote_without_an_address_says_where_to_give_it(procs: Procs, tmp_path: Path) -> None:
    code, stdout, stderr = run_hil(procs, str(ROOT / "scenarios" / "smoke.yaml"), "--remote",
                                   "--out", str(tmp_path / "out"))
    assert code == 2 and "--endpoints FILE" in stderr and "Traceback" not in stderr, stdout + stderr


def test_a_remote_robot_that_does_not_answer_is_a_broken_setup(procs: Procs, tmp_path: Path) -> None:
    bench = tmp_path / "bench.json"
    Endpoints.tcp("127.0.0.1", free_base_port("127.0.0.1")).save(bench)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SMOKE.replace(ROBOT, "robot:\n  remote: true\n") + "timeouts: {startup_s: 2}\n")
    out = tmp_path / "out"
    code, stdout, stderr = run_hil(procs, str(scenario), "--endpoints", str(bench), "--out", str(out))
    assert code == 2, stdout + stderr
    report = report_of(out)
    assert report["outcome"] == "broken"
    assert "remote robot at tcp://127.0.0.1:" in report["error"] and "did not answer ping" in report["error"]
    assert "--keys" in report["error"]  # what to check: node running, firewall, keys
    assert report["nodes"]["policy"]["stopped_by"] in ("shutdown service", "SIGTERM")


def test_a_remote_robot_of_another_target_is_refused_and_left_running(procs: Procs, tmp_path: Path,
                                                                     zctx: zmq.Context) -> None:
    bench = tmp_path / "bench.json"
    endpoints = Endpoints.tcp("127.0.0.1", free_base_port("127.0.0.1"))
    endpoints.save(bench)
    robot = procs.hil("node", "sim", "--backend", "mock", "--mode", "lockstep", "--endpoints", str(bench))
    client = wait_robot(zctx, endpoints, 60.0)
    out = tmp_path / "out"
    code, stdout, stderr = run_hil(procs, str(ROOT / "scenarios" / "smoke.yaml"), "--remote", "--target", "hw",
                                   "--endpoints", str(bench), "--out", str(out))
    assert code == 2, stdout + stderr
    assert "--target hw was asked, but the remote robot is 'mock'" in report_of(out)["error"]
    # a run that passes, then: the robot is still there, never asked to shut down
    code, stdout, stderr = run_hil(procs, str(ROOT / "scenarios" / "smoke.yaml"), "--remote",
                                   "--endpoints", str(bench), "--out", str(tmp_path / "ok"))
    assert code == 0, stdout + stderr
    report = report_of(tmp_path / "ok")
    assert report["target"] == "mock" and report["nodes"]["robot"]["left_running"]
    # its deadline counters count this run only, not the idle time before it
    assert next(v for v in report["verdicts"] if v["name"] == "deadline_misses")["passed"]
    assert robot.poll() is None and client.ping().role == "robot"
    client.close()
    assert json.loads(bench.read_text())["robot"]["rep"] == endpoints["robot"].rep


def test_an_endpoints_file_for_other_machines_is_refused_plainly(procs: Procs, tmp_path: Path) -> None:
    """The workstation's roles at an address this machine does not have (the
    file copied to the wrong machine, or a typo): exit 2 and why, no traceback."""
    bench = tmp_path / "bench.json"
    Endpoints.tcp("192.0.2.7", 5550).save(bench)  # TEST-NET-1: nobody's address
    smoke = str(ROOT / "scenarios" / "smoke.yaml")
    code, stdout, stderr = run_hil(procs, smoke, "--remote", "--endpoints", str(bench), "--out", str(tmp_path / "a"))
    assert code == 2 and "refusing to bind tcp://192.0.2.7" in stderr and "hil keys generate" in stderr, stderr
    code, stdout, stderr = run_hil(procs, smoke, "--remote", "--endpoints", str(bench), "--insecure",
                                   "--out", str(tmp_path / "b"))
    assert code == 2 and "this machine has no such address" in stderr, stderr
    assert "Traceback" not in stderr
