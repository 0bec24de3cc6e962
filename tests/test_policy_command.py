"""``policy.command``: a policy process in any language, started, checked and stopped by the runner.

The shipped example is a C program (policies/c_hold/c_hold.c) that speaks
the bus contract with libzmq alone; scenarios/c_hold.yaml compiles it into
the run folder with gcc and runs it. It needs libzmq's headers (Debian:
``apt-get install -y libzmq3-dev``). Commands that never answer, or exit,
are broken set-ups named in the report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Procs

C_SOURCE = ROOT / "policies" / "c_hold" / "c_hold.c"
HAVE_ZMQ_HEADERS = Path("/usr/include/zmq.h").is_file()
needs_libzmq = pytest.mark.skipif(shutil.which("gcc") is None or not HAVE_ZMQ_HEADERS,
                                  reason="needs gcc and libzmq3-dev (apt-get install -y libzmq3-dev)")


def hil_run(procs: Procs, *args: str, timeout_s: float = 180) -> tuple[int, str]:
    proc = procs.hil("run", *args, "--no-progress")
    out, err = proc.communicate(timeout=timeout_s)
    return proc.returncode, out.decode() + err.decode()


def report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


@needs_libzmq
def test_the_c_program_compiles_without_warnings(tmp_path: Path) -> None:
    result = subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(tmp_path / "c_hold"),
                             str(C_SOURCE), "-lzmq", "-lm"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@needs_libzmq
@pytest.mark.slow
def test_a_c_policy_runs_a_shipped_scenario_like_a_node_of_the_harness(procs: Procs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = hil_run(procs, "c_hold", "--out", str(out))
    assert code == 0, text
    seen = report(out)
    policy = seen["nodes"]["policy"]
    assert policy["stopped_by"] == "shutdown service" and policy["exit_code"] == 0, policy
    assert policy["info"]["backend"] == "c:hold" and policy["info"]["extra"] == {"language": "C"}
    assert policy["info"]["role"] == "policy"
    # Every state was answered by the C program (but the last, which may still be in flight when the
    # runner stops counting), and it followed both joint goals.
    states, commands = seen["figures"]["states"], seen["figures"]["commands"]
    assert states > 0 and states - 1 <= commands <= states, seen["figures"]
    assert all(goal["reached"] for goal in seen["goals"])
    assert "--endpoints" in policy["argv"][-1] and str(out) not in policy["argv"][-1]


@needs_libzmq
@pytest.mark.slow
def test_the_same_c_policy_drives_mujoco(procs: Procs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = hil_run(procs, "c_hold", "--target", "mujoco", "--out", str(out), "--no-record")
    assert code == 0, text


def scenario_with_command(tmp_path: Path, command: str) -> Path:
    text = (ROOT / "scenarios" / "smoke.yaml").read_text().replace("policy:\n  scripted: ik",
                                                                   f"policy:\n  command: {command}")
    assert command in text
    path = tmp_path / "external.yaml"
    path.write_text(text + "timeouts: {startup_s: 3}\n")
    return path


def test_a_command_that_never_answers_ping_is_a_broken_setup(procs: Procs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = hil_run(procs, str(scenario_with_command(tmp_path, "[sleep, '60']")), "--out", str(out))
    assert code == 2, text
    assert "policy did not answer ping within" in report(out)["error"]
    assert report(out)["nodes"]["policy"]["stopped_by"] in ("SIGTERM", "shutdown service")


def test_a_command_that_exits_is_named_with_its_output(procs: Procs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = "[sh, -c, 'echo cannot find my weights >&2; exit 3']"
    code, text = hil_run(procs, str(scenario_with_command(tmp_path, command)), "--out", str(out))
    assert code == 2, text
    error = report(out)["error"]
    assert "policy exited with status 3 before it was ready" in error and "cannot find my weights" in error
