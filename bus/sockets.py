"""One place that creates and configures ZMQ sockets for the bus.

Every socket of the bus is made here so options that matter everywhere
(linger, maximum message size, ipc folders) are set once.
"""

from __future__ import annotations

import errno
import socket
import time
from pathlib import Path

import zmq

from bus.envelope import DEFAULT_MAX_FRAME
from bus.errors import HilError
from bus.security import Security, no_security


class BindError(HilError, zmq.ZMQError):
    """A node's own address that cannot be bound, with why (a broken set-up: exit 2, no traceback)."""

    def __init__(self, errno_: int | None, text: str) -> None:
        zmq.ZMQError.__init__(self, errno_, text)


def _bind_failure(endpoint: str, exc: zmq.ZMQError) -> BindError:
    if exc.errno == errno.EADDRNOTAVAIL:
        return BindError(exc.errno, f"cannot bind {endpoint}: {exc.strerror}: this machine has no such address. "
                         "The endpoints description puts this role on another machine: start the node there, "
                         "or give the role one of this machine's addresses")
    return BindError(exc.errno, f"cannot bind {endpoint}: {exc.strerror} (is another node of this role running?)")


def make_socket(
    ctx: zmq.Context,
    kind: int,
    endpoints: str | list[str],
    *,
    bind: bool,
    max_frame: int = DEFAULT_MAX_FRAME,
    options: dict[int, int] | None = None,
    security: Security | None = None,
) -> zmq.Socket:
    """A socket bound to or connected to ``endpoints``.

    ZMQ's own MAXMSGSIZE is set well above ``max_frame`` (the largest frame
    the socket's owner accepts) so that a hostile peer cannot make a node
    allocate gigabytes, while frames between the two are still received and
    counted as "oversize" by the envelope check.

    ``security`` decides who may reach the socket (see bus/security.py):
    without one, binding a tcp:// address other than loopback is refused.
    Plain endpoints are connected before tcp:// ones because CURVE options,
    once set, apply to every later connect of the socket.
    """
    security = security or no_security()
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, max(2 * max_frame, 16 << 20))
    for opt, value in (options or {}).items():
        sock.setsockopt(opt, value)
    targets = [endpoints] if isinstance(endpoints, str) else sorted(endpoints, key=lambda e: e.startswith("tcp://"))
    for endpoint in targets:
        try:
            security.prepare(ctx, sock, endpoint, bind=bind)
        except (ValueError, zmq.ZMQError):
            sock.close(0)
            raise
        if bind:
            if endpoint.startswith("ipc://"):
                Path(endpoint[6:]).parent.mkdir(parents=True, exist_ok=True)
                if ipc_in_use(endpoint[6:], wait_s=0.5):
                    sock.close(0)
                    raise BindError(
                        errno.EADDRINUSE,
                        f"cannot bind {endpoint}: a live process is bound there "
                        "(is another node of this role running in this run folder? stop it or use another --run-dir)",
                    )
            try:
                sock.bind(endpoint)
            except zmq.ZMQError as exc:
                sock.close(0)
                raise _bind_failure(endpoint, exc) from None
        else:
            sock.connect(endpoint)
    return sock


def ipc_in_use(path: str, wait_s: float = 0.0) -> bool:
    """Whether a live process listens on this ipc path (for up to ``wait_s``).

    libzmq unlinks an existing ipc socket file when it binds, so without this
    check a second robot node (or a replay beside a live robot) would silently
    take over the endpoint and split the run in two. A stale file left by a
    dead process refuses the connection and is fine to bind over. A socket
    closed a moment ago in this process is released by libzmq's I/O thread
    shortly after ``close()`` returns, hence the short wait.
    """
    deadline = time.monotonic() + wait_s
    while True:
        if not Path(path).exists():
            return False
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(0.5)
            probe.connect(path)
        except OSError:
            return False
        finally:
            probe.close()
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.02)


# Frames at least this large are handed to ZMQ without a copy (camera
# frames); copying is cheaper than the zero-copy bookkeeping below it.
ZERO_COPY_MIN = 64 << 10

# Plain ints: pyzmq's flag enums cost a Python-level conversion on every call.
SNDMORE = int(zmq.SNDMORE)
POLLIN = int(zmq.POLLIN)
EVENTS = int(zmq.EVENTS)
NOBLOCK = int(zmq.NOBLOCK)


def send_frames(sock: zmq.Socket, frames: list[bytes] | list[bytes | memoryview]) -> None:
    """Send one multipart message.

    Plain sends with SNDMORE cost about half of pyzmq's send_multipart for
    the small frames of the bus, which matters at tens of thousands of
    messages per second. A frame of ZERO_COPY_MIN bytes or more is sent
    without a copy: ZMQ keeps a reference to its buffer until the frame is
    on the wire, so the sender must not write into that buffer afterwards.
    """
    send = sock.send
    # Every control envelope: three small frames, unrolled.
    if len(frames) == 3 and len(frames[2]) < ZERO_COPY_MIN and len(frames[1]) < ZERO_COPY_MIN:
        send(frames[0], SNDMORE)
        send(frames[1], SNDMORE)
        send(frames[2])
        return
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        flags = SNDMORE if i < last else 0
        if len(frame) >= ZERO_COPY_MIN:
            send(frame, flags, copy=False)
        else:
            send(frame, flags)


def recv_frames(sock: zmq.Socket) -> list[bytes]:
    """Receive one whole multipart message as bytes (blocking).

    Reading ``Frame.more`` is cheaper than pyzmq's recv_multipart, which asks
    getsockopt(RCVMORE) after every frame.
    """
    recv = sock.recv
    frame = recv(copy=False)
    frames = [frame.bytes]
    while frame.more:
        frame = recv(copy=False)
        frames.append(frame.bytes)
    return frames


def recv_frames_nowait(sock: zmq.Socket) -> list[bytes] | None:
    """One whole multipart message if one waits, else None, without asking first.

    A receive that finds a message makes no system call, while a readiness
    check always makes one; an empty socket costs more here (an exception)
    than with ``readable``. So this pays for a consumer that expects many
    messages waiting (a recorder after a sleep), not for one that expects
    one or none.
    """
    try:
        frame = sock.recv(NOBLOCK, copy=False)
    except zmq.Again:
        return None
    frames = [frame.bytes]
    while frame.more:  # the rest of a multipart message is always there once its first frame is
        frame = sock.recv(copy=False)
        frames.append(frame.bytes)
    return frames


def readable(sock: zmq.Socket) -> bool:
    """Whether a whole message waits on ``sock`` now (never blocks).

    ZMQ_EVENTS makes libzmq process its pending commands (one system call),
    so it costs about as much as a receive: ask it only where no poll has
    just said so.
    """
    return bool(sock.get(EVENTS) & POLLIN)
