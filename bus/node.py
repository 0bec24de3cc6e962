"""What every node has: a PUB and a REP socket at its role's endpoints,
heartbeats, rate-limited events, counters of rejected input, and the services
every node answers (ping, info, shutdown).

A node's own loop stays readable top to bottom:

    node = Node("robot", "sim", endpoints, info=describe)
    commands = node.subscribe("policy", [JOINT_COMMAND])
    node.add_service("reset", ResetRequest)   # no handler: an event of the loop
    while node.running:
        node.spin(timeout_ms=5)        # ping/info/shutdown, heartbeat, waits for input
        if node.request is not None:   # a reset call, answered here, between steps
            node.answer(on_request)
        for env in commands.drain():
            ...
        node.publish(JOINT_STATE, state)
    node.close()
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import zmq
from google.protobuf.message import Message

from bus.affinity import cpu_list
from bus.endpoints import Endpoints
from bus.envelope import DEFAULT_MAX_FRAME, Reject
from bus.events import EventLimiter
from bus.frames import FrameSubscriber
from bus.pubsub import PUB_HWM, Publisher, Subscriber
from bus.security import Security
from bus.service import Handler, Request, ServiceError, ServiceServer
from bus.topics import EVENT, HEARTBEAT, QueuePolicy
from bus.waiting import spin_poll
from schemas import SCHEMA_VERSION, messages_pb2, services_pb2

Severity = messages_pb2.Severity


class Node:
    def __init__(
        self,
        role: str,
        name: str,
        endpoints: Endpoints,
        *,
        info: Callable[[], services_pb2.NodeInfo] | None = None,
        ctx: zmq.Context | None = None,
        heartbeat_period_s: float = 0.5,
        event_interval_s: float = 1.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        log: Callable[[str], None] | None = None,
        security: Security | None = None,
        announce: bool = True,
        pub_hwm: int = PUB_HWM,
    ) -> None:
        """``pub_hwm``: messages the PUB queues per subscriber (a camera node
        publishing frames keeps it small: bus/frames.py)."""
        self.role = role
        self.name = name
        self.endpoints = endpoints
        self.ctx = ctx or zmq.Context()
        self._own_ctx = ctx is None
        self.max_frame = max_frame
        self.counters: Counter[str] = Counter()
        self.state = "ok"
        self.detail = ""
        self.running = True
        self.started = time.monotonic()
        self._info = info
        self._log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.heartbeat_period_s = heartbeat_period_s
        self._next_heartbeat = 0.0
        # One "ready" line on the first spin, when ping is answered: a person
        # who started the node by hand sees where it listens.
        self._announce = announce
        own = endpoints[role]
        # The node's own key pair is its role's; the run's description says
        # whether tcp:// sockets speak CURVE (bus/security.py).
        self._own_security = security is None
        try:
            self.security = security or endpoints.security_for(role)
            self.publisher = Publisher(self.ctx, own.pub, name, hwm=pub_hwm, security=self.security)
            self.services = ServiceServer(self.ctx, own.rep, name, on_reject=self.reject, max_frame=max_frame,
                                          security=self.security)
        except (ValueError, zmq.ZMQError):
            self._abandon()
            raise
        self.events = EventLimiter(name, lambda ev: self.publisher.publish(EVENT, ev), event_interval_s)
        self.poller = zmq.Poller()
        self.poller.register(self.services.socket, zmq.POLLIN)
        self.subscribers: list[Subscriber] = []
        self.frame_subscribers: list[FrameSubscriber] = []
        self.ready: dict[zmq.Socket, int] = {}  # subscriber sockets the last spin found readable
        self.add_service("ping", services_pb2.PingRequest, self._ping)
        self.add_service("info", services_pb2.InfoRequest, lambda _req: self.info())
        self.add_service("shutdown", services_pb2.ShutdownRequest, self._shutdown)

    # -- wiring ---------------------------------------------------------------
    def add_service(self, method: str, request: type[Message], handler: Handler | None = None) -> None:
        """Serve ``method``: with ``handler``, inside ``spin``; without one, as
        ``self.request`` for the node's own loop to ``answer``."""
        self.services.add(method, request, handler)

    def subscribe(
        self,
        roles: str | Sequence[str],
        topics: Iterable[str],
        *,
        policy: QueuePolicy | None = None,
        parse: bool = True,
    ) -> Subscriber:
        """A subscriber connected to the PUB endpoint of each role in ``roles``."""
        names = [roles] if isinstance(roles, str) else list(roles)
        sub = Subscriber(
            self.ctx,
            [self.endpoints[r].pub for r in names],
            topics,
            policy=policy,
            on_reject=self.reject,
            max_frame=self.max_frame,
            parse=parse,
            security=self.security,
        )
        self.subscribers.append(sub)
        self.poller.register(sub.socket, zmq.POLLIN)
        return sub

    def subscribe_frames(self, cameras: Iterable[str], *, compressed: bool = False) -> FrameSubscriber:
        """A frame subscriber (newest frame per camera) connected to the camera role's PUB."""
        sub = FrameSubscriber(self.ctx, [self.endpoints["camera"].pub], cameras, compressed=compressed,
                              on_reject=self.reject, security=self.security)
        self.frame_subscribers.append(sub)
        self.poller.register(sub.socket, zmq.POLLIN)
        return sub

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM end the loop cleanly instead of raising mid-step."""

        def stop(signum: int, _frame: object) -> None:
            self.stop(f"signal {signal.Signals(signum).name}")

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    # -- the loop -------------------------------------------------------------
    def spin(self, timeout_ms: int = 0, spin_us: int = 0) -> bool:
        """Serve pending service calls and a due heartbeat, waiting up to
        ``timeout_ms`` for input. Returns True when a subscriber has data;
        ``self.ready`` then holds the sockets that have (``Subscriber.take``
        reads one without asking again).

        Returns early as well when a call of a method without a handler
        arrived: it is in ``request`` and must be answered (``answer``)
        before the node can serve another call.

        ``spin_us`` > 0: poll without blocking for up to that long before
        blocking (bus/waiting.py: when a core is spare, an answer that comes
        quickly then costs no wake-up)."""
        self.heartbeat_if_due()
        try:
            found = spin_poll(self.poller, spin_us) if spin_us > 0 and timeout_ms != 0 else None
            ready = dict(found or self.poller.poll(timeout_ms))
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EINTR:
                self.ready = {}
                return False
            raise
        if self.services.socket in ready:
            self.services.serve_pending(ready=True)
            del ready[self.services.socket]
        self.ready = ready
        self.heartbeat_if_due()
        self.report_refusals()
        if self._announce:
            self._announce = False
            self._log(self.ready_line())
        return bool(ready)

    def ready_line(self) -> str:
        own = self.endpoints[self.role]
        keys = f", CURVE keys {self.security.config.keys}" if self.security.curve else ""
        return (f"[{self.name}] ready: role {self.role}, answers ping at {own.rep}, publishes on {own.pub} "
                f"(pid {os.getpid()}{keys})")

    @property
    def request(self) -> Request | None:
        """A service call waiting for the node's own loop (a method added without a handler)."""
        return self.services.request

    def answer(self, handler: Callable[[Request], Message]) -> None:
        """Answer ``request`` with ``handler``'s reply; a ServiceError it raises
        (``refuse``) or any other exception becomes an Error reply."""
        self.services.answer(handler)

    def heartbeat_if_due(self) -> None:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.heartbeat_period_s
            self.publish(HEARTBEAT, self.heartbeat())

    # -- outputs --------------------------------------------------------------
    def publish(self, topic: str, message: Message, sent_ns: int | None = None) -> None:
        self.publisher.publish(topic, message, sent_ns)

    def event(self, severity: int, code: str, text: str, correlation_seq: int = 0) -> None:
        """Publish a rate-limited event and log warnings and worse to stderr."""
        if self.events.emit(severity, code, text, correlation_seq) and severity >= Severity.WARNING:
            self._log(f"[{self.name}] {Severity.Name(severity)} {code}: {text}")

    def report_refusals(self) -> None:
        """Count peers the CURVE gate turned away and report each new peer
        address once (a stranger retrying every 100 ms must not flood events)."""
        if not self.security.gates:
            return
        self.counters["security.refused"] = self.security.refused
        for refusal in self.security.take_refusals():
            text = f"refused {refusal.address} (CURVE key {refusal.key} is not in the allowed keys)"
            self.publisher.publish(
                EVENT,
                messages_pb2.Event(stamp_ns=time.monotonic_ns(), severity=Severity.WARNING,
                                   code="security.refused", text=text, node=self.name),
            )
            self._log(f"[{self.name}] WARNING security.refused: {text}")

    def reject(self, reject: Reject) -> None:
        """Count and report input that was dropped; never raises."""
        self.counters[f"reject.{reject.reason}"] += 1
        self.event(Severity.WARNING, f"reject.{reject.reason}", reject.detail)

    def set_state(self, state: str, detail: str = "") -> None:
        """"ok", "degraded" or "fault", with a reason people can act on."""
        self.state = state
        self.detail = detail

    def heartbeat(self) -> messages_pb2.Heartbeat:
        return messages_pb2.Heartbeat(
            stamp_ns=time.monotonic_ns(),
            node=self.name,
            role=self.role,
            state=self.state,
            uptime_s=time.monotonic() - self.started,
            detail=self.detail,
            counters=dict(self.counters),
        )

    def info(self) -> services_pb2.NodeInfo:
        info = self._info() if self._info is not None else services_pb2.NodeInfo()
        info.node = self.name
        info.role = self.role
        info.schema_version = SCHEMA_VERSION
        info.pid = os.getpid()
        info.extra["cpus"] = cpu_list(os.sched_getaffinity(0))  # where it runs: all, or what --cpus pinned
        for key, value in self.counters.items():
            info.metrics[key] = float(value)
        return info

    # -- services ---------------------------------------------------------------
    def _ping(self, _request: Message) -> services_pb2.PingReply:
        return services_pb2.PingReply(
            node=self.name,
            role=self.role,
            schema_version=SCHEMA_VERSION,
            uptime_s=time.monotonic() - self.started,
            stamp_ns=time.monotonic_ns(),
        )

    def _shutdown(self, request: Message) -> services_pb2.Ack:
        assert isinstance(request, services_pb2.ShutdownRequest)
        self.stop(f"shutdown requested: {request.reason or 'no reason given'}")
        return services_pb2.Ack(ok=True, text=f"{self.name} stopping")

    def stop(self, reason: str) -> None:
        if self.running:
            self.running = False
            self.detail = reason

    def refuse(self, text: str) -> ServiceError:
        """An error to raise from a service handler that declines a request."""
        return ServiceError("", "refused", text)

    def _abandon(self) -> None:
        """Undo a half-made node (a bind was refused) so nothing is left running."""
        if getattr(self, "publisher", None) is not None:
            self.publisher.close()
        if self._own_security and getattr(self, "security", None) is not None:
            self.security.close()
        if self._own_ctx:
            self.ctx.destroy(linger=0)

    def close(self) -> None:
        """Publish a last heartbeat saying why, then close every socket."""
        try:
            self.state = "stopped"
            self.publish(HEARTBEAT, self.heartbeat())
        except zmq.ZMQError:
            pass
        for sub in self.subscribers:
            sub.close()
        for frame_sub in self.frame_subscribers:
            frame_sub.close()
        self.services.close()
        self.publisher.close()
        if self._own_security:
            self.security.close()
        if self._own_ctx:
            self.ctx.term()
