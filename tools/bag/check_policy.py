"""``hil bag check-policy``: does this policy still answer a recorded run the way it did?

The recorded states and goals are fed to the policy in recorded order, with
no timing involved, and each answer is compared with the recorded command
for the same state (matched by ``obs_seq``). This mirrors the policy node
(policy_node/node.py) step for step, so a deterministic policy reproduces
its own run exactly:

- messages are taken in the order their senders stamped them (sent_ns);
- a command answers the newest state with ``seq == obs_seq`` before it;
- the goal is the newest one sent before the command;
- the policy is reset when the state seq goes back (a robot reset), and a
  re-published state answered again is not fed twice;
- watchdog holds (``hold=True``) are the node's output, not the policy's:
  they are skipped and counted; but a hold that is the first answer to a
  new state (the watchdog replaced an answer over budget or not finite)
  came after the node asked the policy, so the policy is asked too (what it
  remembers moves on) and its answer is not checked;
- a vision policy gets each state's camera frames as the node paired them
  (tools/bag/frames.RecordedFrames: the frame stamped at or before the
  state, not older than the policy accepts);
- scripted policies get the control period and the speed limits the
  recorded robot reported in its ``info`` (the real arm's node limits speed
  below the servo's).

A bag that starts in the middle of an episode (its first answered state has
seq > 0: the recorder started after the nodes) does not hold what the
policy remembered from before it, e.g. the position a policy holds while it
has no goal, latched at the episode's first state. The first recorded
command then primes the policy instead of being checked: the policy is asked
once with the measured joints at that command's targets (a holding policy
latches exactly them) and the answer is discarded; checking starts at the
next command and a note says so.

A goal sent shortly before a state (GOAL_LATENESS_NS) or between a state and
its command may or may not have reached the policy in time (goals and states
come through different sockets); such a step is also checked against the
goal before it, and passes if either matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError, Message

from bus import registry
from bus.errors import Failed
from bus.topics import GOAL, JOINT_COMMAND, JOINT_STATE
from policy_node.policy.base import CameraFrame, Observation, Policy
from policy_node.policy.load import load_policy
from roarm.joints import NAMES
from schemas.messages_pb2 import JointState
from tools.bag.compat import ensure_compatible
from policy_node.policy.pixels import camera_specs
from tools.bag.frames import RecordedFrames
from tools.bag.node_info import PREFIX, from_metadata
from tools.bag.period import control_period
from tools.bag.reader import BagMessage, BagReader
from tools.bag.snapshot import Snapshot

DEFAULT_ATOL = 1e-6
# Goals and states travel on different sockets with no order between them: a
# goal sent up to this long before a state may still reach the policy after it.
GOAL_LATENESS_NS = 250_000_000


class CheckError(Failed, RuntimeError):
    """The bag cannot be checked (no states or commands, unloadable policy)."""


@dataclass(frozen=True)
class Divergence:
    step: int
    obs_seq: int
    time_s: float
    joint: str
    recorded: float
    replayed: float

    @property
    def error(self) -> float:
        return abs(self.recorded - self.replayed)


@dataclass
class CheckResult:
    policy: str
    model_hash: str
    atol: float
    dt: float
    steps: int = 0
    holds_skipped: int = 0
    holds_replayed: int = 0  # holds that replaced the policy's answer: the policy was asked, its answer not checked
    duplicates: int = 0
    unmatched: int = 0
    late_goal: int = 0
    resets: int = 0
    no_frame: int = 0  # commands whose state had no fresh camera frame in the bag
    primed: int = 0  # commands that primed a policy at a bag's mid-episode start (not checked)
    diverging_steps: int = 0
    max_error: np.ndarray = field(default_factory=lambda: np.zeros(len(NAMES)))
    first: Divergence | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.steps > 0 and self.first is None


@dataclass
class _Timed:
    message: Message
    # The sender's stamp (envelope sent_ns, the MCAP publish_time).
    sent_ns: int


def _in_send_order(reader: BagReader) -> list[tuple[str, _Timed]]:
    """States, commands and goals ordered by their senders' stamps.

    The recorder writes in the order it drains its sockets, one role after
    another; the senders' monotonic stamps (one host, docs/design.md) give the
    order things really happened in. Ties keep file order.
    """
    found = [(m.publish_time, i, m.topic, _decode(reader, m)) for i, m in enumerate(reader.messages())
             if m.topic in (JOINT_STATE, JOINT_COMMAND, GOAL)]
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return [(topic, _Timed(message, sent)) for sent, _i, topic, message in found]


def _decode(reader: BagReader, message: BagMessage) -> Message:
    """With the current classes (the bag passed the compatibility check): the policy API wants them."""
    cls = registry.lookup(reader.schemas[message.channel.schema_id].name)
    assert cls is not None  # ensured by ensure_compatible
    try:
        return cls.FromString(message.data)
    except DecodeError as exc:
        raise CheckError(f"a {message.topic} message (seq {message.sequence}) of {reader.path} does not parse: "
                         f"{exc}") from None


def _answer(policy: Policy, state: Message, goals: list[_Timed | None], recorded: np.ndarray,
            atol: float, images: dict[str, CameraFrame] | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(error, answer, which goal): the policy asked with each candidate goal in turn
    until one matches the recorded command; the closest answer when none does."""
    attempts: list[tuple[float, np.ndarray, np.ndarray, int]] = []
    snapshot = Snapshot(policy) if len(goals) > 1 else None
    for index, goal in enumerate(goals):
        if index and snapshot is not None:
            snapshot.restore()  # the second try starts where the first did
        obs = Observation.from_state(state, goal.message if goal else None, images=images)  # type: ignore[arg-type]
        replayed = np.asarray(policy.act(obs), dtype=float)
        error = _error(replayed, recorded)
        attempts.append((float(np.max(error)), error, replayed, index))
        if np.all(error <= atol):
            break
    _, error, replayed, index = min(attempts, key=lambda attempt: attempt[0])
    return error, replayed, index


