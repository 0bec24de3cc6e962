"""Every error path of the ``hil`` commands ends with its documented exit status, never a traceback.

The statuses and which command exits how are in docs/contracts.md ("Exit
status") and bus/errors.py: 0 pass, 1 fail, 2 broken set-up or usage, 130
interrupted. Each case runs the real ``hil`` (or ``python -m policy_node``)
as a process on real inputs (a bag written by the real BagWriter, a file
that is not ONNX, a run folder where no node listens); they run a few at a
time to keep the whole file quick.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq

from bus.endpoints import Endpoints
from bus.errors import EXIT_BROKEN, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_PASS, Failed, HilError, Interrupted
from bus.security import generate_keys
from policy_node.policy.base import Observation
from policy_node.policy.load import load_policy
from tests.bag_factory import DT, kinematic_run

ROOT = Path(__file__).resolve().parents[1]
HIL = str(Path(sys.executable).with_name("hil"))
GOOD_SCENARIO = ROOT / "scenarios" / "smoke.yaml"
PACKAGES = ("schemas", "bus", "roarm", "sim_node", "hw_node", "policy_node", "scenarios", "tools")


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    status: int
    says: str  # expected on stderr (stdout for a check-policy verdict)


def cases(work: Path) -> list[Case]:
    """Error paths of every command group, with the inputs made in ``work``."""
    rd = str(work / "run")
    garbage, bag, bad_yaml = str(work / "garbage.mcap"), str(work / "hold.mcap"), str(work / "bad.yaml")
    not_onnx, missing = str(work / "garbage.onnx"), str(work / "missing")
    return [
        # hil run
        Case("run-missing-scenario", ("run", f"{missing}.yaml"), EXIT_BROKEN, "cannot read scenario"),
        Case("run-invalid-scenario", ("run", bad_yaml, "--out", str(work / "out")), EXIT_BROKEN,
             "bad.yaml:6: goals[0].timeout_s: expected a number > 0"),
        Case("run-bad-seeds", ("run", str(GOOD_SCENARIO), "--seeds", "5..2"), EXIT_BROKEN, "--seeds: '5..2'"),
        Case("run-hw-without-port", ("run", str(GOOD_SCENARIO), "--target", "hw", "--out", str(work / "hw")),
             EXIT_BROKEN, "target hw needs a serial port"),
        Case("unknown-command", ("nonsense",), EXIT_BROKEN, "No such command"),
        # hil bus
        Case("bus-ping-no-node", ("bus", "ping", "robot", "--run-dir", rd, "--timeout", "0.2"), EXIT_FAIL,
             "no reply to 'ping'"),
        Case("bus-info-no-node", ("bus", "info", "policy", "--run-dir", rd, "--timeout", "0.2"), EXIT_FAIL,
             "no reply to 'info'"),
        Case("bus-echo-nothing", ("bus", "echo", "robot/joint_state", "--run-dir", rd, "--timeout", "0.3"),
             EXIT_FAIL, "no message on robot/joint_state"),
        Case("bus-missing-endpoints", ("bus", "ping", "robot", "--endpoints", f"{missing}.json"), EXIT_BROKEN,
             "cannot read endpoints"),
        # hil bag
        Case("bag-info-missing", ("bag", "info", f"{missing}.mcap"), EXIT_FAIL, "no bag at"),
        Case("bag-info-garbage", ("bag", "info", garbage), EXIT_FAIL, "not an MCAP file"),
        Case("bag-plot-garbage", ("bag", "plot", garbage, "-o", str(work / "p.png")), EXIT_FAIL, "not an MCAP file"),
        Case("bag-export-garbage", ("bag", "export", garbage, "--csv", str(work / "csv")), EXIT_FAIL,
             "not an MCAP file"),
        Case("bag-replay-garbage", ("bag", "replay", garbage, "--run-dir", rd), EXIT_FAIL, "not an MCAP file"),
        Case("bag-record-bad-meta", ("bag", "record", "-o", str(work / "r.mcap"), "--meta", "novalue",
                                     "--run-dir", rd), EXIT_BROKEN, "KEY=VALUE"),
        Case("check-policy-garbage", ("bag", "check-policy", garbage, "--model", "scripted:hold"), EXIT_FAIL,
             "not an MCAP file"),
        Case("check-policy-missing-model", ("bag", "check-policy", bag, "--model", f"{missing}.onnx"), EXIT_FAIL,
             "cannot load policy"),
        Case("check-policy-mismatch", ("bag", "check-policy", bag, "--model", "scripted:ik"), EXIT_FAIL,
             "FAIL: first divergence"),
        Case("check-policy-match", ("bag", "check-policy", bag, "--model", "scripted:hold"), EXIT_PASS, "PASS"),
        # hil node, python -m policy_node, hil emulate
        Case("node-policy-not-onnx", ("node", "policy", "--model", not_onnx, "--run-dir", rd), EXIT_FAIL,
             "cannot start the policy node"),
        Case("node-policy-neither", ("node", "policy", "--run-dir", rd), EXIT_BROKEN,
             "exactly one of --model PATH or --scripted"),
        Case("python-m-policy-node-missing", ("-m", "policy_node", "--model", f"{missing}.onnx", "--run-dir", rd),
             EXIT_FAIL, "does not exist"),
        Case("node-sim-bad-dt", ("node", "sim", "--backend", "mujoco", "--dt", "0.003", "--run-dir", rd),
             EXIT_BROKEN, "whole number of physics steps"),
        Case("node-sim-network-without-keys", ("node", "sim", "--backend", "mock", "--endpoints",
                                               str(work / "tcp.json")), EXIT_BROKEN, "refusing to bind"),
        Case("node-sim-isaac-not-installed", ("node", "sim", "--backend", "isaac", "--run-dir", rd), EXIT_FAIL,
             "needs NVIDIA Isaac Sim"),
        Case("node-sim-cpu-not-ours", ("node", "sim", "--backend", "mock", "--cpus", "4096", "--run-dir", rd),
             EXIT_BROKEN, "CPU 4096 is not available to this process"),
        Case("node-policy-bad-cpus", ("node", "policy", "--scripted", "hold", "--cpus", "1-0", "--run-dir", rd),
             EXIT_BROKEN, "is not a CPU range"),
        Case("node-hw-no-port", ("node", "hw", "--port", f"{missing}-tty", "--run-dir", rd), EXIT_BROKEN,
             "cannot open serial port"),
        Case("emulate-bad-fault", ("emulate", "roarm", "--fault", "melt@1"), EXIT_BROKEN, "unknown fault 'melt'"),
        # hil keys, hil policy
        Case("keys-exist", ("keys", "generate", str(work / "keys"), "--name", "robot"), EXIT_FAIL, "--force"),
        Case("keys-unwritable", ("keys", "generate", str(work / "garbage.mcap" / "keys")), EXIT_FAIL,
             "cannot write keys"),
        Case("policy-info-missing", ("policy", "info", f"{missing}.onnx"), EXIT_FAIL, "does not exist"),
        Case("policy-info-unknown-scripted", ("policy", "info", "scripted:dance"), EXIT_FAIL,
             "unknown scripted policy"),
    ]


def _inputs(work: Path) -> None:
    (work / "garbage.mcap").write_bytes(b"this is not a bag\n" * 4)
    (work / "garbage.onnx").write_bytes(b"this is not a model\n")
    (work / "bad.yaml").write_text("name: bad\nrobot: {target: mock}\npolicy: {scripted: ik}\n"
                                   "goals:\n  - tcp: [0.3, 0.1, 0.3]\n    timeout_s: soon\n")
    hold = load_policy("scripted:hold", dt=DT)
    kinematic_run(work / "hold.mcap", lambda _k, state, goal: hold.act(Observation.from_state(state, goal)),
                  steps=40)
    Endpoints.tcp("0.0.0.0", 47_310).save(work / "tcp.json")
    generate_keys(work / "keys", ["robot"])


def _run(case: Case, work: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, *case.argv] if case.argv[0] == "-m" else [HIL, *case.argv]
    env = {**os.environ, "HIL_RUN_DIR": str(work / "run")}
    env.pop("HIL_KEYS", None)
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, cwd=ROOT, env=env)


Results = dict[str, tuple[Case, subprocess.CompletedProcess[str]]]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    work = tmp_path_factory.mktemp("exit-codes")
    _inputs(work)
    todo = cases(work)
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(lambda case: _run(case, work), todo))
    return {case.name: (case, result) for case, result in zip(todo, done, strict=True)}


@pytest.mark.parametrize("name", [case.name for case in cases(Path("unused"))])
def test_error_path_ends_with_its_documented_status(name: str, results: Results) -> None:
    case, result = results[name]
    output = result.stdout + result.stderr
    assert result.returncode == case.status, output
    assert case.says in output, output
    assert "Traceback" not in output, output
    if case.status == EXIT_FAIL and case.name != "check-policy-mismatch":
        # the error itself is one line: "Error: <message>"
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1 and case.says in errors[0], result.stderr


def test_ctrl_c_ends_a_command_with_130(tmp_path: Path) -> None:
    """A ping waiting on a node that never answers, interrupted: 130, one line, no traceback."""
    ctx = zmq.Context()
    robot = ctx.socket(zmq.ROUTER)  # takes the request and never answers
    robot.bind(Endpoints.for_run(tmp_path)["robot"].rep)
    # A shell without job control starts background jobs with SIGINT ignored, and Python then keeps
    # it ignored: give the command the default disposition a terminal's Ctrl-C meets.
    proc = subprocess.Popen([HIL, "bus", "ping", "robot", "--run-dir", str(tmp_path), "--timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert robot.poll(60_000), "the ping never arrived"
        robot.recv_multipart()  # the command is now waiting for the answer
        # A signal that lands between the send and the blocking receive is only
        # seen when the receive returns (its timeout: 60 s); a second one wakes it.
        err = ""
        for _ in range(10):
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=3)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        robot.close(linger=0)
        ctx.term()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err and "Aborted" not in err


def test_every_error_class_of_the_project_has_the_one_root() -> None:
    """Each exception class defined in a project module derives from HilError, so it carries its exit status."""
    classes = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            module = importlib.import_module(name)
            classes += [obj for obj in vars(module).values() if isinstance(obj, type)
                        and issubclass(obj, BaseException) and obj.__module__ == name]
    assert len(classes) >= 28
    rootless = [f"{cls.__module__}.{cls.__qualname__}" for cls in classes if not issubclass(cls, HilError)]
    assert not rootless, rootless
    assert {cls.exit_code for cls in classes} == {EXIT_FAIL, EXIT_BROKEN, EXIT_INTERRUPTED}
    assert (Failed.exit_code, Interrupted.exit_code, HilError.exit_code) == (1, 130, 2)
