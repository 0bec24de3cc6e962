"""``hil bag info``: what a bag holds (topics, counts, rates, duration, drops, provenance).

Counts and drops are computed from the messages themselves (the envelope seq
is stored as the MCAP sequence), so a bag cut short by SIGKILL, which has no
summary, is described as well as a complete one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.bag.drops import DropCounter
from tools.bag.frames import frame_of, is_frame_topic, resolution
from tools.bag.node_info import PREFIX
from tools.bag.reader import BagMessage, BagReader


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
class CameraInfo:
    """One camera's frames in the bag: how many, how often (by capture stamps), how large."""

    camera: str
    topic: str
    src: str
    encoding: str  # rgb8, jpeg, png, ...
    width: int = 0
    height: int = 0
    count: int = 0
    bytes: int = 0
    first_stamp_ns: int = 0
    last_stamp_ns: int = 0

    @property
    def rate_hz(self) -> float:
        span = (self.last_stamp_ns - self.first_stamp_ns) / 1e9
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
    cameras: list[CameraInfo] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        for entry, channel in zip(data["channels"], self.channels, strict=True):  # type: ignore[arg-type]
            entry["rate_hz"] = round(channel.rate_hz, 3)
        for entry, camera in zip(data["cameras"], self.cameras, strict=True):  # type: ignore[arg-type]
            entry["rate_hz"] = round(camera.rate_hz, 3)
        return data


def bag_info(path: Path) -> BagInfo:
    """One pass over the bag."""
    reader = BagReader(path)
    channels: dict[int, ChannelInfo] = {}
    drops = DropCounter()
    cameras: dict[int, CameraInfo] = {}
    first = last = 0
    for message in reader.messages():
        if is_frame_topic(message.topic):
            _count_frame(cameras, message)
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
        cameras=sorted(cameras.values(), key=lambda c: (c.camera, c.topic, c.src)),
    )


def _count_frame(cameras: dict[int, CameraInfo], message: BagMessage) -> None:
    """Add one frame to its channel's camera entry (the first frame of each gives the resolution)."""
    frame = frame_of(message)
    if frame is None:
        return
    entry = cameras.get(message.channel.id)
    if entry is None:
        width, height = resolution(frame)
        entry = cameras[message.channel.id] = CameraInfo(frame.camera, frame.topic, message.src, frame.encoding,
                                                         width, height, first_stamp_ns=frame.stamp_ns)
    entry.count += 1
    entry.bytes += len(frame.data)
    entry.first_stamp_ns = min(entry.first_stamp_ns, frame.stamp_ns)
    entry.last_stamp_ns = max(entry.last_stamp_ns, frame.stamp_ns)


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
    if info.cameras:
        lines.append("cameras:")
        for cam in info.cameras:
            size = f"{cam.width}x{cam.height}" if cam.width else "?x?"
            lines.append(f"  {cam.camera:<12} {size:>9} {cam.encoding:<5} {cam.count:>7} frames  {cam.rate_hz:>7.2f} Hz"
                         f"  {cam.bytes / max(cam.count, 1) / 1024:>7.1f} KiB/frame  on {cam.topic} from {cam.src}")
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
