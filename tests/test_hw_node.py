"""hw_node against the firmware emulator: real processes, a real pty, the real bus.

The node is started exactly as on the real arm (``hil node hw --port PATH``);
the emulator is a separate process whose pty path it opens. Faults are
injected through the emulator's control FIFO while the node runs.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zmq

from bus.endpoints import Endpoints
from bus.processes import Child
from hw_node import protocol
from hw_node.lines import LineBuffer
from hw_node.link import open_port
from roarm.joints import pose
from roarm.kinematics import fk
from tests.conftest import Procs
from tools.bench.rig import Probe, inject, start_emulator

HOME = pose("home")


@dataclass
class Rig:
    probe: Probe
    control: Path
    node: Child  # the hw node


def start(procs: Procs, run_dir: Path, endpoints: Endpoints, zctx: zmq.Context,
          emulator_args: tuple[str, ...] = (), node_args: tuple[str, ...] = ()) -> Rig:
    link, control = run_dir / "arm", run_dir / "ctl"
    start_emulator(procs, link, *emulator_args, control=control)
    node = procs.hil("node", "hw", "--port", str(link), "--run-dir", str(run_dir), *node_args)
    probe = Probe(zctx, endpoints)
    procs.wait_ready(node, probe.robot.answers_ping, 20.0)
    probe.until(lambda: probe.last_state is not None and probe.state_is("ok"), 20, "a trusted state")
    return Rig(probe, control, node)


@pytest.fixture
def rig_factory(procs: Procs, run_dir: Path, endpoints: Endpoints, zctx: zmq.Context) -> Iterator:
    made: list[Rig] = []

    def make(emulator_args: tuple[str, ...] = (), node_args: tuple[str, ...] = ()) -> Rig:
        rig = start(procs, run_dir, endpoints, zctx, emulator_args, node_args)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.probe.close()


def drive(probe: Probe, target: np.ndarray, timeout_s: float, tol: float = 0.01) -> None:
    """Command ``target`` as a policy would (every pass) until the arm is there."""
    probe.until(lambda: np.max(np.abs(probe.position() - target)) < tol, timeout_s,
                f"the arm to reach {target.round(3).tolist()}", each=lambda: probe.command(target))


def test_states_follow_commands_within_limits_and_speed(rig_factory) -> None:
    rig = rig_factory(node_args=("--max-speed", "1.0"))
    probe = rig.probe
    first = probe.last_state
    assert first is not None and first.trusted
    np.testing.assert_allclose(first.tcp, fk(np.asarray(first.position)), atol=1e-9)
    np.testing.assert_allclose(first.position, HOME, atol=1e-3)
    # seq grows by one per published state
    seqs: list[int] = []
    probe.until(lambda: len(seqs) >= 5, 10, "five states", each=lambda: seqs.extend(s.seq for s in probe.pump(50)))
    assert np.all(np.diff(seqs) == 1), seqs

    # A target 1 rad away at 1 rad/s: reached, never faster than the limit.
    target = HOME.copy()
    target[0] = 1.0
    trace: list[tuple[float, float]] = []

    def command_and_trace() -> None:
        probe.command(target)
        if probe.last_state is not None:
            trace.append((probe.last_state.stamp_ns / 1e9, probe.last_state.position[0]))

    started = time.monotonic()
    probe.until(lambda: abs(probe.position()[0] - 1.0) < 0.01, 15, "base at 1 rad", each=command_and_trace)
    assert time.monotonic() - started > 0.8
    stamps, base = np.array(sorted(set(trace))).T
    # Over any 0.25 s window the arm moved no faster than 1 rad/s (plus the
    # jitter of when feedback lines arrive).
    for i, t in enumerate(stamps):
        j = int(np.searchsorted(stamps, t + 0.25))
        if j < len(stamps):
            assert abs(base[j] - base[i]) <= 1.0 * (stamps[j] - t) + 0.04, (t, base[i], base[j])
    assert probe.counter("command.clamped_speed") >= 1

    # Beyond the elbow limit: clamped to 2.95, counted.
    beyond = HOME.copy()
    beyond[2] = 3.5
    probe.until(lambda: abs(probe.position()[2] - 2.95) < 0.01, 15, "the elbow at its 2.95 limit",
                each=lambda: probe.command(beyond))
    probe.until(lambda: probe.counter("command.clamped_limits") >= 1, 5, "clamped_limits counted")
    probe.pump(300)
    assert probe.position()[2] <= 2.95 + 1e-3

    # NaN: refused whole and counted; the arm stays where it is.
    here = probe.position()
    bad = here.copy()
    bad[1] = math.nan
    for _ in range(5):
        probe.command(bad)
        probe.pump(40)
    probe.until(lambda: probe.counter("command.non_finite") >= 1, 5, "non_finite counted")
    np.testing.assert_allclose(probe.position(), here, atol=0.01)
    assert rig.node.poll() is None


def test_holds_the_measured_position_when_commands_stop(rig_factory) -> None:
    rig = rig_factory(node_args=("--deadline-ms", "300", "--max-speed", "0.5"))
    probe = rig.probe
    target = HOME.copy()
    target[0] = 1.5
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.6:  # the policy runs for a while, then dies
        probe.command(target)
        probe.pump(20)
    probe.until(lambda: probe.counter("deadline_hold") >= 1, 5, "a deadline hold")
    settle = time.monotonic()
    while time.monotonic() - settle < 0.5:  # the servos stop at the held position
        probe.pump(50)
    held = probe.position()[0]
    assert 0.1 < held < 0.8, held  # stopped on the way, far from the 1.5 target
    probe.until(lambda: probe.state_count > 0 and probe.last_heartbeat is not None
                and "holding" in probe.last_heartbeat.detail, 5, "holding in the heartbeat")
    time.sleep(1.0)
    probe.pump(100)
    assert abs(probe.position()[0] - held) < 0.02


def test_survives_a_garbage_burst(rig_factory) -> None:
    rig = rig_factory()
    probe = rig.probe
    target = HOME.copy()
    target[0] = 0.3
    drive(probe, target, 10)
    before = probe.state_count
    inject(rig.control, "garbage 20000")
    probe.until(lambda: probe.counter("serial.overlong") >= 1 and probe.counter("serial.bad_json") >= 1, 10,
                "the garbage to be counted", each=lambda: probe.command(target))
    target[0] = -0.3
    drive(probe, target, 10)
    before = probe.state_count
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        probe.pump(50)
    assert probe.state_count - before >= 12, "states no longer flow at the control rate"
    assert probe.state_is("ok")
    assert rig.node.poll() is None


def test_unplug_faults_then_recovers_without_replaying_the_old_command(rig_factory) -> None:
    rig = rig_factory(node_args=("--deadline-ms", "30000"))
    probe = rig.probe
    stale = HOME.copy()
    stale[0] = 0.8
    drive(probe, stale, 10)
    # Unplugged, and the arm reboots meanwhile (it drives to its init pose):
    # the node must not send the old 0.8 rad target once the cable is back.
    inject(rig.control, "unplug 1.5")
    inject(rig.control, "reboot")
    probe.until(lambda: probe.state_is("fault"), 10, "a fault heartbeat")
    assert "serial" in probe.last_heartbeat.detail  # type: ignore[union-attr]
    probe.until(lambda: probe.state_is("ok") and probe.counter("serial.reconnect") >= 1, 20, "reconnect")
    probe.until(lambda: abs(probe.position()[0]) < 0.02, 10, "the rebooted arm at its init pose")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.5:
        probe.pump(50)
        assert abs(probe.position()[0]) < 0.02, "the stale command was replayed"
    # fresh commands work again
    fresh = HOME.copy()
    fresh[0] = -0.2
    drive(probe, fresh, 10)


def test_unpowered_servos_make_the_node_degraded_not_a_liar(rig_factory) -> None:
    rig = rig_factory()
    probe = rig.probe
    inject(rig.control, "unpowered on")
    probe.until(lambda: probe.state_is("degraded", "servos unpowered?"), 10, "a degraded heartbeat")
    probe.pump(200)
    count = probe.state_count
    probe.pump(600)
    assert probe.state_count == count, "states published from garbage feedback"
    inject(rig.control, "unpowered off")
    probe.until(lambda: probe.state_is("ok") and probe.state_count > count, 10, "trusted states again")
    np.testing.assert_allclose(probe.position(), HOME, atol=0.01)


def test_old_build_in_debug_print_mode(rig_factory) -> None:
    """Print mode 1 echoes commands and prints debug text; no v in feedback."""
    rig = rig_factory(emulator_args=("--print-mode", "1", "--legacy", "--noise", "0.2"))
    probe = rig.probe
    target = HOME.copy()
    target[3] = 0.4
    drive(probe, target, 10)
    probe.until(lambda: probe.counter("serial.echo") >= 1 and probe.counter("serial.number") >= 1, 5,
                "echoed commands and bare numbers counted")
    # A reboot mid-run: boot text (read as firmware facts), print mode back to 1.
    inject(rig.control, "reboot")
    probe.until(lambda: probe.counter("serial.text") >= 5, 10, "boot text counted")
    info = probe.robot.info()
    assert info.extra["reports_supply"] == "no"
    assert "All bus servos status checked." in info.extra["firmware_text"]
    drive(probe, HOME, 10)  # still in control after the reboot


def test_estop_torque_and_reset_services(rig_factory) -> None:
    rig = rig_factory(node_args=("--reset-speed", "1.0"))
    probe = rig.probe
    target = HOME.copy()
    target[0] = 0.4

    probe.robot.estop(True)
    probe.until(lambda: probe.state_is("degraded", "e-stop"), 5, "e-stop in the heartbeat")
    for _ in range(10):
        probe.command(target)
        probe.pump(40)
    assert abs(probe.position()[0]) < 0.01
    probe.until(lambda: probe.counter("command.estop_ignored") >= 1, 5, "ignored commands counted")
    assert abs(probe.position()[0]) < 0.01
    probe.robot.estop(False)
    probe.until(lambda: probe.state_is("ok"), 5, "e-stop cleared")
    drive(probe, target, 10)

    probe.robot.torque(False)
    probe.until(lambda: probe.state_is("degraded", "torque off"), 5, "torque off in the heartbeat")
    probe.robot.torque(True)
    probe.until(lambda: probe.state_is("ok"), 5, "torque on again")

    ready = pose("ready")
    probe.robot.reset(ready, retries=1)
    for _ in range(5):
        probe.command(target)  # ignored while the reset moves
        probe.pump(40)
    probe.until(lambda: np.max(np.abs(probe.position() - ready)) < 0.03, 15, "the reset pose")
    probe.until(lambda: probe.counter("command.resetting_ignored") >= 1, 5, "commands ignored while resetting")
    with pytest.raises(Exception, match="reset pose"):
        probe.robot.reset([0.0, 1.0], retries=1)


def test_reset_starts_the_episode_at_the_pose_and_drops_older_commands(rig_factory) -> None:
    """State 0 comes only once the arm is at the reset pose, so a policy plans
    from where the arm is; what it sent for states of the move is never applied."""
    probe = rig_factory(node_args=("--reset-speed", "1.0")).probe
    away = HOME.copy()
    away[2] += 0.6  # the elbow, as a run leaves it before its next episode
    drive(probe, away, 10)
    before = probe.last_state.seq
    reply = probe.robot.reset(HOME, retries=1)
    assert reply.state.seq > before, "the move still belongs to the old episode"
    assert np.max(np.abs(np.asarray(reply.state.position) - away)) < 0.05  # where the move starts

    moving: list = []

    def episode_started() -> bool:
        for state in probe.pump():
            if state.seq == 0:
                return True
            moving.append(state)
            probe.command(away, obs_seq=state.seq)  # a policy answering the move: ignored
        return False

    poll_s = time.monotonic() + 15
    while not episode_started():
        assert time.monotonic() < poll_s, "no state 0 after the reset"
    state0 = probe.last_state
    assert np.max(np.abs(np.asarray(state0.position) - HOME)) < 0.03, "state 0 is at the reset pose"
    assert moving and [s.seq for s in moving] == list(range(moving[0].seq, moving[0].seq + len(moving)))
    assert moving[0].seq > before

    # A late answer to a state of the move arrives after state 0: dropped.
    for _ in range(10):
        probe.command(away, obs_seq=moving[-1].seq)
        probe.pump(40)
    probe.until(lambda: probe.counter("command.stale_ignored") >= 1, 5, "stale commands counted")
    assert probe.counter("command.resetting_ignored") >= 1
    assert np.max(np.abs(probe.position() - HOME)) < 0.03, "the arm stayed at the reset pose"
    drive(probe, away, 10)  # answers to this episode's states are applied


def test_an_engaged_estop_outlasts_a_reconnect(rig_factory) -> None:
    """The link going down and coming back returns the node to the e-stop it
    was in (the operator clears it, not the cable); a reset is refused under
    it; cleared, the arm follows commands again."""
    rig = rig_factory()
    probe = rig.probe
    target = HOME.copy()
    target[0] = 0.4
    probe.robot.estop(True)
    probe.until(lambda: probe.state_is("degraded", "e-stop"), 5, "e-stop in the heartbeat")
    inject(rig.control, "unplug 1.0")
    probe.until(lambda: probe.state_is("fault"), 10, "a fault heartbeat")
    probe.until(lambda: probe.counter("serial.reconnect") >= 1 and probe.state_is("degraded", "e-stop"), 20,
                "the e-stop again after the reconnect")
    ignored = probe.counter("command.estop_ignored")
    probe.until(lambda: probe.counter("command.estop_ignored") > ignored, 5, "commands ignored after the reconnect",
                each=lambda: probe.command(target))
    assert abs(probe.position()[0]) < 0.01
    info = probe.robot.info()
    assert info.extra["control_mode"] == "estop"
    with pytest.raises(Exception, match="e-stop engaged"):
        probe.robot.reset(retries=1)
    probe.robot.estop(False)
    probe.until(lambda: probe.state_is("ok"), 5, "e-stop cleared")
    drive(probe, target, 10)


def test_sigterm_stops_cleanly(rig_factory) -> None:
    rig = rig_factory()
    rig.node.send_signal(signal.SIGTERM)
    assert rig.node.wait(timeout=15) == 0
    rig.probe.until(lambda: rig.probe.state_is("stopped"), 5, "the last heartbeat")


def test_shutdown_holds_then_leaves_torque_as_configured(rig_factory, run_dir: Path) -> None:
    rig = rig_factory(node_args=("--torque-on-exit", "off"))
    probe = rig.probe
    target = HOME.copy()
    target[0] = 0.3
    drive(probe, target, 10)
    reply = probe.robot.shutdown("test", retries=1)
    assert reply.ok
    assert rig.node.wait(timeout=15) == 0
    # The node is gone; ask the arm itself: torque off (T:210 0), still where it was.
    port = open_port(str(run_dir / "arm"), protocol.BAUD)
    lines = LineBuffer()
    try:
        port.write(protocol.feedback_request())
        deadline, feedback = time.monotonic() + 5, None
        while feedback is None and time.monotonic() < deadline:
            for raw in lines.feed(port.read(4096)):
                feedback = protocol.parse_line(raw).feedback or feedback
            time.sleep(0.01)
    finally:
        port.close()
    assert feedback is not None and feedback.torque_switch == (0,) * 6
    assert abs(feedback.position[0] - 0.3) < 0.02


def test_a_missing_port_is_one_clear_line(procs: Procs, run_dir: Path) -> None:
    proc = procs.hil("node", "hw", "--port", "/nonexistent/ttyUSB0", "--run-dir", str(run_dir))
    _, err = proc.communicate(timeout=30)
    text = err.decode()
    assert proc.returncode == 2
    assert "Traceback" not in text
    assert "cannot open serial port '/nonexistent/ttyUSB0'" in text
    assert len(text.strip().splitlines()) == 1
