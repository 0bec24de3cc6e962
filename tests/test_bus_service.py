"""The lazy-pirate client: bounded waits, a fresh socket after a timeout, errors as errors."""

from __future__ import annotations

import threading
import time

import pytest
import zmq

from bus.endpoints import Endpoints
from bus.service import ServiceClient, ServiceError, ServiceServer, ServiceUnavailable
from schemas import services_pb2


def serve(ctx: zmq.Context, endpoint: str, stop: threading.Event, slow_s: float = 0.0) -> threading.Thread:
    def loop() -> None:
        server = ServiceServer(ctx, endpoint, "test-server")

        def ping(_req: object) -> services_pb2.PingReply:
            time.sleep(slow_s)
            return services_pb2.PingReply(node="test-server")

        def boom(_req: object) -> services_pb2.Ack:
            raise KeyError("handler bug")

        server.add("ping", services_pb2.PingRequest, ping)
        server.add("boom", services_pb2.PingRequest, boom)
        while not stop.is_set():
            if server.socket.poll(20):
                server.serve_pending()
        server.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_dead_server_gives_up_in_bounded_time(zctx: zmq.Context, endpoints: Endpoints) -> None:
    client = ServiceClient(zctx, endpoints["robot"].rep, timeout_s=0.2, retries=3)
    t0 = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="after 3 attempt"):
        client.call("ping", services_pb2.PingRequest())
    assert time.monotonic() - t0 < 3.0
    client.close()


def test_client_recovers_when_the_server_comes_back(zctx: zmq.Context, endpoints: Endpoints) -> None:
    client = ServiceClient(zctx, endpoints["robot"].rep, timeout_s=0.2, retries=1)
    with pytest.raises(ServiceUnavailable):
        client.call("ping", services_pb2.PingRequest())
    stop = threading.Event()
    thread = serve(zctx, endpoints["robot"].rep, stop)
    reply = client.call("ping", services_pb2.PingRequest(), timeout_s=5.0)
    assert isinstance(reply, services_pb2.PingReply) and reply.node == "test-server"
    stop.set()
    thread.join()
    client.close()


def test_slow_reply_is_not_mistaken_for_the_next_one(zctx: zmq.Context, endpoints: Endpoints) -> None:
    stop = threading.Event()
    thread = serve(zctx, endpoints["robot"].rep, stop, slow_s=0.3)
    client = ServiceClient(zctx, endpoints["robot"].rep, timeout_s=0.1, retries=1)
    with pytest.raises(ServiceUnavailable):
        client.call("ping", services_pb2.PingRequest())
    reply = client.call("ping", services_pb2.PingRequest(), timeout_s=5.0)
    assert isinstance(reply, services_pb2.PingReply)
    stop.set()
    thread.join()
    client.close()


def test_handler_failure_and_unknown_method_are_errors(zctx: zmq.Context, endpoints: Endpoints) -> None:
    stop = threading.Event()
    thread = serve(zctx, endpoints["robot"].rep, stop)
    client = ServiceClient(zctx, endpoints["robot"].rep, timeout_s=5.0)
    with pytest.raises(ServiceError) as info:
        client.call("boom", services_pb2.PingRequest())
    assert info.value.code == "failed" and "handler bug" in info.value.text
    with pytest.raises(ServiceError) as info:
        client.call("nope", services_pb2.PingRequest())
    assert info.value.code == "unknown_method"
    assert client.call("ping", services_pb2.PingRequest())
    stop.set()
    thread.join()
    client.close()


def test_a_method_without_handler_waits_for_the_owners_loop(zctx: zmq.Context, endpoints: Endpoints) -> None:
    """A loop that takes a call as an event: nothing answers it behind the
    loop's back, other calls wait until the loop answered, and a refusal or a
    bug in the loop's answer is an Error like a handler's."""
    server = ServiceServer(zctx, endpoints["robot"].rep, "test-server")
    server.add("ping", services_pb2.PingRequest, lambda _req: services_pb2.PingReply(node="test-server"))
    server.add("reset", services_pb2.ResetRequest)
    replies: dict[str, object] = {}

    def call(name: str, method: str, request: object) -> threading.Thread:
        def run() -> None:
            client = ServiceClient(zctx, endpoints["robot"].rep, name, timeout_s=10.0, retries=1)
            try:
                replies[name] = client.call(method, request)
            except ServiceError as exc:
                replies[name] = exc
            finally:
                client.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def serve_until_request() -> None:
        deadline = time.monotonic() + 10
        while server.request is None:
            assert time.monotonic() < deadline, "no request reached the loop"
            if server.socket.poll(20):
                server.serve_pending()

    first = call("first", "reset", services_pb2.ResetRequest(seed=7))
    serve_until_request()
    assert server.request is not None and server.request.method == "reset"
    assert isinstance(server.request.message, services_pb2.ResetRequest) and server.request.message.seed == 7
    pinger = call("pinger", "ping", services_pb2.PingRequest())
    time.sleep(0.3)
    assert server.serve_pending() == 0 and "pinger" not in replies  # REP: one call at a time
    server.answer(lambda request: services_pb2.ResetReply(randomization_hash=f"seed {request.message.seed}"))
    first.join(10)
    reply = replies["first"]
    assert isinstance(reply, services_pb2.ResetReply) and reply.randomization_hash == "seed 7"
    deadline = time.monotonic() + 10
    while "pinger" not in replies:
        assert time.monotonic() < deadline, "ping was not served after the answer"
        if server.socket.poll(20):
            server.serve_pending()
    pinger.join(10)
    assert isinstance(replies["pinger"], services_pb2.PingReply)

    def refuse(_request: object) -> services_pb2.Ack:
        raise ServiceError("", "refused", "not now")

    def bug(_request: object) -> services_pb2.Ack:
        raise KeyError("loop bug")

    for name, answer, code, text in (("refused", refuse, "refused", "not now"), ("bug", bug, "failed", "loop bug")):
        thread = call(name, "reset", services_pb2.ResetRequest())
        serve_until_request()
        server.answer(answer)
        thread.join(10)
        error = replies[name]
        assert isinstance(error, ServiceError) and error.code == code and text in error.text
    with pytest.raises(RuntimeError, match="no service request"):
        server.answer(refuse)


def test_a_server_that_spins_seldom_answers_every_waiting_request(zctx: zmq.Context, endpoints: Endpoints) -> None:
    """serve_pending(ready=True) after a poll serves all that queued, not only the one the poll saw."""
    server = ServiceServer(zctx, endpoints["robot"].rep, "slow-spinner")
    server.add("ping", services_pb2.PingRequest, lambda _req: services_pb2.PingReply(node="slow-spinner"))
    clients = [ServiceClient(zctx, endpoints["robot"].rep, f"c{i}", timeout_s=5.0, retries=1) for i in range(3)]
    replies: list[str] = []
    threads = [threading.Thread(target=lambda c=c: replies.append(c.call("ping", services_pb2.PingRequest()).node))
               for c in clients]
    for thread in threads:
        thread.start()
    poller = zmq.Poller()
    poller.register(server.socket, zmq.POLLIN)
    assert poller.poll(5000)
    time.sleep(0.3)  # all three requests are queued by now
    assert server.serve_pending(ready=True) == 3
    for thread in threads:
        thread.join(5)
    assert replies == ["slow-spinner"] * 3
    for client in clients:
        client.close()
    server.close()
