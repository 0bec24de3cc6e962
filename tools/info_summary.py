"""``hil bus info ROLE`` for people: a page that says what the node is, not
150 lines of protobuf text (``--raw`` still prints those).

Health is not part of NodeInfo; it comes from the node's next heartbeat.
"""

from __future__ import annotations

import math
import re
import time

import zmq

from bus.endpoints import Endpoints
from bus.phases import PREFIX as PHASE_PREFIX
from bus.phases import phases_of, phases_text
from bus.pubsub import Subscriber
from bus.topics import HEARTBEAT, QueuePolicy
from schemas import messages_pb2, services_pb2

# Longer than the default heartbeat period (0.5 s), short enough for a command.
HEARTBEAT_WAIT_S = 1.2
# A fact (NodeInfo.extra) longer than this is cut: firmware banners run long.
FACT_WIDTH = 72
# bus.latency's summary keys: "<name>_<stat>_<unit>" beside "<name>_count".
_SUMMARY = re.compile(r"(.+)_(mean|max|p50|p90|p95|p99)_(us|ms|s)")


def last_heartbeat(ctx: zmq.Context, endpoints: Endpoints, role: str,
                   wait_s: float = HEARTBEAT_WAIT_S) -> messages_pb2.Heartbeat | None:
    """The role's next heartbeat, or None when none comes within ``wait_s``."""
    sub = Subscriber(ctx, [endpoints[role].pub], [HEARTBEAT], policy=QueuePolicy.QUEUE,
                     security=endpoints.security_for())
    deadline = time.monotonic() + wait_s
    try:
        while (left := deadline - time.monotonic()) > 0:
            envelope = sub.recv(max(1, int(left * 1000)))
            if envelope is None:
                return None
            if isinstance(envelope.message, messages_pb2.Heartbeat) and envelope.message.role == role:
                return envelope.message
        return None
    finally:
        sub.close()


def summary(info: services_pb2.NodeInfo, heartbeat: messages_pb2.Heartbeat | None) -> str:
    """The readable page: identity, backend and period, health, joints and limits, facts, non-zero counters."""
    lines = [f"{info.role}: {info.node} (pid {info.pid}, schema {info.schema_version})"]
    backend = ", ".join(part for part in (info.backend, info.mode) if part)
    period = f", period {info.dt * 1e3:.4g} ms ({1 / info.dt:.4g} Hz)" if info.dt > 0 else ""
    lines.append(f"  backend   {backend or '-'}{period}")
    if info.model_hash:
        lines.append(f"  model     sha256 {info.model_hash[:16]}")
    if info.randomization_hash:
        lines.append(f"  random    {info.randomization_hash[:16]}")
    lines.append("  health    " + _health(heartbeat))
    lines.extend(_joints(info))
    phases = phases_of(info)
    if phases:
        lines.append(f"  cpu/step  {phases_text(phases)} (the loop's thread, --phases)")
    for key, value in sorted(info.extra.items()):
        if key == "phases":
            continue
        text = " ".join(value.split())
        if text:
            cut = text if len(text) <= FACT_WIDTH else text[:FACT_WIDTH - 3] + "..."
            lines.append(f"  {key:<9} {cut}" if len(key) <= 9 else f"  {key}: {cut}")
    metrics = {k: float(v) for k, v in info.metrics.items()
               if v and not math.isnan(v) and not k.startswith(PHASE_PREFIX)}
    timings = _timings(metrics)
    if timings:
        lines.append("  timing (count, mean, p50, p99, max):")
        width = max(len(k) for k in timings)
        lines.extend(f"    {k:<{width}}  {text}" for k, text in timings.items())
    counters = dict(metrics)
    if heartbeat is not None:
        counters.update({k: float(v) for k, v in heartbeat.counters.items() if v and k not in counters})
    if counters:
        lines.append("  counters (not zero):")
        width = max(len(k) for k in counters)
        lines.extend(f"    {k:<{width}}  {_number(v)}" for k, v in sorted(counters.items()))
    else:
        lines.append("  counters  all zero")
    return "\n".join(lines)


def _timings(metrics: dict[str, float]) -> dict[str, str]:
    """Latency summaries (``<name>_count``, ``_mean_us``, ``_p99_us``, ...) folded
    into one line each; their keys are taken out of ``metrics``."""
    out: dict[str, str] = {}
    for key in sorted(metrics):
        match = _SUMMARY.fullmatch(key)
        if match is None or match.group(2) != "mean":
            continue
        name, unit = match.group(1), match.group(3)
        parts = {stat: metrics.pop(f"{name}_{stat}_{unit}", math.nan) for stat in ("mean", "p50", "p99", "max")}
        for stat in ("p90", "p95"):
            metrics.pop(f"{name}_{stat}_{unit}", None)
        count = metrics.pop(f"{name}_count", math.nan)
        out[name] = (f"{_number(count)}  " if not math.isnan(count) else "") + "  ".join(
            f"{v:.4g}" if not math.isnan(v) else "-" for v in parts.values()) + f" {unit}"
    return out


def _health(heartbeat: messages_pb2.Heartbeat | None) -> str:
    if heartbeat is None:
        return f"unknown (no heartbeat within {HEARTBEAT_WAIT_S:g} s)"
    detail = f": {heartbeat.detail}" if heartbeat.detail else ""
    return f"{heartbeat.state}{detail} (up {heartbeat.uptime_s:.1f} s)"


def _joints(info: services_pb2.NodeInfo) -> list[str]:
    names = list(info.joint_names)
    if not names:
        return []
    out = [f"  joints    {'name':<10} {'lower':>8} {'upper':>8} {'max vel':>9}"]
    for i, name in enumerate(names):
        lower = _at(info.lower, i)
        upper = _at(info.upper, i)
        speed = _at(info.max_velocity, i)
        out.append(f"            {name:<10} {lower:>8} {upper:>8} {speed:>9}")
    out.append("            (rad, rad/s)")
    return out


def _at(values: object, i: int) -> str:
    seq = list(values)  # type: ignore[call-overload]
    return f"{seq[i]:.3f}" if i < len(seq) else "-"


def _number(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:.4g}"
