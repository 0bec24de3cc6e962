"""``hil bag info``: what a bag holds (topics, counts, rates, duration, drops, provenance).

Counts and drops are computed from the messages themselves (the envelope seq
is stored as the MCAP sequence), so a bag cut short by SIGKILL, which has no
summary, is described as well as a complete one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.bag.drops import DropCounter
from tools.bag.node_info import PREFIX
from tools.bag.reader import BagReader


@dataclass
class ChannelInfo:
    topic: str
    src: str
    role: str
    type: str
    count: int = 0
    dropped: int = 0
    first_ns: int = 0
    last_ns: int = 0

    @property
    def rate_hz(self) -> float:
        span = (self.last_ns - self.first_ns) / 1e9
        return (self.count - 1) / span if self.count > 1 and span > 0 else 0.0


@dataclass
class BagInfo:
    path: str
    size_bytes: int
    complete: bool
    truncated: str
    messages: int
    dropped: int
    duration_s: float
    channels: list[ChannelInfo] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    recorder_summary: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        for entry, channel in zip(data["channels"], self.channels, strict=True):  # type: ignore[arg-type]
            entry["rate_hz"] = round(channel.rate_hz, 3)
        return data


def bag_info(path: Path) -> BagInfo:
    """One pass over the bag."""
    reader = BagReader(path)
    channels: dict[int, ChannelInfo] = {}
    drops = DropCounter()
    first = last = 0
    for message in reader.messages():
        info = channels.get(message.channel.id)
        if info is None:
            meta = message.channel.metadata
            schema = reader.schemas.get(message.channel.schema_id)
            info = channels[message.channel.id] = ChannelInfo(
                message.topic, meta.get("src", ""), meta.get("role", ""),
                meta.get("type", schema.name if schema else ""), first_ns=message.log_time)
        info.count += 1
        info.last_ns = message.log_time
        info.dropped += drops.observe(message.topic, message.src, message.sequence)
        first = message.log_time if not first else min(first, message.log_time)
        last = max(last, message.log_time)
    nodes = {name[len(PREFIX):]: record for name, record in reader.metadata.items() if name.startswith(PREFIX)}
    return BagInfo(
        path=str(path),
        size_bytes=Path(path).stat().st_size,
        complete=reader.complete,
        truncated=reader.truncated,
        messages=sum(c.count for c in channels.values()),
        dropped=sum(c.dropped for c in channels.values()),
        duration_s=(last - first) / 1e9 if last > first else 0.0,
        channels=sorted(channels.values(), key=lambda c: (c.topic, c.src)),
        provenance=_completed(reader.provenance, nodes),
        nodes=nodes,
        recorder_summary=reader.stream_summary,
    )


def _completed(provenance: dict[str, str], nodes: dict[str, dict[str, str]]) -> dict[str, str]:
    """Provenance with the blanks the runner left filled from what the nodes said of themselves."""
    out = dict(provenance)
    if provenance and not out.get("policy_sha256"):
        out["policy_sha256"] = nodes.get("policy", {}).get("model_hash", "")
    if provenance and not out.get("randomization_hash"):
        out["randomization_hash"] = nodes.get("robot", {}).get("randomization_hash", "")
    return out


def format_info(info: BagInfo) -> str:
    """The human-readable report."""
    state = "complete" if info.complete and not info.truncated else f"TRUNCATED ({info.truncated})"
    lines = [
        f"bag:       {info.path} ({info.size_bytes / 1024:.1f} KiB, {state})",
        f"duration:  {info.duration_s:.3f} s",
        f"messages:  {info.messages} ({info.dropped} dropped)",
        "channels:",
    ]
    width = max((len(c.topic) for c in info.channels), default=10)
    for c in info.channels:
        lines.append(f"  {c.topic:<{width}}  {c.count:>8} msgs  {c.rate_hz:>9.2f} Hz  {c.dropped:>6} dropped"
                     f"  from {c.src} ({c.role})  {c.type}")
    if info.provenance:
        lines.append("provenance:")
        lines.extend(f"  {key}: {value}" for key, value in info.provenance.items())
    else:
        lines.append("provenance: none (not written by hil bag record)")
    for role, node in sorted(info.nodes.items()):
        facts = [node.get("backend", "?"), node.get("mode", ""), f"dt {node['dt']} s" if node.get("dt") else "",
                 f"model sha256 {node['model_hash']}" if node.get("model_hash") else ""]
        lines.append(f"node {role}: {node.get('node', '?')} ({', '.join(f for f in facts if f)})")
    if not info.recorder_summary:
        lines.append("recorder summary: none (the recorder did not close the bag: killed or crashed)")
    return "\n".join(lines)
