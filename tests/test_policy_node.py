"""The policy node as a real process against a real sim node process, over ipc sockets."""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zmq
from tests.conftest import Procs, wait_ready
from tests.policy_models import write_model

from bus.endpoints import Endpoints
from bus.processes import Child, signal_group
from bus.pubsub import Publisher, Subscriber
from bus.topics import EVENT, GOAL, HEARTBEAT, JOINT_COMMAND, JOINT_STATE, QueuePolicy
from tools.training.rollout import cartesian_goal_message
from policy_node.policy.spec import PolicySpec
from roarm.kinematics import sample_reachable_goal
from schemas import messages_pb2, services_pb2
from tools.bench.rig import start_emulator

ROOT = Path(__file__).resolve().parent.parent
REACH = str(ROOT / "policies" / "reach.onnx")
START_S = 90.0  # start-up on a loaded 2-core machine (imports of MuJoCo, onnxruntime)


def start_sim(procs: Procs, run_dir: Path, backend: str = "mock") -> Child:
    return procs.hil("node", "sim", "--backend", backend, "--mode", "lockstep", "--autostart",
                     "--run-dir", str(run_dir))


def poll_until(what: str, condition: Callable[[], bool], timeout_s: float = 60.0, step: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if step is not None:
            step()
        else:
            time.sleep(0.02)


def collect_commands(commands: Subscriber, count: int) -> list[messages_pb2.JointCommand]:
    """The first ``count`` commands the policy publishes."""
    answers: list[messages_pb2.JointCommand] = []

    def collect() -> None:
        answers.extend(e.message for e in commands.drain())  # type: ignore[misc]
        time.sleep(0.01)

    poll_until(f"{count} commands", lambda: len(answers) >= count, 60.0, collect)
    return answers


def read_events(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_robot(procs: Procs, folder: Path, target: str) -> None:
    """A lockstep sim (mock, mujoco) or the hw node on the firmware emulator (hw)."""
    if target != "hw":
        start_sim(procs, folder, target)
        return
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "arm"
    start_emulator(procs, link, timeout_s=START_S)
    procs.hil("node", "hw", "--port", str(link), "--run-dir", str(folder))


def reach_through_processes(procs: Procs, zctx: zmq.Context, folder: Path, target: str,
                            policy_args: tuple[str, ...], goal_xyz: np.ndarray) -> services_pb2.NodeInfo:
    """Start the robot and ``hil node policy ARGS --run-dir FOLDER``, publish the goal until the
    robot's TCP is within 15 mm; returns the policy's info, then shuts it down."""
    endpoints = Endpoints.for_run(folder)
    start_robot(procs, folder, target)
    policy = procs.hil(*policy_args, "--run-dir", str(folder))
    client = wait_ready(zctx, endpoints, "policy", timeout_s=START_S)
    runner = Publisher(zctx, endpoints["runner"].pub, "test")
    states = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE])
    latest: list[messages_pb2.JointState] = []

    def step() -> None:
        runner.publish(GOAL, cartesian_goal_message(goal_xyz))  # again and again: slow joiners
        envelope = states.recv(timeout_ms=50)
        if envelope is not None:
            latest[:] = [envelope.message]  # type: ignore[list-item]

    def reached() -> bool:
        return bool(latest) and float(np.linalg.norm(np.asarray(latest[0].tcp) - goal_xyz)) < 0.015

    poll_until(f"{' '.join(policy_args[2:])} to bring the {target} arm within 15 mm", reached, 90.0, step)
    described = client.info()
    client.shutdown("test done")
    assert policy.wait(timeout=30) == 0
    runner.close()
    states.close()
    client.close()
    return described


def test_same_model_command_reaches_a_goal_on_mock_and_mujoco(procs: Procs, run_dir: Path,
                                                              zctx: zmq.Context) -> None:
    """One policy command line, two robots: only the sim node's --backend differs."""
    goal_xyz = sample_reachable_goal(np.random.default_rng(2024))
    for backend in ("mock", "mujoco"):
        described = reach_through_processes(procs, zctx, run_dir / backend, backend,
                                            ("node", "policy", "--model", REACH, "--deadline-ms", "500"), goal_xyz)
        assert described.backend == "onnx:reach.onnx"
        assert described.extra["robot_backend"] == backend
        assert described.metrics["commands"] > 0  # (a loaded machine may cause a budget-overrun hold)


def test_same_scripted_command_drives_mock_mujoco_and_the_emulated_arm(procs: Procs, run_dir: Path,
                                                                       zctx: zmq.Context) -> None:
    """scripted:ik takes its period from the robot, so it also drives the hw node (25 Hz, realtime)."""
    goal_xyz = sample_reachable_goal(np.random.default_rng(7))
    backends = set()
    for target in ("mock", "mujoco", "hw"):
        described = reach_through_processes(procs, zctx, run_dir / target, target,
                                            ("node", "policy", "--scripted", "ik"), goal_xyz)
        backends.add(described.extra["robot_backend"])
    assert len(backends) == 3


