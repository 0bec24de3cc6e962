"""Typed clients of a node's services: ``info()`` returns a NodeInfo, or says what came instead.

Every node answers ``ping``, ``info`` and ``shutdown`` (bus/node.py); a role
with more services subclasses NodeClient (roarm/robot_client.py for the
robot). The reply type of each method is checked once, here, so callers
read fields without asserting the type themselves.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

from bus.errors import Failed
from bus.service import ServiceClient, ServiceError, ServiceUnavailable
from schemas import services_pb2

Reply = TypeVar("Reply", bound=Message)


class WrongReply(Failed, TypeError):
    """A node answered a method with another message type than the method returns."""


class NodeClient(ServiceClient):
    """A client of one node's REP socket, with the methods every node answers typed.

    ``timeout_s`` and ``retries`` of each method default to the client's own
    (see ServiceClient.call); only methods safe to run twice should retry.
    """

    def request(self, method: str, request: Message, reply_type: type[Reply], *, timeout_s: float | None = None,
                retries: int | None = None) -> Reply:
        """``call`` with the reply checked to be a ``reply_type``; WrongReply otherwise."""
        reply = self.call(method, request, timeout_s=timeout_s, retries=retries)
        if not isinstance(reply, reply_type):
            raise WrongReply(f"{method} to {self.endpoint}: expected a {reply_type.DESCRIPTOR.full_name}, "
                             f"got a {reply.DESCRIPTOR.full_name}")
        return reply

    def ping(self, *, timeout_s: float | None = None, retries: int | None = None) -> services_pb2.PingReply:
        return self.request("ping", services_pb2.PingRequest(), services_pb2.PingReply, timeout_s=timeout_s,
                            retries=retries)

    def info(self, *, timeout_s: float | None = None, retries: int | None = None) -> services_pb2.NodeInfo:
        return self.request("info", services_pb2.InfoRequest(), services_pb2.NodeInfo, timeout_s=timeout_s,
                            retries=retries)

    def shutdown(self, reason: str, *, timeout_s: float | None = None, retries: int | None = None) -> services_pb2.Ack:
        return self.request("shutdown", services_pb2.ShutdownRequest(reason=reason), services_pb2.Ack,
                            timeout_s=timeout_s, retries=retries)

    def answers_ping(self, wait_s: float) -> bool:
        """The readiness probe (bus.processes.Probe): did the node answer a ping within ``wait_s``?

        An Error reply counts as an answer: the node is alive, if unhappy.
        """
        try:
            self.call("ping", services_pb2.PingRequest(), timeout_s=wait_s, retries=1)
        except ServiceUnavailable:
            return False
        except ServiceError:
            return True
        return True

    def ask_shutdown(self, reason: str, timeout_s: float = 1.0) -> bool:
        """Request a clean exit, once, never raising (a stop escalates to signals anyway): was it accepted?"""
        try:
            self.shutdown(reason, timeout_s=timeout_s, retries=1)
        except (ServiceUnavailable, ServiceError, WrongReply):
            return False
        return True
