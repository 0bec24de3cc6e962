"""Publisher and subscriber wrappers that speak the three-frame envelope."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import zmq
from google.protobuf.message import Message

from bus.envelope import DEFAULT_MAX_FRAME, Decoder, Encoder, Envelope, Reject, payload_limit
from bus.images import check_message
from bus.security import Security, no_security
from bus.sockets import make_socket, readable, recv_frames, recv_frames_nowait, send_frames
from bus.topics import CALIBRATION_SUFFIX, CAMERA_PREFIX, LARGEST_PAYLOAD, TOPICS, QueuePolicy, camera_of, spec
from bus.waiting import spin_until_readable

RejectHandler = Callable[[Reject], None]

# A PUB keeps this many messages per subscriber before dropping for it: deep
# enough that a recorder rides out a hiccup, bounded so a stuck one cannot
# grow a node's memory without end.
PUB_HWM = 10_000
# Subscribers that only want the newest message keep a short queue and drain
# it, as IsaacSimZMQ does with HWM=1 (ZMQ_CONFLATE does not work with
# multipart messages).
LATEST_HWM = 4
_EXPECTED = {topic: entry.type for topic, entry in TOPICS.items()}  # fixed topic -> the type it carries


class Publisher:
    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: str,
        src: str,
        *,
        bind: bool = True,
        hwm: int = PUB_HWM,
        security: Security | None = None,
    ) -> None:
        self.encoder = Encoder(src)
        self.socket = make_socket(ctx, zmq.PUB, endpoint, bind=bind, options={zmq.SNDHWM: hwm}, security=security)

    def publish(self, topic: str, message: Message, sent_ns: int | None = None) -> None:
        send_frames(self.socket, self.encoder.encode(topic, message, sent_ns))

    def send_frames(self, frames: list[bytes]) -> None:
        """Send frames made elsewhere (replay of recorded envelopes)."""
        send_frames(self.socket, frames)

    def close(self) -> None:
        self.socket.close(0)


class Subscriber:
    """Receives, checks and decodes envelopes from one or more publishers.

    Bad input never raises out of here: each rejected message is handed to
    ``on_reject`` (which counts and reports it) and dropped.
    """

    def __init__(
        self,
        ctx: zmq.Context,
        endpoints: Iterable[str],
        topics: Iterable[str] = (),
        *,
        policy: QueuePolicy | None = None,
        on_reject: RejectHandler | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        parse: bool = True,
        security: Security | None = None,
    ) -> None:
        self.topics = frozenset(topics)
        self.ctx = ctx
        self.security = security or no_security()
        specs = [spec(t) for t in self.topics]
        if policy is None:
            policies = {s.policy for s in specs if s is not None}
            policy = QueuePolicy.LATEST if policies == {QueuePolicy.LATEST} else QueuePolicy.QUEUE
        self.policy = policy
        hwm = LATEST_HWM if policy is QueuePolicy.LATEST else 100_000
        # The socket must let through the largest payload any wanted topic allows.
        largest = max([payload_limit(t, max_frame) for t in self.topics] or [max(max_frame, LARGEST_PAYLOAD)])
        self.socket = make_socket(ctx, zmq.SUB, list(endpoints), bind=False, max_frame=max(max_frame, largest),
                                  options={zmq.RCVHWM: hwm}, security=self.security)
        for topic in self.topics or {""}:
            self.socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self.on_reject = on_reject
        self.max_frame = max_frame
        self.parse = parse
        self.decoder = Decoder(max_frame, parse)
        self._poller = zmq.Poller()  # kept: Socket.poll builds a new Poller per call
        self._poller.register(self.socket, zmq.POLLIN)
        self.superseded = 0

    def connect(self, endpoint: str) -> None:
        self.security.prepare(self.ctx, self.socket, endpoint, bind=False)
        self.socket.connect(endpoint)

    def recv(self, timeout_ms: int = 0, spin_us: int = 0) -> Envelope | None:
        """The next good envelope within ``timeout_ms`` (-1 waits forever), or None.

        ``spin_us`` > 0: before blocking, look for a message without blocking
        for up to that many microseconds (bus/waiting.py says when that pays).
        Each way of waiting costs one system call: ``timeout_ms=0`` asks
        whether a message waits, a timeout polls, -1 blocks in the receive.
        """
        deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms > 0 else 0.0
        sock = self.socket
        while True:
            if timeout_ms == 0:
                if not readable(sock):
                    return None
            elif not (spin_us > 0 and spin_until_readable(sock, spin_us)) and timeout_ms > 0:
                wait = max(0, int((deadline - time.monotonic()) * 1000))
                if not self._poller.poll(wait):
                    return None
            envelope = self._check(recv_frames(sock))
            if envelope is not None:
                return envelope
            if timeout_ms == 0 or (timeout_ms > 0 and time.monotonic() >= deadline):
                return None

    def take(self) -> Envelope | None:
        """The next message when a poll has just said one waits: no readiness check.

        Only after the node's poller (or ``recv``) reported this socket
        readable; a receive here would block otherwise.
        """
        return self._check(recv_frames(self.socket))

    def drain(self, many: bool = False) -> list[Envelope]:
        """Everything waiting now; under the LATEST policy, the newest per topic.

        ``many``: the caller expects a batch (it slept while messages queued):
        receive until the socket is empty instead of asking before each one,
        a system call saved per message and an exception paid per batch.
        """
        out: list[Envelope] = []
        sock = self.socket
        check = self._check
        if many:
            frames = recv_frames_nowait(sock)
            while frames is not None:
                envelope = check(frames)
                if envelope is not None:
                    out.append(envelope)
                frames = recv_frames_nowait(sock)
        else:
            while readable(sock):
                envelope = check(recv_frames(sock))
                if envelope is not None:
                    out.append(envelope)
        if self.policy is QueuePolicy.LATEST and len(out) > 1:
            newest: dict[str, Envelope] = {}
            for envelope in out:
                newest[envelope.topic] = envelope
            self.superseded += len(out) - len(newest)
            out = list(newest.values())
        return out

    def _check(self, frames: list[bytes]) -> Envelope | None:
        try:
            envelope = self.decoder.decode(frames)
            if self.topics and envelope.topic not in self.topics:
                return None  # a longer topic that matched our prefix: not ours
            want = _EXPECTED.get(envelope.topic)  # one lookup for the fixed topics of every step
            if want is not None:
                if envelope.type != want:
                    raise Reject("wrong_type", f"{envelope.topic} carries {want}, got {envelope.type}")
            elif envelope.topic.startswith(CAMERA_PREFIX):
                _check_camera(envelope)
        except Reject as reject:
            if self.on_reject is not None:
                self.on_reject(reject)
            return None
        envelope.recv_ns = time.monotonic_ns()
        return envelope

    def close(self) -> None:
        self.socket.close(0)


def _check_camera(envelope: Envelope) -> None:
    """Reject a camera topic's message of the wrong type, or a frame whose image does not hold together."""
    entry = spec(envelope.topic)
    if entry is None:
        return  # camera/... outside the contract: no expectations
    if envelope.type != entry.type:
        raise Reject("wrong_type", f"{envelope.topic} carries {entry.type}, got {envelope.type}")
    if envelope.message is not None:
        camera = camera_of(envelope.topic)
        if camera is not None and camera[1] != CALIBRATION_SUFFIX:
            check_message(envelope.message)  # type: ignore[arg-type] - a frame topic carries an image