def test_dead_robot_gets_holds_at_the_last_measured_position(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                            zctx: zmq.Context) -> None:
    events_file = run_dir / "policy-events.jsonl"
    sim = start_sim(procs, run_dir)
    policy = procs.hil("node", "policy", "--scripted", "waypoints", "--deadline-ms", "100",
                       "--events-file", str(events_file), "--run-dir", str(run_dir))
    client = wait_ready(zctx, endpoints, "policy", timeout_s=START_S)
    states = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE], policy=QueuePolicy.QUEUE)
    commands = Subscriber(zctx, [endpoints["policy"].pub], [JOINT_COMMAND], policy=QueuePolicy.QUEUE)
    events = Subscriber(zctx, [endpoints["policy"].pub], [EVENT])
    seen: dict[int, list[float]] = {}
    answers: list[messages_pb2.JointCommand] = []

    def collect() -> None:
        for envelope in states.drain():
            seen[envelope.message.seq] = list(envelope.message.position)  # type: ignore[union-attr]
        answers.extend(e.message for e in commands.drain())  # type: ignore[misc]
        time.sleep(0.01)

    poll_until("commands answering states", lambda: len(answers) >= 50, 60.0, collect)
    procs.kill(sim)  # the robot dies without a word (SIGKILL to its group)
    poll_until("three holds", lambda: sum(c.hold for c in answers) >= 3, 30.0, collect)
    collect()

    first_hold = next(i for i, c in enumerate(answers) if c.hold)
    holds = answers[first_hold:]
    last_seq = holds[0].obs_seq
    assert all(c.hold for c in holds), f"a non-hold command after the robot died: {[(c.hold, c.obs_seq) for c in answers[first_hold - 3:first_hold + 10]]} {read_events(events_file)}"
    assert all(c.obs_seq == last_seq for c in holds), "holds must answer the last state received"
    assert all(c.obs_seq <= last_seq for c in answers[:first_hold])
    if last_seq in seen:
        assert np.allclose(holds[0].position, seen[last_seq]), "hold = last measured position"
    else:  # SIGKILL can cut the robot's PUB between its subscribers: we missed the last state(s)
        newest = max(seen)
        assert last_seq > newest
        step = 4.7 * 0.01  # the arm moves at most this far per 10 ms period
        assert np.max(np.abs(np.asarray(holds[0].position) - seen[newest])) <= step * (last_seq - newest) + 1e-9
    assert all(b.stamp_ns - a.stamp_ns >= 90e6 for a, b in zip(holds, holds[1:])), "one hold per deadline"

    codes = {e["code"]: e for e in read_events(events_file)}
    assert codes["watchdog.stale_state"]["obs_seq"] == last_seq
    bus_codes: set[str] = set()
    poll_until("a stale_state event on the bus",
               lambda: "watchdog.stale_state" in bus_codes,
               10.0, lambda: bus_codes.update(e.message.code for e in events.drain()) or time.sleep(0.05))  # type: ignore[func-returns-value]
    described = client.info()
    assert described.metrics["deadline_miss"] >= 3
    heartbeat = client.ping()
    assert heartbeat.role == "policy"  # alive, and saying why it holds:
    beats = Subscriber(zctx, [endpoints["policy"].pub], [HEARTBEAT])
    states_seen: list[str] = []
    poll_until("a degraded heartbeat", lambda: "degraded" in states_seen, 10.0,
               lambda: states_seen.extend(e.message.state for e in beats.drain()) or time.sleep(0.05))  # type: ignore[func-returns-value]
    beats.close()
    signal_group(policy.pid, signal.SIGTERM)
    assert policy.wait(timeout=30) == 0, "SIGTERM must end the policy node cleanly"
    assert read_events(events_file)[-1]["code"] == "policy.stopped"
    for sock in (states, commands, events):
        sock.close()
    client.close()