def _prime(policy: Policy, state: Message, goal: _Timed | None, recorded: np.ndarray,
           images: dict[str, CameraFrame] | None = None) -> None:
    """Ask the policy once as if the joints were at the recorded targets, and forget the answer."""
    primer = type(state)()
    primer.CopyFrom(state)
    if recorded.shape == (len(primer.position),):
        primer.position[:] = recorded.tolist()
        del primer.tcp[:]  # the measured TCP was for the real joints: forward kinematics of these instead
    _ask(policy, primer, goal, images)


def _reset_on_new_episode(policy: Policy, result: CheckResult, last_seq: int | None, seq: int) -> None:
    """The robot was reset (its seq went back, or restarted at 0): so is the policy, as the node resets it."""
    if last_seq is not None and (seq < last_seq or seq == 0):
        policy.reset()
        result.resets += 1


def _ask(policy: Policy, state: Message, goal: _Timed | None, images: dict[str, CameraFrame] | None) -> None:
    """Ask the policy about ``state`` and forget the answer (what it remembers moves on)."""
    policy.act(Observation.from_state(state, goal.message if goal else None, images=images))  # type: ignore[arg-type]


def _goal_key(goal: Message) -> bytes:
    """What a goal asks for, without its stamp and seq: a re-sent goal is the same goal."""
    copy = type(goal)()
    copy.CopyFrom(goal)
    copy.ClearField("stamp_ns")
    copy.ClearField("seq")
    return copy.SerializeToString(deterministic=True)


def _error(replayed: np.ndarray, recorded: np.ndarray) -> np.ndarray:
    """Per-joint |difference|; NaN or a wrong shape counts as infinitely wrong."""
    if replayed.shape != recorded.shape or recorded.shape != (len(NAMES),):
        return np.full(len(NAMES), np.inf)
    return np.nan_to_num(np.abs(replayed - recorded), nan=np.inf)


