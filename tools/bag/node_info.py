"""Ask the nodes of a run who they are, once, and keep the answer in the bag.

The runner's provenance may lack the policy's model hash or the robot's
control period; every node answers ``info`` with them (backend, model_hash,
dt, joint limits, randomization hash). The recorder asks each role once it
hears from it and stores the answer as the metadata record
``roarm-hil.node.<role>``, so a bag says which model and which robot made it
(check-policy warns when it checks a different model).
"""

from __future__ import annotations

import json
import time

import zmq
from google.protobuf import json_format

from bus.client import NodeClient, WrongReply
from bus.endpoints import Endpoints
from bus.security import Security
from bus.service import ServiceError, ServiceUnavailable
from schemas import services_pb2

PREFIX = "roarm-hil.node."
_ATTEMPTS = 3
_RETRY_S = 2.0


def as_metadata(info: services_pb2.NodeInfo) -> dict[str, str]:
    """NodeInfo as MCAP metadata (strings): scalars as text, lists and maps as JSON.

    Live figures (``metrics``) are left out: they describe one instant, not the node.
    """
    data = json_format.MessageToDict(info, preserving_proto_field_name=True)
    data.pop("metrics", None)
    return {key: value if isinstance(value, str) else json.dumps(value, sort_keys=True) for key, value in data.items()}


def from_metadata(record: dict[str, str]) -> services_pb2.NodeInfo:
    """The NodeInfo ``as_metadata`` stored (fields this schema lacks are ignored)."""
    data: dict[str, object] = {}
    for key, value in record.items():
        try:
            data[key] = json.loads(value) if value[:1] in "[{" else value
        except ValueError:
            data[key] = value
    try:
        return json_format.ParseDict(data, services_pb2.NodeInfo(), ignore_unknown_fields=True)
    except json_format.ParseError:
        return services_pb2.NodeInfo()


class InfoProbe:
    """Asks each role's ``info`` once it has been heard from, a few times at most."""

    def __init__(self, ctx: zmq.Context, endpoints: Endpoints, roles: tuple[str, ...], src: str,
                 security: Security | None = None, timeout_s: float = 0.3) -> None:
        self.clients = {r: NodeClient(ctx, endpoints[r].rep, src, timeout_s=timeout_s, retries=1,
                                      security=security) for r in roles if r in endpoints.roles}
        self.attempts = {r: 0 for r in self.clients}
        self.next_try = {r: 0.0 for r in self.clients}

    def ask(self, heard: set[str]) -> dict[str, services_pb2.NodeInfo]:
        """Answers of the roles heard from and not yet described (each asked at most a few times)."""
        now = time.monotonic()
        found: dict[str, services_pb2.NodeInfo] = {}
        for role in [r for r in self.clients if r in heard and now >= self.next_try[r]]:
            self.attempts[role] += 1
            self.next_try[role] = now + _RETRY_S
            reply: services_pb2.NodeInfo | None
            try:
                reply = found[role] = self.clients[role].info()
            except (ServiceUnavailable, ServiceError, WrongReply):
                reply = None
            if reply is not None or self.attempts[role] >= _ATTEMPTS:
                self.clients.pop(role).close()
        return found

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()
