"""Request/reply services: a REP server and a "lazy pirate" REQ client.

The client never hangs on a dead server: each attempt waits a bounded time,
and on a timeout the REQ socket (now stuck in its send/recv state machine) is
closed and a fresh one made before the next attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq
from google.protobuf.message import Message

from bus import registry
from bus.envelope import DEFAULT_MAX_FRAME, Decoder, Encoder, Reject, parse_payload
from bus.errors import Failed
from bus.security import Security
from bus.sockets import make_socket, readable, recv_frames, send_frames
from schemas import services_pb2

Handler = Callable[[Message], Message]


class ServiceError(Failed, RuntimeError):
    """The server answered, with an error."""

    def __init__(self, method: str, code: str, text: str) -> None:
        super().__init__(f"{method}: {code}: {text}")
        self.method = method
        self.code = code
        self.text = text


class ServiceUnavailable(Failed, TimeoutError):
    """No answer after every attempt: the server is dead, busy or elsewhere."""


@dataclass(frozen=True)
class Request:
    """A call of a method added without a handler, waiting for its owner's loop.

    Such a method is an event of the loop that owns the server rather than a
    callback: the loop reads it when it polls and answers it at a point of
    its own choosing (``ServiceServer.answer``), so its state never changes
    under its feet. Until then the REP socket takes no other request.
    """

    method: str
    message: Message


@dataclass(frozen=True)
class _Method:
    request: registry.MessageClass
    handler: Handler | None  # None: the request is handed to the owner's loop
    type_name: str  # the request's protobuf full name, looked up once


class ServiceServer:
    """A REP socket that dispatches requests by method name.

    Every request gets exactly one reply (REP requires it): a malformed one is
    answered with an Error and reported through ``on_reject``. A method added
    with a handler is answered inside ``serve_pending``; one added without is
    left in ``request`` for the owner to ``answer``.
    """

    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: str,
        src: str,
        *,
        on_reject: Callable[[Reject], None] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        security: Security | None = None,
    ) -> None:
        self.socket = make_socket(ctx, zmq.REP, endpoint, bind=True, max_frame=max_frame, security=security)
        self.encoder = Encoder(src)
        self.decoder = Decoder(max_frame, parse=False)
        self.methods: dict[str, _Method] = {}
        self.on_reject = on_reject
        self.max_frame = max_frame
        self.request: Request | None = None  # received for the owner's loop, not answered yet

    def add(self, method: str, request: registry.MessageClass, handler: Handler | None = None) -> None:
        """Serve ``method``: with ``handler`` inside serve_pending, without it as a Request for the owner."""
        self.methods[method] = _Method(request, handler, request.DESCRIPTOR.full_name)

    def serve_pending(self, ready: bool = False) -> int:
        """Answer every request already waiting; never blocks. Returns how many.

        ``ready``: a poll has just reported the socket readable, so the first
        request is taken without asking again (each ask is a system call).
        Every request waiting is served, not only that one: a node that waits
        long between spins must not fall behind callers that retry.

        Stops at a request for the owner's loop (``request`` holds it): the
        REP socket takes the next one only after ``answer``.
        """
        sock = self.socket
        served = 0
        while self.request is None and (ready or readable(sock)):  # cheaper than zmq.Again
            ready = False
            method, reply = self._dispatch(recv_frames(sock))
            if reply is None:
                break  # self.request: the owner answers it
            send_frames(sock, self.encoder.encode(method, reply))
            served += 1
        return served

    def answer(self, handler: Callable[[Request], Message]) -> None:
        """Answer ``request`` with what ``handler`` returns (errors as for a handler's)."""
        request = self.request
        if request is None:
            raise RuntimeError("no service request is waiting for an answer")
        self.request = None
        send_frames(self.socket, self.encoder.encode(request.method, _call(handler, request)))

    def _dispatch(self, frames: list[bytes]) -> tuple[str, Message | None]:
        try:
            envelope = self.decoder.decode(frames)
            entry = self.methods.get(envelope.topic)
            if entry is None:
                raise Reject("unknown_method", f"no method {envelope.topic!r} (have {sorted(self.methods)})")
            if envelope.type != entry.type_name:
                raise Reject("wrong_type", f"{envelope.topic} takes {entry.type_name}")
            request = parse_payload(entry.request, envelope.payload)
        except Reject as reject:
            if self.on_reject is not None:
                self.on_reject(reject)
            method = frames[0].decode(errors="replace")[:64] if frames else "?"
            return method, services_pb2.Error(code=reject.reason, text=reject.detail)
        if entry.handler is None:
            self.request = Request(envelope.topic, request)
            return envelope.topic, None
        return envelope.topic, _call(entry.handler, request)

    def close(self) -> None:
        self.socket.close(0)


def _call(handler: Callable[[Any], Message], argument: object) -> Message:
    """The reply to one request: the handler's, or an Error when it declines or fails."""
    try:
        return handler(argument)
    except ServiceError as exc:
        return services_pb2.Error(code=exc.code, text=exc.text)
    except Exception as exc:  # noqa: BLE001 - a handler's bug must not kill the node
        return services_pb2.Error(code="failed", text=f"{type(exc).__name__}: {exc}")


class ServiceClient:
    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: str,
        src: str = "client",
        *,
        timeout_s: float = 1.0,
        retries: int = 3,
        security: Security | None = None,
    ) -> None:
        self.ctx = ctx
        self.security = security
        self.endpoint = endpoint
        self.encoder = Encoder(src)
        self.decoder = Decoder()
        self.timeout_s = timeout_s
        self.retries = retries
        self.socket: zmq.Socket | None = None
        self._rcvtimeo = -1  # what the current socket's RCVTIMEO is set to (asking costs a call)

    def _fresh_socket(self) -> zmq.Socket:
        if self.socket is not None:
            self.socket.close(0)
        self.socket = make_socket(self.ctx, zmq.REQ, self.endpoint, bind=False, security=self.security)
        self._rcvtimeo = -1
        return self.socket

    def call(
        self,
        method: str,
        request: Message,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
    ) -> Message:
        """Send ``request`` and return the decoded reply.

        Raises ServiceError when the server answers with an Error, and
        ServiceUnavailable after ``retries`` attempts without an answer. Only
        retry methods that are safe to run twice.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        attempts = max(1, self.retries if retries is None else retries)
        frames = self.encoder.encode(method, request)
        timeout_ms = max(1, int(timeout * 1000))
        for _ in range(attempts):
            sock = self.socket or self._fresh_socket()
            if self._rcvtimeo != timeout_ms:  # a receive timeout costs less than a poll per call
                sock.rcvtimeo = self._rcvtimeo = timeout_ms
            send_frames(sock, frames)
            try:
                return self._reply(method, recv_frames(sock))
            except zmq.Again:
                self._fresh_socket()  # the REQ state machine is stuck; start over
        raise ServiceUnavailable(
            f"no reply to {method!r} from {self.endpoint} after {attempts} attempt(s) of {timeout:.2f} s: "
            "is the node running? (hil bus ping ROLE)"
        )

    def _reply(self, method: str, frames: list[bytes]) -> Message:
        try:
            envelope = self.decoder.decode(frames)
        except Reject as reject:
            raise ServiceError(method, reject.reason, reject.detail) from None
        assert envelope.message is not None
        if isinstance(envelope.message, services_pb2.Error):
            raise ServiceError(method, envelope.message.code, envelope.message.text)
        return envelope.message

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close(0)
            self.socket = None