def check_policy(bag: Path, source: str, atol: float = DEFAULT_ATOL, dt: float | None = None) -> CheckResult:
    """Feed the bag to the policy named by ``source`` (a .onnx path or scripted:NAME) and compare."""

    reader = BagReader(bag).scan()
    channels = [cid for cid, c in reader.channels.items() if c.topic in (JOINT_STATE, JOINT_COMMAND, GOAL)]
    report = ensure_compatible(reader, channels)
    topics = {reader.channels[cid].topic for cid in channels}
    if not {JOINT_STATE, JOINT_COMMAND} <= topics:
        raise CheckError(f"{bag} needs robot/joint_state and robot/joint_command to check a policy "
                         f"(it has {', '.join(sorted(topics)) or 'neither'})")
    period = dt if dt is not None else control_period(reader)
    robot = from_metadata(reader.metadata.get(PREFIX + "robot", {}))
    speed = tuple(robot.max_velocity) or None  # the recorded robot's speed limits, as the node used them
    try:
        policy = load_policy(source, dt=period, max_velocity=speed) if period > 0 else \
            load_policy(source, max_velocity=speed)
    except (ValueError, OSError) as exc:
        raise CheckError(f"cannot load policy {source}: {exc}") from None
    result = CheckResult(policy.name, policy.model_hash, atol, period, notes=list(report.notes))
    if period <= 0:
        result.notes.append("the bag tells no control period: the policy's default is used")
    recorded = reader.metadata.get(PREFIX + "policy", {})
    if recorded and (recorded.get("backend", "") != policy.name or recorded.get("model_hash", "") != policy.model_hash):
        result.notes.append(f"the bag was made by {recorded.get('backend', '?')} "
                            f"(sha256 {recorded.get('model_hash', '') or '-'}); checking {policy.name} "
                            f"(sha256 {policy.model_hash or '-'})")

    needs = {need.camera: need.max_age_s for need in policy.requirements.cameras}
    frames = RecordedFrames(reader, needs) if needs else None
    if frames is not None:
        frames.specs = camera_specs(from_metadata(reader.metadata.get(PREFIX + "robot", {})).extra.get("cameras", ""))
        if frames.count == 0:
            raise CheckError(f"{policy.name} looks through {', '.join(needs)}: {bag} has no frame of "
                             f"{'that camera' if len(needs) == 1 else 'those cameras'} (was it recorded with "
                             "--image-topics leaving it out?)")
        if frames.jpeg_from_raw:
            result.notes.append("the bag keeps the camera frames as JPEG (the policy saw them raw): a vision "
                                "policy may answer slightly differently; record with --raw-images for an exact "
                                "check")

    states: dict[int, _Timed] = {}
    goals: list[_Timed] = []
    last_seq: int | None = None
    last_key: tuple[int, bytes] | None = None
    top_seq = -1
    timeline = _in_send_order(reader)
    first_ns = timeline[0][1].sent_ns if timeline else 0
    for topic, item in timeline:
        if topic == GOAL:
            if not goals or _goal_key(goals[-1].message) != _goal_key(item.message):  # runners re-send goals
                goals = [*goals[-1:], item]  # the two newest are all a step needs
            continue
        if topic == JOINT_STATE:
            seq = int(item.message.seq)  # type: ignore[attr-defined]
            if seq < top_seq:
                states.clear()  # a new episode: older seqs belong to the last one
            top_seq = seq
            states[seq] = item
            continue
        command = item.message
        hold = bool(command.hold)  # type: ignore[attr-defined]
        state = states.get(int(command.obs_seq))  # type: ignore[attr-defined]
        if state is None:
            if hold:
                result.holds_skipped += 1
            else:
                result.unmatched += 1
            continue
        seq = int(state.message.seq)  # type: ignore[attr-defined]
        key = (seq, np.asarray(state.message.position, dtype=float).tobytes())  # type: ignore[attr-defined]
        if key == last_key:
            if hold:
                result.holds_skipped += 1  # a stale-state hold: no new state came, the policy was not asked
            else:
                result.duplicates += 1  # the node re-sends its answer to a re-published state
            continue
        newest = goals[-1] if goals else None
        recorded = np.asarray(command.position, dtype=float)  # type: ignore[attr-defined]
        images = _images(frames, state.message) if frames is not None else None  # type: ignore[arg-type]
        if hold:
            result.holds_skipped += 1
            if (frames is not None and images is None) or (last_seq is None and seq > 0):
                continue  # held for want of a frame (the policy was not asked), or mid-episode: the next answer primes
            # The first answer to a new state is a hold: the node asked the policy and its watchdog
            # replaced the answer (over budget, not finite). The policy moved on all the same (its last
            # action, the target it steps from): ask it too, and check from the next state on.
            _reset_on_new_episode(policy, result, last_seq, seq)
            last_seq, last_key = seq, key
            _ask(policy, state.message, newest, images)
            result.holds_replayed += 1
            continue
        if frames is not None and images is None:
            result.no_frame += 1  # the live node had no fresh frame either: it held
            _reset_on_new_episode(policy, result, last_seq, seq)  # still a new episode
            if last_seq is not None or seq == 0:  # else the next command with a frame primes the policy
                last_seq, last_key = seq, key
            continue
        if last_seq is None and seq > 0:
            _prime(policy, state.message, newest, recorded, images)
            result.primed += 1
            result.notes.append(f"the bag starts mid-episode (first answered state {seq}): its first command "
                                "primed the policy (what it held before the bag began) and is not checked")
            last_seq, last_key = seq, key
            continue
        _reset_on_new_episode(policy, result, last_seq, seq)
        last_seq, last_key = seq, key

        candidates = [newest]
        if newest is not None and newest.sent_ns >= state.sent_ns - GOAL_LATENESS_NS:
            candidates.append(goals[-2] if len(goals) == 2 else None)  # the goal before it, maybe none
        error, replayed, used = _answer(policy, state.message, candidates, recorded, atol, images)
        result.late_goal += used  # 1: the policy still had the goal before the newest
        result.steps += 1
        result.max_error = np.maximum(result.max_error, error)
        if np.any(error > atol):
            result.diverging_steps += 1
            if result.first is None:
                j = int(np.argmax(error))
                result.first = Divergence(result.steps - 1, seq, (item.sent_ns - first_ns) / 1e9,
                                          NAMES[j] if j < len(NAMES) else str(j), float(recorded[j]),
                                          float(replayed[j]))
    if result.steps == 0:
        raise CheckError(f"no recorded policy command in {bag} matched a recorded state "
                         f"({result.holds_skipped} holds, {result.unmatched} unmatched)")
    return result