def test_nan_model_leads_to_holds_and_events_not_a_crash(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                        zctx: zmq.Context) -> None:
    model = write_model(run_dir / "nan.onnx", PolicySpec(observation=("position",), dt=0.01), np.zeros(6),
                        multiply=math.nan)
    events_file = run_dir / "events.jsonl"
    metrics_file = run_dir / "policy.prom"
    start_sim(procs, run_dir)
    procs.hil("node", "policy", "--model", str(model), "--events-file", str(events_file),
              "--metrics-file", str(metrics_file), "--run-dir", str(run_dir))
    client = wait_ready(zctx, endpoints, "policy", timeout_s=START_S)
    commands = Subscriber(zctx, [endpoints["policy"].pub], [JOINT_COMMAND], policy=QueuePolicy.QUEUE)
    answers = collect_commands(commands, 20)
    assert all(c.hold for c in answers)
    assert all(np.all(np.isfinite(c.position)) for c in answers)
    seqs = [c.obs_seq for c in answers]
    assert seqs == sorted(seqs) and seqs[-1] > seqs[0], "holds answer each state: lockstep keeps going"
    assert client.ping().role == "policy"
    described = client.info()
    assert described.metrics["watchdog.non_finite_output"] >= 20
    poll_until("events and metrics files", lambda: bool(read_events(events_file)) and metrics_file.exists())
    nan_events = [e for e in read_events(events_file) if e["code"] == "watchdog.non_finite_output"]
    assert nan_events and all(isinstance(e["obs_seq"], int) for e in nan_events)
    assert "roarm_policy_deadline_miss_total" in metrics_file.read_text()
    poll_until("an SLA alert on the miss rate (every answer is a hold)",
               lambda: any(e["code"] == "sla.miss_rate" for e in read_events(events_file)))
    commands.close()
    client.shutdown("test done")
    client.close()


def test_spec_mismatch_is_refused_naming_the_field(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                   zctx: zmq.Context) -> None:
    model = write_model(run_dir / "slow.onnx", PolicySpec(observation=("position",), dt=0.02), np.zeros(6))
    start_sim(procs, run_dir)
    wait_ready(zctx, endpoints, "robot", timeout_s=START_S).close()
    policy = procs.hil("node", "policy", "--model", str(model), "--run-dir", str(run_dir))
    _, err = policy.communicate(timeout=START_S)
    assert policy.returncode == 1
    assert "does not fit the robot: control period: the policy was trained at 0.02 s (50 Hz), the robot runs " \
           "0.01 s (100 Hz); a lockstep robot must step at the policy's period" in err.decode()


def test_missing_robot_is_a_clear_error(procs: Procs, run_dir: Path) -> None:
    policy = procs.hil("node", "policy", "--scripted", "hold", "--robot-timeout-s", "1", "--run-dir", str(run_dir))
    _, err = policy.communicate(timeout=START_S)
    assert policy.returncode == 1
    assert "did not answer 'info' within 1 s" in err.decode()


def test_sigterm_while_waiting_for_the_robot_exits_cleanly(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                          zctx: zmq.Context) -> None:
    policy = procs.hil("node", "policy", "--scripted", "hold", "--run-dir", str(run_dir))
    wait_ready(zctx, endpoints, "policy", timeout_s=START_S).close()  # answers ping while it waits
    signal_group(policy.pid, signal.SIGTERM)
    assert policy.wait(timeout=30) == 0


def test_unwritable_metrics_file_is_reported_and_the_loop_goes_on(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                                  zctx: zmq.Context) -> None:
    events_file = run_dir / "events.jsonl"
    start_sim(procs, run_dir)
    procs.hil("node", "policy", "--scripted", "hold", "--metrics-file", str(run_dir / "no" / "such" / "p.prom"),
              "--events-file", str(events_file), "--run-dir", str(run_dir))
    client = wait_ready(zctx, endpoints, "policy", timeout_s=START_S)
    poll_until("a metrics.write_failed event",
               lambda: any(e["code"] == "metrics.write_failed" for e in read_events(events_file)))
    first = client.info().metrics["commands"]
    poll_until("more commands", lambda: client.info().metrics["commands"] > first + 10)
    client.close()


def test_budget_overrun_is_a_hold_and_a_p95_alert(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                  zctx: zmq.Context) -> None:
    """A 1 us budget no policy can meet: every answer becomes a hold, and p95 is over its SLA."""
    events_file = run_dir / "events.jsonl"
    start_sim(procs, run_dir)
    procs.hil("node", "policy", "--scripted", "ik", "--budget-us", "1", "--sla-p95-us", "1",
              "--events-file", str(events_file), "--run-dir", str(run_dir))
    client = wait_ready(zctx, endpoints, "policy", timeout_s=START_S)
    commands = Subscriber(zctx, [endpoints["policy"].pub], [JOINT_COMMAND], policy=QueuePolicy.QUEUE)
    answers = collect_commands(commands, 20)
    assert all(c.hold for c in answers)
    poll_until("budget and p95 events", lambda: {"watchdog.budget_overrun", "sla.p95"}
               <= {str(e["code"]) for e in read_events(events_file)})
    assert client.info().metrics["watchdog.budget_overrun"] >= 20
    commands.close()
    client.close()
