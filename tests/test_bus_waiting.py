"""Waiting for the next message: spin first or block at once; the same messages either way."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import zmq

from bus.decimate import Every
from bus.pubsub import Publisher, Subscriber
from bus.topics import JOINT_STATE, QueuePolicy
from bus.waiting import Waiting, spare_cores, spin_poll, spin_until_readable
from schemas import messages_pb2


@pytest.fixture
def pair(tmp_path: Path):
    ctx = zmq.Context()
    pub = Publisher(ctx, f"ipc://{tmp_path}/w.pub", "w")
    sub = Subscriber(ctx, [f"ipc://{tmp_path}/w.pub"], [JOINT_STATE], policy=QueuePolicy.QUEUE)
    deadline = time.monotonic() + 5
    while sub.recv(20) is None:  # slow joiner: until one arrives
        assert time.monotonic() < deadline, "subscription never came through"
        pub.publish(JOINT_STATE, messages_pb2.JointState(seq=0))
    while sub.recv(50) is not None:
        pass
    yield pub, sub
    pub.close()
    sub.close()
    ctx.term()


def test_spin_finds_a_message_that_arrives_while_spinning(pair) -> None:
    pub, sub = pair
    later = threading.Timer(0.002, lambda: pub.publish(JOINT_STATE, messages_pb2.JointState(seq=7)))
    later.start()
    assert spin_until_readable(sub.socket, 2_000_000)  # found within the spin, long before 2 s
    envelope = sub.recv(0)
    assert envelope is not None and envelope.message.seq == 7
    later.join()


def test_spin_gives_up_after_its_time_and_recv_then_blocks_until_the_timeout(pair) -> None:
    _pub, sub = pair
    started = time.perf_counter()
    assert not spin_until_readable(sub.socket, 3000)
    assert time.perf_counter() - started >= 0.003
    started = time.perf_counter()
    assert sub.recv(30, spin_us=1000) is None
    assert time.perf_counter() - started >= 0.025


def test_recv_with_and_without_spin_delivers_every_message_in_order(pair) -> None:
    pub, sub = pair
    for spin in (0, 200):
        for seq in range(50):
            pub.publish(JOINT_STATE, messages_pb2.JointState(seq=seq))
        got = []
        while len(got) < 50:
            envelope = sub.recv(1000, spin_us=spin)
            assert envelope is not None, f"lost after {got[-1:]} (spin {spin})"
            got.append(envelope.message.seq)
        assert got == list(range(50))


def test_drain_many_takes_the_same_batch_as_drain(pair) -> None:
    pub, sub = pair
    for many in (False, True):
        for seq in range(20):
            pub.publish(JOINT_STATE, messages_pb2.JointState(seq=seq))
        time.sleep(0.2)
        assert [e.message.seq for e in sub.drain(many=many)] == list(range(20))
        assert sub.drain(many=many) == []


def test_spin_poll_returns_ready_sockets_or_nothing(pair) -> None:
    pub, sub = pair
    poller = zmq.Poller()
    poller.register(sub.socket, zmq.POLLIN)
    assert spin_poll(poller, 500) == []
    pub.publish(JOINT_STATE, messages_pb2.JointState(seq=1))
    assert dict(spin_poll(poller, 2_000_000)).get(sub.socket)


def test_waiting_strategies_parse_and_auto_follows_the_spare_cores() -> None:
    assert Waiting.parse("off") == Waiting(0) and Waiting.parse("120") == Waiting(120)
    assert Waiting.auto(80, needed=-1e9).spin_us == 80  # any machine has more than -1e9 spare cores
    assert Waiting.auto(80, needed=1e9).spin_us == 0
    assert isinstance(spare_cores(), float)
    with pytest.raises(ValueError, match="spin must be"):
        Waiting.parse("fast")
    with pytest.raises(ValueError):
        Waiting(-1)


def test_every_n_steps() -> None:
    assert [k for k in range(25) if Every(10).due(k)] == [0, 10, 20]
    assert all(Every(1).due(k) for k in range(5)) and not any(Every(0).due(k) for k in range(5))
    assert Every.parse("never") == Every(0) and Every.parse("5") == Every(5)
    with pytest.raises(ValueError, match="whole number"):
        Every.parse("often")
    with pytest.raises(ValueError):
        Every(-2)
