"""One run of one scenario: start the nodes, drive the goals, stop everything, judge.

Read ``Run.execute`` top to bottom:

1. start-up: each node (recorder, robot, policy) in its own process group,
   all at once; wait until each answers ping, its heartbeats reach the
   runner and the recorder has heard every node (nothing of the run is
   lost to a subscription still joining); compare the robot's and the
   policy's info (joint names, limits, period).
2. the run: publish the first goal, reset the robot (seed, pose,
   randomization), then loop: judge each new state against the active goal,
   move to the next goal when it is reached or timed out, fire kill actions,
   watch processes and heartbeats, until every goal is judged.
   A lockstep robot with a step limit (the sim node) is granted steps in
   chunks of LIMIT_CHUNK, at most two chunks past the last state judged; an
   episode that must end (a verdict before a goal with ``reset``, or the
   run's end) ends at the limit granted then, a step no wall-clock timing
   decides. The runner waits for that state and the policy's answer to it,
   publishes the next goal, waits until the policy says it holds it, and
   only then resets: every state, command and frame of a lockstep run is the
   same for a seed.
3. stop: ask each node to shut down, then SIGTERM, then SIGKILL its group.
4. judge: assertions over what was observed; report.json and junit.xml.

Exit codes: 0 pass, 1 fail (an assertion, a crash, a timeout), 2 broken
scenario or set-up, 130 interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import json_format

from bus.client import NodeClient, WrongReply
from bus.endpoints import ENDPOINTS_FILE, Endpoints
from bus.errors import EXIT_BROKEN, EXIT_FAIL, EXIT_PASS, Failed, HilError, Interrupted
from bus.node import Node
from bus.processes import Child, NotReady, Processes
from bus.security import SecurityConfig
from bus.service import ServiceError, ServiceUnavailable
from policy_node.policy.load import load_description
from roarm.robot_client import RobotClient, hide, place
from scenarios.assertions import NodeOutcome, Observed, judge
from scenarios.compat import check
from scenarios.goals import GoalPublisher, GoalSequence
from scenarios.launch import LaunchError, RunSettings, control_period, node_launches
from scenarios.monitor import Monitor
from scenarios.progress import Status
from scenarios.provenance import provenance
from scenarios.remote import RemoteRobotError, bench_endpoints, clock_offset, identify, wait_for_robot
from scenarios.report import Report
from scenarios.run_page import write_run_page
from scenarios.schema import GoalSpec, PolicyConfig, Scenario
from scenarios.thumbnails import ThumbnailTaker
from schemas import messages_pb2, services_pb2

# Before the reset, the first goal is sent for this long so the policy holds
# it before the first state arrives.
GOAL_LEAD_S = 0.1
# Robot counters of commands that did not arrive in time (sim lockstep, hw).
DEADLINE_COUNTERS = ("deadline_miss", "deadline_hold")
# The runner's loop period: it takes every message queued meanwhile.
BATCH_S = 0.005
# The goal clock starts once the measured joints are this close (rad) to the
# initial pose after a reset.
POSE_TOLERANCE = 0.05
# Lockstep with a step limit: steps granted at a time (the robot runs up to two
# chunks past the last state judged; an episode runs on 1-2 chunks past its verdict).
LIMIT_CHUNK = 25
# How long to wait for the policy's answer to an episode's last state, and for a
# policy that says which goal it holds (info extra ``goal_seq``) to hold a new one.
END_WAIT_S = 2.0
GOAL_WAIT_S = 2.0


class SetupFailed(HilError, RuntimeError):
    """The run could not start as described (exit 2)."""


class RunAborted(Failed, RuntimeError):
    """The run started but could not finish: a node died or went silent, or it took too long (exit 1)."""


class RunInterrupted(Interrupted, RuntimeError):
    """Ctrl-C or SIGTERM (exit 130)."""


@dataclass(frozen=True)
class RunOptions:
    """Command-line overrides of the scenario; None keeps the scenario's value."""

    target: str | None = None
    port: str | None = None
    seed: int | None = None
    out: Path | None = None
    record: bool | None = None
    progress: bool = True
    # -- remote robot (scenarios/remote.py) --
    endpoints_file: Path | None = None  # the bench's endpoints description (else robot.endpoints, else ipc)
    security: SecurityConfig | None = None  # --keys / --insecure: replaces the description's "security"
    remote: bool = False  # the robot already runs at the endpoints' robot address (or robot.remote)
    # -- end remote robot --


