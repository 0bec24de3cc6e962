"""A scenario across two machines, for real: the robot on one host, the runner
and the policy on another, CURVE on the link between them, and a stranger on
the same link that gets nothing through.

The hosts are network namespaces joined over veth pairs to one bridge
(tests/netns.py): the arm's PC at 10.77.0.1 runs the robot (``hil node sim
--backend mock``, or ``hil node hw`` on the firmware emulator's pty), the
workstation at 10.77.0.2 runs ``hil run`` (which starts the policy there),
and a stranger at 10.77.0.3 tries the robot with no keys and with keys of
its own. Each machine gets only its own secret keys, copied as docs/bench.md
says. Needs root and iproute2; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bus.processes import Child, Processes
from tests.conftest import HIL, ROOT
from tests.netns import Hosts, remove_stale, skip_reason
from tools.bench.rig import start_emulator

PORTS = {"robot": 5550, "policy": 5552, "runner": 5554, "recorder": 5556}
WORKSTATION_ROLES = ("policy", "runner", "recorder", "client")
RUN_TIMEOUT_S = 180.0


class Lab:
    """Three hosts on one link and the processes started in them, each logged to a file."""

    def __init__(self, hosts: Hosts, processes: Processes, logs: Path) -> None:
        self.hosts = hosts
        self.processes = processes
        self.logs = logs
        self.count = 0

    def start(self, host: str | None, name: str, *argv: str) -> Child:
        """``argv`` in ``host`` (None: this test's own namespace)."""
        command = list(argv) if host is None else self.hosts.argv(host, argv)
        return self.processes.start(name, command)

    def run(self, host: str, *argv: str, timeout_s: float = 60.0) -> tuple[int, str]:
        """Run to the end in ``host``: exit status and output."""
        self.count += 1
        child = self.start(host, f"{self.count:02d}-{Path(argv[1] if len(argv) > 1 else argv[0]).name}", *argv)
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.processes.stop([child])
            raise AssertionError(f"{' '.join(argv)} in {host} took longer than {timeout_s:g} s:\n{child.tail(40)}")
        assert child.log_path is not None
        return child.returncode, child.log_path.read_text(errors="replace")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    remove_stale()
    hosts = Hosts()
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = Processes(log_dir=logs, cwd=ROOT)
    try:
        hosts.open()
        yield Lab(hosts, processes, logs)
    finally:
        processes.stop(term_s=5.0)
        hosts.close()
    assert not hosts.left(), "network namespaces left behind"


def endpoints_description(pc: str, workstation: str) -> dict[str, Any]:
    """The bench's endpoints: the robot on the PC, every other role on the workstation."""
    return {role: {"pub": f"tcp://{pc if role == 'robot' else workstation}:{port}",
                   "rep": f"tcp://{pc if role == 'robot' else workstation}:{port + 1}"}
            for role, port in PORTS.items()}


def machine_keys(made: Path, folder: Path, roles: tuple[str, ...]) -> Path:
    """What one machine gets: every public key, and the secrets of the roles it runs."""
    shutil.copytree(made / "public", folder / "public")
    (folder / "private").mkdir(mode=0o700)
    for role in roles:
        secret = folder / "private" / f"{role}.key_secret"
        shutil.copyfile(made / "private" / f"{role}.key_secret", secret)
        secret.chmod(0o600)
    return folder


def report_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


def refused_count(lab: Lab, workstation_endpoints: Path) -> float:
    """The robot's security.refused counter, asked from the workstation with its keys."""
    code, output = lab.run("workstation", HIL, "bus", "info", "robot", "--json", "--timeout", "5",
                           "--endpoints", str(workstation_endpoints))
    assert code == 0, output
    info = json.loads(output[output.index("{"):])
    return float(info.get("metrics", {}).get("security.refused", 0.0))


@pytest.mark.slow
@pytest.mark.parametrize("robot", ["sim", "hw"])
def test_scenario_passes_across_the_link_and_a_stranger_gets_nothing(robot: str, lab: Lab, tmp_path: Path) -> None:
    pc = lab.hosts.host("pc")
    workstation = lab.hosts.host("workstation")
    stranger = lab.hosts.host("stranger")

    # Keys, made outside any git work tree; each machine gets its own share.
    code, output = lab.run("workstation", HIL, "keys", "generate", str(tmp_path / "made"))
    assert code == 0, output
    pc_keys = machine_keys(tmp_path / "made", tmp_path / "pc" / "keys", ("robot",))
    ws_keys = machine_keys(tmp_path / "made", tmp_path / "ws" / "keys", WORKSTATION_ROLES)
    # The stranger knows the public keys (they are public) but has its own secret.
    code, output = lab.run("stranger", HIL, "keys", "generate", str(tmp_path / "own"), "--name", "client")
    assert code == 0, output
    stranger_keys = machine_keys(tmp_path / "made", tmp_path / "stranger" / "keys", ())
    shutil.copyfile(tmp_path / "own" / "private" / "client.key_secret",
                    stranger_keys / "private" / "client.key_secret")

    bench = endpoints_description(pc, workstation)
    for machine in ("pc", "ws", "stranger"):
        (tmp_path / machine / "bench.json").write_text(json.dumps(bench, indent=2))
    # The workstation's second copy names its keys itself (relative to the file).
    (tmp_path / "ws" / "bench-keys.json").write_text(json.dumps({**bench, "security": {"keys": "keys"}}))

    # The arm's PC: the robot node, bound to its own address with CURVE.
    node = [HIL, "node", "hw", "--port", str(tmp_path / "arm")] if robot == "hw" else \
        [HIL, "node", "sim", "--backend", "mock", "--mode", "lockstep"]
    if robot == "hw":
        start_emulator(lab.processes, tmp_path / "arm", timeout_s=60)  # the arm itself: a pty, no network
    robot_node = lab.start("pc", "robot", *node, "--endpoints", str(tmp_path / "pc" / "bench.json"),
                           "--keys", str(pc_keys))
    lab.processes.wait_ready(robot_node, lambda _wait: "] ready:" in (robot_node.log_path or Path()).read_text(),
                             60.0, waiting_for="print its ready line")
    assert f"tcp://{pc}:5551" in robot_node.tail()

    # 1. The workstation runs a scenario whose robot is remote, given --endpoints and --keys.
    scenario = tmp_path / "ws" / "smoke-remote.yaml"
    smoke = (ROOT / "scenarios" / "smoke.yaml").read_text()
    scenario.write_text(smoke.replace("robot:\n  target: mock\n", "robot:\n  remote: true\n  target: mock\n", 1))
    assert "remote: true" in scenario.read_text()
    out = tmp_path / "out1"
    code, output = lab.run("workstation", HIL, "run", str(scenario), "--endpoints", str(tmp_path / "ws" / "bench.json"),
                           "--keys", str(ws_keys), "--out", str(out), "--no-progress", timeout_s=RUN_TIMEOUT_S)
    assert code == 0, output
    report = report_of(out)
    assert report["passed"] and report["target"] == ("hw" if robot == "hw" else "mock"), report
    assert report["provenance"]["robot_backend"] == report["target"]
    assert report["nodes"]["robot"]["remote"] and report["nodes"]["robot"]["left_running"]
    assert "pid" not in report["nodes"]["robot"]  # nothing was started for it
    assert report["nodes"]["policy"]["info"]["pid"] > 0
    assert abs(report["figures"]["remote_clock"]["offset_ms"]) < 1.0  # one kernel, one clock: the method is sound
    assert robot_node.poll() is None, "the runner must leave a remote robot running"

    # 2. A stranger on the link: the robot's port is reachable from it ...
    reach = "import socket; socket.create_connection(('%s', 5551), 5).close()" % pc
    code, output = lab.run("stranger", shutil.which("python3") or "python3", "-c", reach)
    assert code == 0, output
    before = refused_count(lab, tmp_path / "ws" / "bench-keys.json")
    # ... but without keys its ping gets no answer, and the message says keys may be missing,
    code, output = lab.run("stranger", HIL, "bus", "ping", "robot", "--timeout", "2",
                           "--endpoints", str(tmp_path / "stranger" / "bench.json"))
    assert code == 1 and "key" in output and "Traceback" not in output, output
    # with keys of its own neither its ping nor its subscription gets anything,
    code, output = lab.run("stranger", HIL, "bus", "ping", "robot", "--timeout", "2",
                           "--endpoints", str(tmp_path / "stranger" / "bench.json"), "--keys", str(stranger_keys))
    assert code == 1 and "round trip" not in output, output
    code, output = lab.run("stranger", HIL, "bus", "echo", "robot/joint_state", "-n", "1", "--timeout", "3",
                           "--endpoints", str(tmp_path / "stranger" / "bench.json"), "--keys", str(stranger_keys))
    assert code == 1 and "position" not in output, output
    # and the robot counted and reported it, with the stranger's address.
    assert refused_count(lab, tmp_path / "ws" / "bench-keys.json") > before
    deadline = time.monotonic() + 10
    while f"{stranger}" not in robot_node.tail(200) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "security.refused" in robot_node.tail(200) and stranger in robot_node.tail(200)

    # 3. Again on the same robot, the endpoints (and keys) named by the scenario itself, recorded.
    scenario = tmp_path / "ws" / "smoke-bench.yaml"
    scenario.write_text(smoke.replace("robot:\n  target: mock\n", "robot:\n  endpoints: bench-keys.json\n", 1)
                        .replace("record: false", "record: true"))
    out = tmp_path / "out2"
    code, output = lab.run("workstation", HIL, "run", str(scenario), "--out", str(out), "--no-progress",
                           timeout_s=RUN_TIMEOUT_S)
    assert code == 0, output
    assert report_of(out)["passed"]
    code, output = lab.run("workstation", HIL, "bag", "info", str(out / "run.mcap"))
    assert code == 0 and "robot/joint_state" in output, output
    assert robot_node.poll() is None
