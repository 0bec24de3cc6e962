"""The process harness: process groups, readiness with a clear error, bounded stop, no leftovers, CPU and RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bus.processes import (Child, NotReady, Processes, file_appears, group_cpu_seconds, group_rss_kib, living_members,
                           wait_ready)

PY = sys.executable


def group_alive(pgid: int) -> bool:
    return bool(living_members(pgid))


def never_ready(wait_s: float) -> bool:
    """A probe of a node that never answers: waits like a ping would, says no."""
    time.sleep(wait_s)
    return False


def wait_file(path: Path, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_each_node_gets_its_own_process_group_and_log(tmp_path: Path) -> None:
    sup = Processes(log_dir=tmp_path)
    node = sup.start("talker", [PY, "-c", "import time; print('hello', flush=True); time.sleep(60)"])
    try:
        assert os.getpgid(node.pid) == node.pid != os.getpgid(0)
        deadline = time.monotonic() + 20
        while "hello" not in node.log_path.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        sup.stop(ask=lambda n: None, grace_s=0.1, term_s=5)
    assert node.stop_how == "SIGTERM" and not group_alive(node.pid)


def test_stop_escalates_to_sigkill_and_reaps_grandchildren(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    # A node that ignores SIGTERM and leaves a grandchild in its group.
    code = (
        "import signal, subprocess, sys, time, pathlib\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    sup = Processes(log_dir=tmp_path)
    node = sup.start("stubborn", [PY, "-c", code])
    wait_file(ready)
    asked: list[str] = []
    started = time.monotonic()
    sup.stop(ask=lambda n: asked.append(n.name), grace_s=0.2, term_s=0.5)
    assert time.monotonic() - started < 10
    assert asked == ["stubborn"] and node.stop_how == "SIGKILL"
    assert not group_alive(node.pid)  # the grandchild is gone too


def test_clean_exit_on_request_is_not_escalated(tmp_path: Path) -> None:
    stop_file = tmp_path / "stop"
    code = f"import os, time\nwhile not os.path.exists({str(stop_file)!r}): time.sleep(0.01)\n"
    sup = Processes(log_dir=tmp_path)
    node = sup.start("polite", [PY, "-c", code])
    sup.stop(ask=lambda n: stop_file.touch(), grace_s=20, term_s=5)
    assert node.stop_how == "shutdown service" and node.returncode == 0


def test_wait_ready_names_the_node_and_shows_its_log_when_it_dies(tmp_path: Path) -> None:
    sup = Processes(log_dir=tmp_path)
    node = sup.start("robot", [PY, "-c", "import sys; print('no such port /dev/ttyX'); sys.exit(3)"])
    with pytest.raises(NotReady) as caught:
        sup.wait_ready(node, never_ready, timeout_s=30)
    text = str(caught.value)
    assert "robot exited with status 3" in text and "no such port /dev/ttyX" in text
    sup.stop(ask=lambda n: None)


def test_wait_ready_times_out_with_a_clear_error(tmp_path: Path) -> None:
    sup = Processes(log_dir=tmp_path)
    node = sup.start("policy", [PY, "-c", "print('loading model', flush=True); import time; time.sleep(60)"])
    try:
        with pytest.raises(NotReady, match="policy did not answer ping within 0.5 s"):
            sup.wait_ready(node, never_ready, timeout_s=0.5)
    finally:
        sup.stop(ask=lambda n: None, grace_s=0.1)
    assert not group_alive(node.pid)


def test_wait_ready_returns_when_the_probe_answers(tmp_path: Path) -> None:
    sup = Processes(log_dir=tmp_path)
    node = sup.start("recorder", [PY, "-c", "import time; time.sleep(60)"])
    calls: list[float] = []

    def third_time_lucky(wait_s: float) -> bool:
        calls.append(wait_s)
        return len(calls) >= 3

    try:
        took = sup.wait_ready(node, third_time_lucky, timeout_s=30)
    finally:
        sup.stop(ask=lambda n: None, grace_s=0.1)
    assert len(calls) == 3 and took >= 0 and node.ready_s == took


def test_kill_on_purpose_is_not_a_crash(tmp_path: Path) -> None:
    sup = Processes(log_dir=tmp_path)
    victim = sup.start("policy", [PY, "-c", "import time; time.sleep(60)"])
    crasher = sup.start("robot", [PY, "-c", "import sys; sys.exit(5)"])
    sup.kill(victim)
    crasher.wait(timeout=20)
    assert [n.name for n in sup.crashed()] == ["robot"]
    assert isinstance(victim, Child) and victim.killed_on_purpose and not victim.alive()
    sup.stop(ask=lambda n: None)
    assert crasher.stop_how == "exited" and victim.stop_how == "killed on purpose"


def test_a_sigkilled_runner_takes_its_nodes_along(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: even without a clean stop, no node outlives the runner."""
    pid_file = tmp_path / "child.pid"
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "from pathlib import Path\n"
        "from bus.processes import Processes\n"
        f"sup = Processes(log_dir=Path({str(tmp_path)!r}))\n"
        f"node = sup.start('robot', [{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        f"Path({str(pid_file)!r}).write_text(str(node.pid))\n"
        "time.sleep(60)\n"
    )
    runner = subprocess.Popen([PY, "-c", code], start_new_session=True)
    try:
        wait_file(pid_file)
        time.sleep(0.05)
        child = int(pid_file.read_text())
        runner.kill()
        runner.wait(timeout=20)
        deadline = time.monotonic() + 20
        while group_alive(child):
            assert time.monotonic() < deadline, "the node outlived its runner"
            time.sleep(0.05)
    finally:
        if runner.poll() is None:
            runner.kill()


