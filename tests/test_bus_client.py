"""Typed service clients: the methods every node answers, with the reply type checked."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import zmq

from bus.client import NodeClient, WrongReply
from bus.endpoints import Endpoints
from bus.service import ServiceServer
from schemas import services_pb2
from tests.conftest import Procs, wait_ready


def test_ping_info_and_shutdown_of_a_real_node(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                               zctx: zmq.Context) -> None:
    node = procs.python("tests/nodes/listener.py", str(run_dir))
    client = wait_ready(zctx, endpoints, "robot")
    assert isinstance(client, NodeClient)
    ping = client.ping()
    assert (ping.node, ping.role) == ("listener", "robot") and ping.schema_version
    info = client.info()
    assert (info.node, info.role, info.pid) == ("listener", "robot", node.pid)
    ack = client.shutdown("test done")
    assert ack.ok and "listener" in ack.text
    assert node.wait(timeout=30) == 0
    assert not client.answers_ping(0.2)  # gone: no answer, and the probe says so in bounded time
    client.close()


def test_a_reply_of_the_wrong_type_is_a_clear_error(zctx: zmq.Context, endpoints: Endpoints) -> None:
    """A server whose ``info`` answers with an Ack: the client names both types instead of handing it on."""
    stop = threading.Event()

    def serve() -> None:
        server = ServiceServer(zctx, endpoints["robot"].rep, "odd-server")
        server.add("info", services_pb2.InfoRequest, lambda _req: services_pb2.Ack(ok=True))
        server.add("ping", services_pb2.PingRequest, lambda _req: services_pb2.PingReply(node="odd-server"))
        while not stop.is_set():
            if server.socket.poll(20):
                server.serve_pending()
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = NodeClient(zctx, endpoints["robot"].rep, "test", timeout_s=5.0)
    try:
        with pytest.raises(WrongReply, match=r"info to ipc://.*: expected a roarm\.v1\.NodeInfo, got a roarm\.v1\.Ack"):
            client.info()
        assert client.ping().node == "odd-server"  # the client is still usable afterwards
        assert client.answers_ping(1.0)
        assert not client.ask_shutdown("no such method here")  # an Error reply: refused, never raised
    finally:
        stop.set()
        thread.join()
        client.close()