def settings_for(scenario: Scenario, options: RunOptions, run_dir: Path) -> RunSettings:
    remote = options.remote or scenario.robot.remote
    # A remote robot's target is what it says it is (after ``info``); "remote" until then.
    target = options.target or ("remote" if remote else scenario.robot.target)
    seed = scenario.seed if options.seed is None else options.seed
    out = options.out or Path("runs") / f"{scenario.name}-{target}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    return RunSettings(
        target=target,
        mode="realtime" if target == "hw" else scenario.robot.mode,
        seed=seed,
        port=options.port or scenario.robot.port,
        record=scenario.record if options.record is None else options.record,
        run_dir=run_dir,
        out_dir=out.resolve(),
        remote=remote,
        dt=control_period(scenario),
    )


def run_scenario(scenario: Scenario, options: RunOptions) -> Report:
    """Run one scenario end to end; the report says how it went (never raises for a bad run)."""
    override = options.security
    endpoints = bench_endpoints(scenario, options.endpoints_file, lambda s: s if override is None else override)
    if endpoints is None and options.remote:
        raise RemoteRobotError("--remote needs the robot's address: give the bench's endpoints description with "
                               "--endpoints FILE (or robot.endpoints in the scenario)")
    run_dir = Path(tempfile.mkdtemp(prefix="hil-", dir="/tmp"))
    try:
        settings = settings_for(scenario, options, run_dir)
        settings.out_dir.mkdir(parents=True, exist_ok=True)
        return Run(scenario, settings, Status(options.progress), endpoints).execute()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


