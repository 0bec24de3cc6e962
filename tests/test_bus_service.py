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
