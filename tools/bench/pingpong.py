"""A two-process PUB/SUB ping-pong of one small message: raw pyzmq or this bus, blocking or spinning.

The shape of a lockstep step (state out, command back) reduced to its
transport: this process publishes a message, an echo process answers it, and
the next goes out when the answer is in. Measured per round trip: wall time
(p50, p99) and the CPU time of both processes (all their threads, ZMQ's I/O
threads included), the figure that moves least with the machine's load.

``spin_us`` is the waiting strategy of both sides (bus/waiting.py): 0 blocks
in poll() at once, N looks for the answer without blocking for N
microseconds first. The raw floor and the bus are measured with the same one.

Used by ``hil bench bus`` (both waiting strategies) and ``hil bench peers``.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from bus.latency import summarize
from bus.processes import cpu_seconds
from bus.pubsub import Publisher, Subscriber
from bus.sockets import EVENTS, POLLIN
from bus.topics import JOINT_STATE, QueuePolicy
from bus.waiting import spin_until_readable
from schemas import messages_pb2

WARMUP = 300
STOP = b"stop"


@dataclass(frozen=True)
class PingPong:
    """Round trips of one ping-pong run, in microseconds."""

    name: str
    spin_us: int
    p50_us: float
    p99_us: float
    cpu_us: float  # both processes, per round trip
    count: int


def _raw_wait(sock: zmq.Socket, spin_us: int) -> None:
    """After a spin of ``spin_us``, or none, the next receive takes a waiting message or blocks."""
    if spin_us and not sock.get(EVENTS) & POLLIN:
        spin_until_readable(sock, spin_us)


def _raw_echo(ping: str, pong: str, spin_us: int, ready: Any) -> None:
    """Raw pyzmq: every message straight back, one frame."""
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(ping)
    pub = ctx.socket(zmq.PUB)
    pub.bind(pong)
    ready.set()
    while True:
        _raw_wait(sub, spin_us)
        message = sub.recv()
        pub.send(message)
        if message == STOP:
            break
    time.sleep(0.1)
    sub.close(0)
    pub.close(0)
    ctx.term()


def _bus_echo(ping: str, pong: str, spin_us: int, ready: Any) -> None:
    """This bus: every JointState received, decoded, and published back (encoded again)."""
    ctx = zmq.Context()
    sub = Subscriber(ctx, [ping], [JOINT_STATE], policy=QueuePolicy.QUEUE)
    pub = Publisher(ctx, pong, "echo")
    ready.set()
    while True:
        envelope = sub.recv(-1, spin_us=spin_us)
        if envelope is None:
            continue
        message = envelope.message
        assert isinstance(message, messages_pb2.JointState)
        pub.publish(JOINT_STATE, message)
        if message.randomization_hash == "stop":
            break
    time.sleep(0.1)
    sub.close()
    pub.close()
    ctx.term()


def run(kind: str, samples: int, workdir: Path, spin_us: int = 0,
        message: messages_pb2.JointState | None = None) -> PingPong:
    """``samples`` round trips of ``kind`` ("raw" or "bus") after a warm-up."""
    if kind not in ("raw", "bus"):
        raise ValueError(f"kind must be 'raw' or 'bus', got {kind!r}")
    message = message or messages_pb2.JointState(seq=1, position=[0.1] * 6)
    ping, pong = f"ipc://{workdir}/pp-{kind}-{spin_us}-ping", f"ipc://{workdir}/pp-{kind}-{spin_us}-pong"
    spawn = mp.get_context("spawn")
    ready = spawn.Event()
    proc = spawn.Process(target=_raw_echo if kind == "raw" else _bus_echo, args=(ping, pong, spin_us, ready),
                         daemon=True)
    proc.start()
    ctx = zmq.Context()
    try:
        if not ready.wait(30):
            raise RuntimeError(f"{kind} ping-pong echo process did not start")
        if kind == "raw":
            times, cpu = _drive_raw(ctx, ping, pong, message.SerializeToString(), samples, spin_us, proc.pid)
        else:
            times, cpu = _drive_bus(ctx, ping, pong, message, samples, spin_us, proc.pid)
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
        ctx.destroy(linger=0)
    summary = summarize(times)
    return PingPong(kind, spin_us, summary.p50_s * 1e6, summary.p99_s * 1e6, cpu / len(times) * 1e6, len(times))


def _drive_raw(ctx: zmq.Context, ping: str, pong: str, payload: bytes, samples: int, spin_us: int,
               echo_pid: int) -> tuple[list[float], float]:
    pub = ctx.socket(zmq.PUB)
    pub.bind(ping)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(pong)
    while True:  # slow joiners on both legs: ping until a pong comes back
        pub.send(payload)
        if sub.poll(50):
            while sub.poll(20):
                sub.recv()
            break
    times = []
    cpu0 = 0.0
    for i in range(WARMUP + samples):
        if i == WARMUP:
            cpu0 = time.process_time() + cpu_seconds(echo_pid)
        t0 = time.perf_counter()
        pub.send(payload)
        _raw_wait(sub, spin_us)
        sub.recv()
        if i >= WARMUP:
            times.append(time.perf_counter() - t0)
    cpu = time.process_time() + cpu_seconds(echo_pid) - cpu0
    pub.send(STOP)
    sub.poll(1000)
    pub.close(0)
    sub.close(0)
    return times, cpu


def _drive_bus(ctx: zmq.Context, ping: str, pong: str, message: messages_pb2.JointState, samples: int,
               spin_us: int, echo_pid: int) -> tuple[list[float], float]:
    pub = Publisher(ctx, ping, "bench")
    sub = Subscriber(ctx, [pong], [JOINT_STATE], policy=QueuePolicy.QUEUE)
    while True:
        pub.publish(JOINT_STATE, message)
        if sub.recv(50) is not None:
            while sub.recv(20) is not None:
                pass
            break
    times = []
    cpu0 = 0.0
    for i in range(WARMUP + samples):
        if i == WARMUP:
            cpu0 = time.process_time() + cpu_seconds(echo_pid)
        t0 = time.perf_counter()
        pub.publish(JOINT_STATE, message)
        if sub.recv(5000, spin_us=spin_us) is None:
            raise RuntimeError("bus ping-pong echo stopped answering")
        if i >= WARMUP:
            times.append(time.perf_counter() - t0)
    cpu = time.process_time() + cpu_seconds(echo_pid) - cpu0
    stop = messages_pb2.JointState()
    stop.CopyFrom(message)
    stop.randomization_hash = "stop"
    pub.publish(JOINT_STATE, stop)
    sub.recv(1000)
    pub.close()
    sub.close()
    return times, cpu
