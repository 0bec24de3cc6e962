"""Why a node does not answer: nothing listens, the security handshake
failed (keys missing, refused or from another set), or it accepts the
connection and stays silent.

A REQ that gets no reply cannot tell these apart, and "is the node running?"
sends people looking for a process that is running fine but wants CURVE
keys. This probe connects one more socket with the same security, watches
its monitor events (connected, handshake succeeded or failed and why) for a
moment, and says in words what happened and what to do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import zmq
from zmq.utils.monitor import recv_monitor_message

from bus.security import PRIVATE_DIR, PUBLIC_DIR, Security, no_security

_EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_CLOSED | zmq.EVENT_HANDSHAKE_SUCCEEDED
           | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
           | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
_NO_DETAIL = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
_FAILED = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL


@dataclass(frozen=True)
class Reach:
    """What one connection attempt to ``endpoint`` showed."""

    endpoint: str
    connected: bool = False  # a transport connection was made
    handshake: bool = False  # ... and the security handshake passed
    failure: int = 0  # the zmq handshake-failure event, 0 when none

    @property
    def keys_problem(self) -> bool:
        return self.failure != 0


def probe(ctx: zmq.Context, endpoint: str, security: Security, wait_s: float = 1.0) -> Reach:
    """Connect to ``endpoint`` with ``security`` and watch for up to ``wait_s``."""
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    monitor = sock.get_monitor_socket(_EVENTS)
    connected = handshake = False
    failure = 0
    try:
        security.prepare(ctx, sock, endpoint, bind=False)
        sock.connect(endpoint)
        deadline = time.monotonic() + wait_s
        # A failure "without detail" (the peer hung up mid-handshake) is often
        # followed, on the automatic reconnect, by the specific one: wait for it.
        while (left := deadline - time.monotonic()) > 0 and not handshake and failure in (0, _NO_DETAIL):
            if not monitor.poll(max(1, int(left * 1000))):
                break
            event = recv_monitor_message(monitor)["event"]
            connected = connected or event in (zmq.EVENT_CONNECTED, zmq.EVENT_HANDSHAKE_SUCCEEDED)
            handshake = event == zmq.EVENT_HANDSHAKE_SUCCEEDED
            if event & _FAILED:
                failure = event
            if event == zmq.EVENT_CONNECT_RETRIED and not connected:
                break  # refused: nothing listens there
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
    return Reach(endpoint, connected or bool(failure), handshake, failure)


def explain(reach: Reach, security: Security, what: str = "the node") -> str:
    """One sentence: what the probe saw and what to do about it."""
    endpoint = reach.endpoint
    keys = security.config.keys
    if reach.failure and keys is None:
        # without keys any failed handshake means the node speaks CURVE
        return (f"{what} at {endpoint} requires CURVE keys and this command has none: keys may be missing; "
                f"pass --keys DIR (the folder from `hil keys generate`, with {PRIVATE_DIR}/"
                f"{security.identity}.key_secret and {PUBLIC_DIR}/) or set $HIL_KEYS")
    if reach.failure == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return (f"{what} at {endpoint} does not speak CURVE but this command uses keys ({keys}): start it with "
                f"the same --keys, or leave --keys out here")
    if reach.failure == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return (f"{what} at {endpoint} refused our key: {PUBLIC_DIR}/{security.identity}.key from {keys} is not "
                f"in that node's {PUBLIC_DIR}/ folder; copy it there and restart the node")
    if reach.failure:
        return (f"the CURVE handshake with {what} at {endpoint} failed: the server key we hold for it "
                f"({keys}/{PUBLIC_DIR}) does not match its secret key (keys from another `hil keys generate`?)")
    if reach.handshake:
        return (f"{what} at {endpoint} accepts connections but did not answer in time: it may be busy, stuck, "
                f"or something else is bound there")
    if reach.connected:
        return f"{endpoint} accepted a connection but no handshake followed: is it a roarm-hil node?"
    return (f"nothing answers at {endpoint}: is {what} running, with the same --run-dir/--endpoints?"
            + (" (if it was started with --keys, pass --keys here too)"
               if keys is None and endpoint.startswith("tcp://") else ""))


def why_silent(ctx: zmq.Context, endpoint: str, security: Security | None, what: str = "the node") -> str:
    """``probe`` then ``explain``: the sentence to add to a timed-out call."""
    security = security or no_security()
    return explain(probe(ctx, endpoint, security), security, what)
