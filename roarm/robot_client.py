"""A typed client of the robot role's services (the sim node and the hw node answer them).

Arguments are the fields of the requests in schemas/services.proto; each
method returns the reply type that method is documented to return.
"""

from __future__ import annotations

from collections.abc import Sequence

from bus.client import NodeClient
from schemas import services_pb2


class RobotClient(NodeClient):
    def reset(self, position: Sequence[float] = (), seed: int = 0,
              randomization: services_pb2.RandomizationRanges | None = None, *,
              scene: Sequence[services_pb2.SceneObject] = (), timeout_s: float | None = None,
              retries: int | None = None) -> services_pb2.ResetReply:
        """Start an episode at ``position`` (empty: the pose "home") with ``seed``;
        ``scene`` objects are placed before state 0 (a simulator)."""
        request = services_pb2.ResetRequest(position=list(position), seed=seed, randomization=randomization,
                                            scene=list(scene))
        return self.request("reset", request, services_pb2.ResetReply, timeout_s=timeout_s, retries=retries)

    def step(self, steps: int = 1, *, timeout_s: float | None = None,
             retries: int | None = None) -> services_pb2.StepReply:
        """Advance ``steps`` control periods holding the current command (lockstep only)."""
        return self.request("step", services_pb2.StepRequest(steps=steps), services_pb2.StepReply,
                            timeout_s=timeout_s, retries=retries)

    def limit(self, last_step: int | None, *, timeout_s: float | None = None,
              retries: int | None = None) -> services_pb2.Ack:
        """Let commands move a lockstep robot up to state ``last_step`` and no further (None: no limit)."""
        request = services_pb2.LimitRequest(off=True) if last_step is None else services_pb2.LimitRequest(
            last_step=last_step)
        return self.request("limit", request, services_pb2.Ack, timeout_s=timeout_s, retries=retries)

    def scene(self, objects: Sequence[services_pb2.SceneObject] = (), *, timeout_s: float | None = None,
              retries: int | None = None) -> services_pb2.SceneReply:
        """Place scene objects (a simulator; none: only ask); the reply lists every object as placed now."""
        return self.request("scene", services_pb2.SceneRequest(objects=list(objects)), services_pb2.SceneReply,
                            timeout_s=timeout_s, retries=retries)

    def estop(self, engage: bool, *, timeout_s: float | None = None, retries: int | None = None) -> services_pb2.Ack:
        """Engage (True) or clear (False) the emergency stop."""
        return self.request("estop", services_pb2.EstopRequest(engage=engage), services_pb2.Ack,
                            timeout_s=timeout_s, retries=retries)

    def torque(self, enable: bool, *, timeout_s: float | None = None, retries: int | None = None) -> services_pb2.Ack:
        """Switch the servos' torque on or off (the real arm; the sim has no such service)."""
        return self.request("torque", services_pb2.TorqueRequest(enable=enable), services_pb2.Ack,
                            timeout_s=timeout_s, retries=retries)


def place(name: str, position: Sequence[float], quat: Sequence[float] = ()) -> services_pb2.SceneObject:
    """A scene object placed at ``position`` (m, world frame), upright unless ``quat`` (w, x, y, z)."""
    return services_pb2.SceneObject(name=name, position=list(position), quat=list(quat))


def hide(name: str) -> services_pb2.SceneObject:
    """A scene object taken out of view."""
    return services_pb2.SceneObject(name=name, hidden=True)