class Run:
    def __init__(self, scenario: Scenario, settings: RunSettings, status: Status,
                 endpoints: Endpoints | None = None) -> None:
        self.scenario = scenario
        self.settings = settings
        self.status = status
        # ipc sockets in the run folder, or the bench's tcp:// description
        # (with its keys); the nodes started read it from the run folder.
        self.endpoints = endpoints or Endpoints.ipc(settings.run_dir)
        self.endpoints.save(settings.run_dir / ENDPOINTS_FILE)
        self.report = Report(scenario.name, str(scenario.path), settings.target, settings.mode, settings.seed,
                             str(settings.out_dir))
        self.report.provenance = provenance(scenario.path, scenario.sha256, policy_file(scenario.policy), settings.seed)
        self.report.provenance["policy"] = scenario.policy.label
        self.node = Node("runner", "runner", self.endpoints, info=self._describe, announce=False)  # hil run prints its own
        self.monitor = Monitor(self.node, tracking_lag=_lag(scenario))
        # A few small frames of each camera for report.html (newest-only subscribers: never a backlog).
        self.thumbnails = ThumbnailTaker(self.node, [c.name for c in scenario.robot.cameras], self.monitor.trace)
        self.processes = Processes(log_dir=settings.out_dir)
        self.robot = RobotClient(self.node.ctx, self.endpoints["robot"].rep, "runner", timeout_s=1.0, retries=1,
                                 security=self.node.security)
        self.clients: dict[str, NodeClient] = {}
        self.goals = GoalSequence(scenario.goals)
        self.goal_publisher = GoalPublisher(self.node.publish)
        self.infos: dict[str, services_pb2.NodeInfo] = {}
        # A remote robot's counters before this run (it counted earlier runs too).
        self.robot_counters_before: dict[str, float] = {}
        self.ready_at = 0.0
        self.run_started = 0.0
        self.sim_time = 0.0  # simulated seconds since the first reset, over every episode
        self.episode_offset = 0.0
        self.settling = False
        self.settle_deadline = 0.0
        self.scene_objects: frozenset[str] = frozenset()  # what the robot's scene service can place
        self.limited = False  # the robot is lockstep and takes a step limit (module docstring)
        self.granted = 0  # the step limit granted this episode
        self.end_step: int | None = None  # the step this episode ends at (its verdict is in)
        self.end_seen_at = 0.0

    # -- the whole run -------------------------------------------------------------
    def execute(self) -> Report:
        self.node.install_signal_handlers()
        t0 = time.monotonic()
        timings = self.report.timings
        verdict_code = EXIT_PASS
        try:
            self.start_nodes()
            self.ready_at = time.monotonic()
            timings["startup_s"] = self.ready_at - t0
            self.drive()
        except (SetupFailed, NotReady, LaunchError, RemoteRobotError, RunAborted, RunInterrupted) as exc:
            self.report.error, verdict_code = str(exc), exc.exit_code  # 2, 2, 2, 2, 1, 130
        finally:
            run_end = time.monotonic()
            if self.run_started:
                timings["run_s"] = run_end - self.run_started
                timings["sim_time_s"] = self.sim_time
                timings["realtime_factor"] = self.sim_time / timings["run_s"] if timings["run_s"] > 0 else 0.0
            self.collect_infos()
            self.stop_nodes()
            timings["stop_s"] = time.monotonic() - run_end
            timings["total_s"] = time.monotonic() - t0
            self.node.close()
        self.judge(verdict_code)
        self.report.write(self.settings.out_dir)
        write_run_page(self.report.to_dict(), self.monitor.trace.finish(self.goals.results, self.scenario),
                       self.settings.out_dir)  # report.html (issue 16)
        return self.report

    # -- 1. start-up ---------------------------------------------------------------
    def start_nodes(self) -> None:
        for launch in node_launches(self.scenario, self.settings):
            self.processes.start(launch.name, launch.argv, role=launch.role, env=launch.env)
            self.clients[launch.role] = self.robot if launch.role == "robot" else NodeClient(
                self.node.ctx, self.endpoints[launch.role].rep, "runner", timeout_s=1.0, retries=1,
                security=self.node.security)
        started = ", ".join(f"{n.name} (pid {n.pid})" for n in self.processes.children)
        self.status.note(f"started {started}; logs in {self.settings.out_dir}")
        deadline = time.monotonic() + self.scenario.timeouts.startup_s
        if self.settings.remote:  # -- remote robot: connect, never start --
            self.clients["robot"] = self.robot
            self.status.note(f"remote robot at {self.endpoints['robot'].rep}: waiting for it to answer ping")
            try:
                wait_for_robot(self.robot, self.scenario.timeouts.startup_s, self._serve_while_waiting)
            except NotReady:
                self._check_interrupt()  # Ctrl-C while waiting is an interruption
                raise
        for node in self.processes.children:
            try:
                self.processes.wait_ready(node, self.clients[node.role].answers_ping,
                                          max(0.5, deadline - time.monotonic()), keep_going=self._serve_while_waiting)
            except NotReady:
                self._check_interrupt()  # Ctrl-C while waiting is an interruption, not a broken node
                raise
        self._wait_for_heartbeats(deadline)
        self._wait_for_recorder(deadline)
        for role in ("robot", "policy"):
            self.infos[role] = self._info(role)
        if self.settings.remote:  # the target is what the remote robot says it is
            target = identify(self.infos["robot"], None if self.settings.target == "remote" else self.settings.target)
            self.settings = replace(self.settings, target=target, mode=self.infos["robot"].mode or self.settings.mode)
            self.robot_counters_before = dict(self.infos["robot"].metrics)
            self.report.target, self.report.mode = target, self.settings.mode
        # A scenario without robot.dt runs at the policy's period (scenarios.launch.control_period): a
        # lockstep robot that can only come close to it (MuJoCo's 2 ms steps) is then a warning.
        fit = check(self.infos["robot"], self.infos["policy"],
                    None if self.settings.target == "hw" or self.settings.remote else self.settings.dt,
                    dt_from_policy=self.scenario.robot.dt is None)
        if not fit.ok:
            raise SetupFailed("the policy does not fit the robot: " + "; ".join(fit.errors))
        for warning in fit.warnings + self._unobserved_goals():
            self.status.note(f"warning: {warning}")
        robot = self.infos["robot"]
        self.limited = (robot.mode or self.settings.mode) == "lockstep" and "step_limit" in robot.extra
        self.scene_objects = frozenset(filter(None, robot.extra.get("scene_objects", "").split(",")))
        self.monitor.lower = _limits(robot.lower, self.monitor.lower)
        self.monitor.upper = _limits(robot.upper, self.monitor.upper)
        self.report.provenance.update(robot_backend=robot.backend, robot_model_hash=robot.model_hash,
                                      policy_backend=self.infos["policy"].backend,
                                      policy_model_hash=self.infos["policy"].model_hash)
        where = f"remote robot at {self.endpoints['robot'].rep}" if self.settings.remote else "robot"
        self.status.note(f"ready in {time.monotonic() - self.processes.children[0].started:.2f} s: "
                         f"{where} {robot.backend or self.settings.target} ({robot.mode or self.settings.mode}, "
                         f"dt {robot.dt:g} s), policy {self.infos['policy'].backend}")

    def _unobserved_goals(self) -> list[str]:
        """Goals of a kind the policy cannot observe (an ONNX reach policy given a joint goal), said before the run.

        The policy node reports what it observes in ``info.extra.goal_kinds``
        (``policy_node.policy.compat.goal_kinds_observed``); a node that does
        not say is not second-guessed.
        """
        said = self.infos["policy"].extra.get("goal_kinds")
        if said is None:
            return []
        observed = {k for k in said.split(",") if k}
        kinds = sorted({goal.observed_kind for goal in self.scenario.goals} - observed)
        return [f"the policy {self.infos['policy'].backend} cannot observe {kind} goals (it observes "
                f"{', '.join(sorted(observed)) or 'no goal'}): goals {', '.join(g.id for g in self.scenario.goals if g.observed_kind == kind)} "
                "will be judged, but the policy is not told them" for kind in kinds]

    def _wait_for_heartbeats(self, deadline: float) -> None:
        """A heartbeat from every node proves our subscriptions are live:
        a publisher drops what it sends before a subscriber has joined, and
        the robot's first state must not be lost that way."""
        roles = self._watched_roles()

        def missing() -> list[str]:
            self.monitor.discard_pending()
            return [role for role in roles if role not in self.monitor.health]

        self._wait_until_none(missing, deadline, "no heartbeat from {} reached the runner within {:g} s although "
                              "it answers ping")

    def _wait_for_recorder(self, deadline: float) -> None:
        """The recorder's subscriptions join as ours do, asynchronously (a
        connect that came before the peer bound retries later): wait until it
        has heard every other node, so the bag holds the run from state 0."""
        if "recorder" not in self.clients:
            return
        roles = set(self._watched_roles()) - {"recorder"}

        def missing() -> list[str]:
            return sorted(roles - set(self._info("recorder").extra.get("heard", "").split(",")))

        self._wait_until_none(missing, deadline, "the recorder heard nothing from {} within {:g} s: its bag would "
                              "miss the run's start")

    def _wait_until_none(self, missing: Callable[[], list[str]], deadline: float, failure: str) -> None:
        """Serve our services until ``missing()`` is empty; past ``deadline``
        SetupFailed with ``failure`` naming what is missing and the start-up timeout."""
        while True:
            self.node.spin(0)
            left = missing()
            if not left:
                return
            self._check_interrupt()
            if time.monotonic() > deadline:
                raise SetupFailed(failure.format(", ".join(left), self.scenario.timeouts.startup_s))
            time.sleep(0.01)

    def _watched_roles(self) -> list[str]:
        """Roles whose heartbeats must arrive: the nodes started, and a remote robot."""
        return [node.role for node in self.processes.children] + (["robot"] if self.settings.remote else [])

    def _serve_while_waiting(self) -> bool:
        """Between pings: answer our own services and notice a Ctrl-C."""
        self.node.spin(0)
        return self.node.running

    def _info(self, role: str) -> services_pb2.NodeInfo:
        try:
            info = self.clients[role].info(timeout_s=2.0, retries=2)
        except (ServiceUnavailable, ServiceError, WrongReply) as exc:
            raise SetupFailed(f"{role} did not describe itself (info): {exc}") from None
        if info.role and info.role != role:  # an external policy.command that answers for another role
            raise SetupFailed(f"the {role} node describes itself as role {info.role!r} (info.role): a node bound "
                              f"at the {role} endpoints must answer info with role {role!r}")
        return info

    # -- 2. the run ----------------------------------------------------------------
    def drive(self) -> None:
        scenario = self.scenario
        self.monitor.discard_pending()
        self._lead_first_goal()
        self._await_goal(0)
        reply = self._start_episode()
        self.report.provenance["randomization_hash"] = reply.randomization_hash
        self.report.figures["randomization"] = json_format.MessageToDict(reply.applied,
                                                                         preserving_proto_field_name=True)
        self.run_started = time.monotonic()
        self.report.timings["reset_s"] = self.run_started - self.ready_at
        actions = sorted(scenario.actions, key=lambda a: a.at_s)
        wall_deadline = time.monotonic() + scenario.wall_timeout_s(self.settings.mode)
        self.status.note(f"running {len(scenario.goals)} goal(s), seed {self.settings.seed}")
        while True:
            # Wake at most every BATCH_S and take what came meanwhile: on a
            # busy machine a judge woken by every state would slow the very
            # loop it measures (the nodes' messages queue; nothing is lost).
            self.node.spin(0)
            time.sleep(BATCH_S)
            self._check_interrupt()
            self.thumbnails.poll(self.sim_time)
            for state, position in self.monitor.poll():
                self.sim_time = self.episode_offset + state.sim_time
                seq = int(state.seq)
                if self.end_step is None:
                    if self.settling:
                        if np.max(np.abs(position - self.scenario.robot.initial_pose)) > POSE_TOLERANCE:
                            self._grant(seq)
                            continue  # the real arm is still moving to the initial pose
                        self.settling = False
                        self.monitor.tracking = True
                        self.goals.start(state.sim_time)
                    self.monitor.trace.state(self.sim_time, state, position, self.goals)  # for report.html
                    if self.goals.observe(state, position):
                        resets = self.goals.current is not None and self.goals.current.reset
                        if self.limited and resets:
                            self._goal_finished(send=False)  # sent once the episode is over
                            self._end_at(seq)
                        else:
                            self._goal_finished()
                            if resets:
                                self._start_episode()
                                break  # what is left of this batch belongs to the old episode
                    if self.limited and self.end_step is None:
                        if self.goals.done and not actions and self.sim_time >= scenario.duration_s:
                            self._end_at(seq)
                        else:
                            self._grant(seq)
                else:  # the steps the episode runs past its verdict, to the step it ends at
                    self.monitor.trace.state(self.sim_time, state, position, self.goals, judged=False)
                while actions and self.sim_time >= actions[0].at_s:
                    self._kill(actions.pop(0).node, state.sim_time)
            if self.end_step is not None:
                if self._episode_over():
                    if self.goals.done:
                        break
                    self.goal_publisher.send(self.goals.current, self.goals.index)
                    self._await_goal(self.goals.index)
                    self._start_episode()
            elif not self.limited and self.goals.done and not actions and self.sim_time >= scenario.duration_s:
                break
            now = time.monotonic()
            self.goal_publisher.resend_if_due(now)
            self._check_health(now, wall_deadline)
            self._show_progress(now)
        self.status.done()

    def _start_episode(self) -> services_pb2.ResetReply:
        """Reset the robot to the initial pose; goals are timed from when it is there.

        A simulator is there at once (state 0); the real arm moves there
        slowly and publishes its state 0 only at the pose. The monitor passes
        on no state before that state 0, so the move is not charged to the
        goal and commands planned before it are never judged.
        """
        self.episode_offset = self.sim_time
        self.end_step = None
        if self.limited:  # the robot waits at its last step (>= this) until the reset
            self.granted = 2 * LIMIT_CHUNK
            self._limit(self.granted)
        if self.settings.remote:  # its clock against ours, for the loop latency (scenarios/remote.py)
            offset = clock_offset(self.robot)
            self.monitor.clock_offset_ns = offset.offset_ns
            self.report.figures["remote_clock"] = offset.as_dict()
        reply = self._reset(self._scene_for(self.goals.current, first=not self.run_started))
        # The robot stamps the reply's state at the reset (on its monotonic
        # clock, ours unless it is remote): anything stamped earlier is the old episode.
        self.monitor.new_episode(reply.state.stamp_ns or (0 if self.settings.remote else time.monotonic_ns()))
        self.settling = True
        self.settle_deadline = time.monotonic() + self.scenario.timeouts.startup_s
        return reply

    def _grant(self, seq: int) -> None:
        """State ``seq`` is judged (no verdict): let the robot run up to two chunks past it."""
        if not self.limited:
            return
        want = max(2 * LIMIT_CHUNK, (seq // LIMIT_CHUNK + 2) * LIMIT_CHUNK)
        if want > self.granted:
            self.granted = want
            self._limit(want)

    def _end_at(self, seq: int) -> None:
        """The episode ends at the limit granted once every state before ``seq`` was judged (a function
        of ``seq`` alone: the same step in every run, whichever batch the states came in)."""
        self.end_step = max(2 * LIMIT_CHUNK, ((seq - 1) // LIMIT_CHUNK + 2) * LIMIT_CHUNK)
        self.end_seen_at = 0.0
        if self.end_step > self.granted:  # (states were lost on the way: grant what they would have)
            self.granted = self.end_step
            self._limit(self.end_step)

    def _episode_over(self) -> bool:
        """The robot is at the episode's last step and the policy answered it (or never will)."""
        state = self.monitor.state
        if self.end_step is None or state is None or int(state.seq) < self.end_step:
            return False
        if self.monitor.newest_answer >= self.end_step:
            return True
        if not self.end_seen_at:
            self.end_seen_at = time.monotonic()
        return time.monotonic() - self.end_seen_at > END_WAIT_S

    def _limit(self, last_step: int) -> None:
        try:
            self.robot.limit(last_step, timeout_s=5.0, retries=1)
        except (ServiceUnavailable, ServiceError, WrongReply) as exc:
            raise SetupFailed(f"the robot refused its step limit: {exc}") from None

    def _await_goal(self, seq: int) -> None:
        """Until the policy holds goal ``seq`` (it says so in info ``goal_seq``), so that it answers the
        next episode's state 0 with it; a policy that does not say was given GOAL_LEAD_S already."""
        client = self.clients.get("policy")
        if client is None or self.goals.current is None:
            return
        deadline = time.monotonic() + GOAL_WAIT_S
        while True:
            try:
                info = client.info(timeout_s=1.0, retries=1)
            except (ServiceUnavailable, ServiceError, WrongReply):
                return  # judged as it goes: a dead policy shows in the run
            if "goal_seq" not in info.extra or info.extra["goal_seq"] == str(seq):
                return
            if time.monotonic() > deadline:
                self.status.note(f"warning: the policy did not take goal {self.goals.current.id} within "
                                 f"{GOAL_WAIT_S:g} s")
                return
            self.goal_publisher.resend_if_due()
            self.node.spin(2)
            self._check_interrupt()

    def _lead_first_goal(self) -> None:
        if self.goals.current is None:
            return
        until = time.monotonic() + GOAL_LEAD_S
        while time.monotonic() < until:
            self.goal_publisher.send(self.goals.current, 0)
            self.node.spin(50)
            self._check_interrupt()

    def _scene_for(self, goal: GoalSpec | None, first: bool = False) -> list[services_pb2.SceneObject]:
        """What to place when ``goal`` starts: the goal marker at a Cartesian goal (hidden
        otherwise), the goal's own ``scene`` and, at the first reset, the scenario's.
        Nothing for a robot without a scene (the real arm)."""
        if not self.scene_objects:
            return []
        objects = []
        if "goal" in self.scene_objects:
            shown = goal is not None and goal.kind == "tcp" and goal.visual is None  # a visual goal's target is unmarked
            objects.append(place("goal", goal.target) if shown else hide("goal"))
        for name, position in (*(self.scenario.scene if first else ()), *(goal.scene if goal else ())):
            objects.append(hide(name) if position is None else place(name, position))
        return objects

    def _place(self, objects: list[services_pb2.SceneObject]) -> None:
        """Move scene objects now (between resets: from the frame after the robot's answer on)."""
        if not objects:
            return
        try:
            self.robot.scene(objects, timeout_s=5.0, retries=1)
        except (ServiceUnavailable, ServiceError, WrongReply) as exc:
            raise SetupFailed(f"the robot refused to place scene objects: {exc}") from None

    def _reset(self, scene: list[services_pb2.SceneObject] | None = None) -> services_pb2.ResetReply:
        ranges = {k: v for k, v in self.scenario.randomization.items() if k != "max_latency_steps"}
        randomization = services_pb2.RandomizationRanges(
            **ranges, max_latency_steps=int(self.scenario.randomization.get("max_latency_steps", 0)))
        try:
            return self.robot.reset(self.scenario.robot.initial_pose, self.settings.seed, randomization,
                                    scene=scene or [], timeout_s=10.0, retries=1)
        except (ServiceUnavailable, ServiceError, WrongReply) as exc:
            raise SetupFailed(f"the robot refused the reset: {exc}") from None

    def _goal_finished(self, send: bool = True) -> None:
        result = self.goals.results[self.goals.index - 1]
        verdict = f"reached in {result.time_s:.2f} s" if result.reached else "NOT reached"
        self.status.note(f"goal {self.goals.index}/{len(self.goals.goals)} {result.id}: {verdict}")
        if send:
            self.goal_publisher.send(self.goals.current, self.goals.index)  # None: nothing left to send
        if self.goals.current is not None and not self.goals.current.reset:  # a reset places them itself
            self._place(self._scene_for(self.goals.current))

    def _kill(self, name: str, sim_time: float) -> None:
        self.status.note(f"t={sim_time:.2f} s: killing {name} (SIGKILL), as the scenario asks")
        self.processes.kill(self.processes.by_name[name])
        self.monitor.trace.mark(self.sim_time, "runner", "scenario.kill", f"SIGKILL {name}", "WARNING")
        hold = self.scenario.assertions.hold_after_kill
        self.monitor.watch_hold(sim_time, hold.settle_s if hold else 0.0)

    def _check_health(self, now: float, wall_deadline: float) -> None:
        if self.settling and now > self.settle_deadline:
            self.goals.abandon("the robot did not reach the initial pose")
            raise RunAborted(f"the robot did not reach the initial pose within {self.scenario.timeouts.startup_s:g} s "
                             "after its reset")
        for node in self.processes.crashed():
            self.goals.abandon(f"{node.name} died")
            raise RunAborted(f"{node.name} exited during the run with status {node.returncode}; "
                             f"end of {node.log_path}:\n{node.tail()}")
        limit = self.scenario.timeouts.heartbeat_s
        for node in self.processes.children:
            if node.killed_on_purpose:
                continue
            health = self.monitor.health.get(node.role)
            last = max(health.last_heartbeat if health else 0.0, self.ready_at)
            if now - last > limit:
                self.goals.abandon(f"{node.name} went silent")
                raise RunAborted(f"no heartbeat from {node.name} for {now - last:.1f} s (limit {limit:g} s)")
        if self.settings.remote:
            health = self.monitor.health.get("robot")
            last = max(health.last_heartbeat if health else 0.0, self.ready_at)
            if now - last > limit:
                self.goals.abandon("the remote robot went silent")
                raise RunAborted(f"no heartbeat from the remote robot at {self.endpoints['robot'].pub} for "
                                 f"{now - last:.1f} s (limit {limit:g} s)")
        if now - max(self.monitor.last_state_wall, self.ready_at) > limit:
            self.goals.abandon("the robot stopped publishing states")
            raise RunAborted(f"no joint state from the robot for {limit:g} s")
        if now > wall_deadline:
            self.goals.abandon("run timed out")
            raise RunAborted(f"the run took longer than {self.scenario.wall_timeout_s(self.settings.mode):g} s "
                             f"(wall clock) at simulated t={self.sim_time:.2f} s")

    def _show_progress(self, now: float) -> None:
        """Goals done plus the share of the active goal's timeout used (sim time)."""
        count = len(self.goals.goals)
        done = float(self.goals.index)
        goal = self.goals.current
        if goal is not None and self.monitor.state is not None and not self.settling:
            started = self.goals.results[self.goals.index].started_sim
            done += min(1.0, max(0.0, (self.monitor.state.sim_time - started) / goal.timeout_s))
        bar = "#" * int(24 * done / count) if count else ""
        self.status.update(f"[{bar:<24}] goal {min(self.goals.index + 1, count)}/{count} "
                           f"{goal.id if goal else '-'}  t={self.sim_time:6.2f} s  "
                           f"{now - self.run_started:5.1f} s wall")

    def _check_interrupt(self) -> None:
        if not self.node.running:
            self.goals.abandon("interrupted")
            raise RunInterrupted(f"interrupted ({self.node.detail})")

    # -- 3. stop --------------------------------------------------------------------
    def collect_infos(self) -> None:
        """Final figures of each live node (latency, counters), before it stops."""
        roles = [node.role for node in self.processes.children if node.alive()]
        for role in roles + (["robot"] if self.settings.remote and "robot" in self.infos else []):
            if role in self.clients:
                try:
                    self.infos[role] = self.clients[role].info(timeout_s=1.0, retries=1)
                except (ServiceUnavailable, ServiceError, WrongReply):
                    continue

    def stop_nodes(self) -> None:
        """Stop the nodes this run started; a remote robot is left running (it is not ours to stop)."""

        def ask(node: Child) -> None:
            self.clients[node.role].ask_shutdown("run finished")  # refused or unanswered: SIGTERM follows

        self.processes.stop(ask=ask, grace_s=3.0, term_s=3.0)
        for client in self.clients.values():
            client.close()

    # -- 4. judge --------------------------------------------------------------------
    def judge(self, code: int) -> None:
        monitor = self.monitor
        seen = Observed(
            goals=self.goals.results,
            steps=monitor.states,
            limit_excess=monitor.limit_excess,
            limit_where=monitor.limit_where,
            tracking_max=monitor.tracking_max,
            tracking_mean=monitor.tracking_mean,
            tracking_count=monitor.tracking_count,
            tracking_where=monitor.tracking_where,
            latency=monitor.latency.total(),
            deadline_misses=self._robot_deadline_misses(),
            hold=monitor.hold,
            nodes=[self._outcome(n) for n in self.processes.children],
        )
        if code != EXIT_BROKEN:
            self.report.verdicts = judge(self.scenario.assertions, seen)
        self.report.goals = [{**vars(g), "unit": g.unit} for g in self.goals.results]
        self.report.figures.update(
            states=monitor.states, commands=monitor.commands, hold_commands=monitor.hold_commands,
            bad_states=monitor.bad_states, deadline_misses=seen.deadline_misses,
            latency_ms=seen.latency.as_dict(unit="ms"), events=dict(monitor.event_counts))
        self.report.events = [f"{e.node}: {messages_pb2.Severity.Name(e.severity)} {e.code}: {e.text}"
                              for e in monitor.events]
        self.report.nodes = {n.name: self._node_report(n) for n in self.processes.children}
        if self.settings.remote:
            info = self.infos.get("robot")
            self.report.nodes["robot"] = {
                "remote": True, "endpoints": {"pub": self.endpoints["robot"].pub, "rep": self.endpoints["robot"].rep},
                "left_running": True,
                "info": json_format.MessageToDict(info, preserving_proto_field_name=True) if info else None}
        failed = any(not v.passed for v in self.report.verdicts)
        self.report.exit_code = EXIT_FAIL if code == EXIT_PASS and failed else code

    def _robot_deadline_misses(self) -> int | None:
        """Commands the robot did not get in time: ``deadline_miss`` (a lockstep
        simulator) plus ``deadline_hold`` (the real arm's watchdog), from its
        final ``info`` or else its last heartbeat; None if it told neither."""
        info = self.infos.get("robot")
        health = self.monitor.health.get("robot")
        if info is not None:
            counters: dict[str, float] = dict(info.metrics)
        elif health is not None:
            counters = {k: float(v) for k, v in health.counters.items()}
        else:
            return None
        before = self.robot_counters_before
        return int(sum(counters.get(key, 0.0) - before.get(key, 0.0) for key in DEADLINE_COUNTERS))

    def _outcome(self, node: Child) -> NodeOutcome:
        health = self.monitor.health.get(node.role)
        return NodeOutcome(node.name, node.role, node.returncode, node.stop_how, node.killed_on_purpose,
                           died_during_run=node.stop_how == "exited",
                           faults=list(health.faults) if health else [])

    def _node_report(self, node: Child) -> dict[str, Any]:
        info = self.infos.get(node.role)
        return {
            "argv": node.args,
            "pid": node.pid,
            "log": str(node.log_path),
            "ready_s": node.ready_s,
            "exit_code": node.returncode,
            "stopped_by": node.stop_how,
            "info": json_format.MessageToDict(info, preserving_proto_field_name=True) if info else None,
        }

    def _describe(self) -> services_pb2.NodeInfo:
        info = services_pb2.NodeInfo(backend="runner", mode=self.settings.mode)
        info.extra.update(scenario=self.scenario.name, target=self.settings.target, seed=str(self.settings.seed))
        return info


def policy_file(policy: PolicyConfig) -> Path | None:
    """The file whose sha256 identifies the policy: the model (of a folder: the one its description
    names), a Python policy's module file, an external command's program; None for scripted ones."""
    if policy.path is not None:
        if policy.path.is_file() and policy.path.suffix not in (".yaml", ".yml"):
            return policy.path
        try:
            model = load_description(policy.path).model.path
        except (HilError, OSError):
            return None
        return model if model.is_file() else None
    if policy.python and policy.python.rsplit(":", 1)[0].endswith(".py"):
        return Path(policy.python.rsplit(":", 1)[0])
    if policy.command and Path(policy.command[0]).is_file():
        return Path(policy.command[0])
    return None


def _lag(scenario: Scenario) -> int:
    check = scenario.assertions.tracking_error
    return check.lag_steps if check else 2


def _limits(values: Any, default: np.ndarray) -> np.ndarray:
    """The robot's own limits when it reports all six, else the RoArm-M3's."""
    return np.asarray(values, dtype=float) if len(values) == 6 and all(map(math.isfinite, values)) else default