def _images(frames: RecordedFrames, state: JointState) -> dict[str, CameraFrame] | None:
    """The frames the live node paired with ``state``, as the policy saw them."""
    paired = frames.for_state(state)
    if paired is None:
        return None
    return {camera: CameraFrame(camera, pixels, frame.stamp_ns, frames.steps.get(frame.stamp_ns),
                                frames.intrinsics(camera, pixels), camera, frames.specs.get(camera))
            for camera, (frame, pixels) in paired.items()}


def format_result(result: CheckResult, bag: Path) -> str:
    lines = [
        f"check-policy: {result.policy} against {bag} (atol {result.atol:g}, dt {result.dt:g} s)",
        f"  steps checked: {result.steps} (holds skipped: {result.holds_skipped}"
        + (f", {result.holds_replayed} of them asked of the policy" if result.holds_replayed else "")
        + ", re-sent answers: "
        f"{result.duplicates}, commands without their state: {result.unmatched}, resets: {result.resets}, "
        f"answered before a new goal arrived: {result.late_goal}"
        + (f", states without a fresh frame: {result.no_frame}" if result.no_frame else "") + ")",
        "  max |error| per joint (rad): "
        + ", ".join(f"{n} {e:.3g}" for n, e in zip(NAMES, result.max_error, strict=False)),
    ]
    lines.extend(f"  note: {note}" for note in result.notes)
    if result.first is None:
        lines.append("  PASS: every checked command matches within atol")
    else:
        d = result.first
        lines.append(f"  FAIL: first divergence at step {d.step} (obs_seq {d.obs_seq}, t = {d.time_s:.3f} s): "
                     f"{d.joint} recorded {d.recorded:.6f}, policy now {d.replayed:.6f} "
                     f"(|error| {d.error:.3g} > {result.atol:g}); {result.diverging_steps} of {result.steps} "
                     "steps diverge")
        if result.primed and d.step == 0:
            lines.append("  hint: it diverges from the first step after the primer: a policy that remembers more "
                         "than the position it holds (the target it steps from, a recurrent state) cannot be "
                         "checked on a bag that starts mid-episode; record the run from its start (hil run does)")
    return "\n".join(lines)
