"""The shipped vision example end to end on MuJoCo: scenarios/see_and_reach.yaml passes, twice the
same for a seed (every state, command and frame; reach.yaml without a camera too), its bag decodes with mcap's own reader (frames in the order of the states, goals
that never say where the cube is), and check-policy replays the recorded frames exactly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader

from tests.conftest import HIL, ROOT
from tests.test_bag_record import classes_from_schema
from tests.test_sim_camera import gl_or_skip

SCENARIO = ROOT / "scenarios" / "see_and_reach.yaml"


def run(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HIL, "run", str(SCENARIO), "--out", str(out)], capture_output=True, text=True,
                          timeout=300)


def decoded(bag: Path) -> list[tuple[str, object]]:
    out = []
    with open(bag, "rb") as handle:
        classes: dict[int, dict[str, type]] = {}
        for schema, channel, message in make_reader(handle).iter_messages(log_time_order=False):
            if schema.id not in classes:
                classes[schema.id] = classes_from_schema(schema.data)
            out.append((channel.topic, classes[schema.id][schema.name].FromString(message.data)))
    return out


def streams(messages: list[tuple[str, object]]) -> dict[str, list[tuple[object, ...]]]:
    """Everything of a run that a seed decides, in order: every state, command and frame with all their
    fields but the wall-clock ones (stamps; a frame's timestamp is its state's stamp)."""
    out: dict[str, list[tuple[object, ...]]] = {"state": [], "command": [], "frame": []}
    for topic, m in messages:
        if topic == "robot/joint_state":
            out["state"].append((m.seq, m.sim_time, tuple(m.names), tuple(m.position), tuple(m.velocity),
                                 tuple(m.effort), tuple(m.tcp), m.randomization_hash, m.trusted))
        elif topic == "robot/joint_command":
            out["command"].append((m.seq, m.obs_seq, tuple(m.names), tuple(m.position), tuple(m.velocity), m.hold))
        elif topic == "camera/front/image":
            out["frame"].append((m.frame_id, m.width, m.height, m.encoding, m.step, bytes(m.data)))  # step: row stride
    return out


@pytest.mark.slow
def test_see_and_reach_passes_the_same_way_twice_and_replays_exactly(tmp_path: Path) -> None:
    gl_or_skip()
    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    for done in (first, second):
        assert done.returncode == 0, done.stdout + done.stderr
        assert "PASS" in done.stdout and done.stdout.count("<= 15 mm") == 3
    a, b = decoded(tmp_path / "a" / "run.mcap"), decoded(tmp_path / "b" / "run.mcap")
    # Bit for bit for the same seed, the whole run: every state, command and frame of every episode,
    # in order (an episode ends at a step the runner granted, never when it happened to react).
    goals = [json.loads((tmp_path / d / "report.json").read_text())["goals"] for d in ("a", "b")]
    assert [(g["error"], g["time_s"]) for g in goals[0]] == [(g["error"], g["time_s"]) for g in goals[1]]
    one, two = streams(a), streams(b)
    # (less a policy's stale-state hold while the robot waited between episodes: wall-clock timing the
    # robot ignores, see answers() below; the commands keep their bag sequence number out of it)
    for streams_ in (one, two):
        streams_["command"] = answers(streams_["command"])
    for kind in ("state", "command", "frame"):
        assert len(one[kind]) == len(two[kind]), kind
        first = next((i for i, (x, y) in enumerate(zip(one[kind], two[kind])) if x != y), None)
        assert first is None, f"the runs' {kind}s differ first at #{first}: {one[kind][first]} != {two[kind][first]}"
    seqs = [s[0] for s in one["state"]]
    starts = [i for i, seq in enumerate(seqs) if seq == 0]
    assert len(starts) == 3 and seqs == [k for start, end in zip(starts, starts[1:] + [len(seqs)])
                                         for k in range(end - start)]  # 3 episodes, no step skipped or repeated
    # Each state answered once, by the policy, in order (the last state of each episode too).
    assert [c[0] for c in one["command"]] == seqs and not any(c[-1] for c in one["command"])
    assert len(one["frame"]) == len([k for k in seqs if k % 5 == 0])  # a frame every 5 steps, none more

    # Goals name a colour, never a place.
    goals = [m for t, m in a if t == "task/goal"]
    assert goals and all(g.WhichOneof("target") == "visual" for g in goals)
    assert {g.visual.colour for g in goals} == {"red", "green", "blue"}
    # Frames in the order of the states: frame k carries state k's stamp, every 5th step, raw 320x240.
    states = [(t, m) for t, m in a if t in ("robot/joint_state", "camera/front/image")]
    last_state = None
    paired = 0
    pending = None
    for topic, message in states:
        if topic == "camera/front/image":
            assert (message.width, message.height, message.encoding) == (320, 240, "rgb8")
            pending = message.timestamp.seconds * 1_000_000_000 + message.timestamp.nanos
            continue
        if pending is not None and pending == message.stamp_ns:
            assert message.seq % 5 == 0
            paired += 1
            pending = None
        last_state = message
    assert last_state is not None and paired >= 20
    pixels = np.frombuffer(next(m for t, m in a if t == "camera/front/image").data, np.uint8)
    assert pixels.size == 320 * 240 * 3 and pixels.std() > 10

    check = subprocess.run([HIL, "bag", "check-policy", str(tmp_path / "a" / "run.mcap"), "--model",
                            "scripted:see_reach"], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "PASS: every checked command matches within atol" in check.stdout
    page = (tmp_path / "a" / "report.html").read_text()
    assert 'id="cameras"' in page


@pytest.mark.slow
def test_a_lockstep_run_without_a_camera_is_the_same_twice_too(tmp_path: Path) -> None:
    """reach.yaml (ONNX policy, domain randomization, four episodes): every state, and each state's answer, equal.

    As in see_and_reach.yaml, the policy gets a budget and deadline and the robot a deadline for each
    answer that timing never decides: a watchdog hold on a loaded machine is the real-time safety net,
    not part of the policy's answer."""
    text = (ROOT / "scenarios" / "reach.yaml").read_text()
    text = text.replace("  path: ../policies/reach.onnx\n", f"  path: {ROOT / 'policies' / 'reach.onnx'}\n"
                        '  args: ["--budget-us", "1000000", "--deadline-ms", "1000"]\n')
    text = text.replace("  mode: lockstep\n", '  mode: lockstep\n  options: {mujoco: ["--deadline-ms", "1000"]}\n')
    assert "--budget-us" in text and "options:" in text
    scenario = tmp_path / "reach.yaml"
    scenario.write_text(text)
    runs = []
    for name in ("a", "b"):
        done = subprocess.run([HIL, "run", str(scenario), "--out", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        runs.append(streams(decoded(tmp_path / name / "run.mcap")))
    one, two = runs
    assert one["state"] and one["command"] and not one["frame"]
    assert one["state"] == two["state"]
    # Each state's answer is the same. A policy whose robot waited at the step limit longer than its
    # watchdog deadline (the runner between episodes, on a loaded machine) adds a stale-state hold for
    # the state it last answered: wall-clock timing, which the robot ignores (the first answer stands).
    assert answers(one["command"]) == answers(two["command"])
    assert [c[0] for c in answers(one["command"])] == [s[0] for s in one["state"]]  # each state answered once, in order
    assert len([s for s in one["state"] if s[0] == 0]) == 4


def answers(commands: list[tuple]) -> list[tuple]:
    """The commands without their bag sequence number, less stale-state holds repeating the previous state."""
    kept: list[tuple] = []
    for command in commands:
        if kept and command[-1] and command[1] == kept[-1][0]:
            continue
        kept.append(command[1:])
    return kept


def test_a_visual_goal_needs_its_object_in_the_scene(tmp_path: Path) -> None:
    from scenarios.checker import ScenarioError
    from scenarios.schema import load

    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nrobot: {target: mujoco}\npolicy: {scripted: see_reach}\ngoals:\n"
                    "  - {id: a, visual: red}\n  - {id: b, visual: pink}\n  - {id: c, visual: red, tcp: [0.3, 0, 0.2]}\n")
    with pytest.raises(ScenarioError) as caught:
        load(path)
    text = str(caught.value)
    assert f"{path}:5: goals[0].visual: target_red is not in the scene when this goal starts" in text
    assert f"{path}:6: goals[1].visual:" in text and "red, green, blue" in text
    assert "give one target: tcp, joints or visual" in text
    ok = tmp_path / "ok.yaml"
    ok.write_text("name: ok\nrobot: {target: mujoco}\npolicy: {scripted: see_reach}\n"
                  "scene: {target_red: [0.25, 0.1, 0.015]}\ngoals:\n  - {id: a, visual: red}\n"
                  "  - {id: b, visual: red, scene: {target_red: [0.3, -0.1, 0.015]}}\n")
    goals = load(ok).goals
    assert [(g.visual, g.target, g.tolerance) for g in goals] == [("red", (0.25, 0.1, 0.015), 0.015),
                                                                  ("red", (0.3, -0.1, 0.015), 0.015)]