def test_cpu_and_memory_cover_the_whole_group(tmp_path: Path) -> None:
    """A leader that only sleeps, with a grandchild that burns CPU and holds memory: the group's figures show it."""
    busy = tmp_path / "busy"
    grandchild = (
        "import pathlib, time\n"
        "block = bytearray(64 * 1024 * 1024)\n"
        "for i in range(0, len(block), 4096): block[i] = 1\n"  # touch every page: resident
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.5: pass\n"
        f"pathlib.Path({str(busy)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    code = f"import subprocess, time\nsubprocess.Popen([{PY!r}, '-c', {grandchild!r}])\ntime.sleep(60)\n"
    with Processes(log_dir=tmp_path) as processes:
        node = processes.start("family", [PY, "-c", code])
        processes.wait_ready(node, file_appears(busy), 60, waiting_for="burn CPU")
        members = living_members(node.pid)
        assert len(members) == 2 and node.pid in members
        assert node.cpu_seconds() == group_cpu_seconds(node.pid) >= 0.5
        assert node.rss_kib() == group_rss_kib(node.pid) > 64 * 1024
    assert not group_alive(node.pid) and node.stop_how == "SIGTERM"
    assert group_cpu_seconds(node.pid) == 0.0 and group_rss_kib(node.pid) == 0


def test_output_can_go_to_pipes_instead_of_a_log(tmp_path: Path) -> None:
    with Processes() as processes:
        child = processes.start("echo", [PY, "-c", "import sys; print('out'); print('err', file=sys.stderr)"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = child.communicate(timeout=30)
        assert (out, err, child.returncode) == ("out\n", "err\n", 0)
        assert child.tail() == "    (output not logged)"
    with pytest.raises(ValueError, match="cannot be redirected as well"):
        Processes(log_dir=tmp_path).start("both", [PY, "-c", "pass"], stdout=subprocess.PIPE)


def test_a_child_is_started_with_the_harness_environment_and_folder(tmp_path: Path) -> None:
    code = "import os; print(os.getcwd(), os.environ['PYTHONUNBUFFERED'], os.environ['HIL_TEST'])"
    with Processes(cwd=tmp_path, env={"HIL_TEST": "yes"}) as processes:
        child = processes.start("env", [PY, "-c", code], stdout=subprocess.PIPE, text=True)
        out, _ = child.communicate(timeout=30)
    assert out.split() == [str(tmp_path), "1", "yes"]
    assert processes.by_name["env"] is child and child.stop_how == "exited"


def test_wait_ready_without_a_process_names_what_it_waited_for() -> None:
    with pytest.raises(NotReady, match="robot did not answer ping within 0.3 s"):
        wait_ready(never_ready, 0.3, what="robot")
