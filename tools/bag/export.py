"""``hil bag export --csv``: one CSV per topic for people who want tables.

Fields are flattened by name: nested messages as ``tcp.x``, repeated values
as ``position.0``, maps as ``counters.KEY``, enums by name. Columns are the
union over all of a topic's messages (a repeated field as long as its longest
value), so every row of a file has the same header. A camera frame's pixels
are not written (``data`` holds their size; ``--video`` exports them).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tools.bag.frames import is_frame_topic
from tools.bag.reader import BagReader

HEADER = ("log_time_ns", "publish_time_ns", "sequence", "src")


def flatten(message: Message, prefix: str = "") -> dict[str, Any]:
    """Every field of ``message`` (defaults included) as flat column -> value."""
    out: dict[str, Any] = {}
    for fd in message.DESCRIPTOR.fields:
        name = prefix + fd.name
        value = getattr(message, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            for key in sorted(value):
                item = value[key]
                out.update(flatten(item, f"{name}.{key}.") if isinstance(item, Message) else {f"{name}.{key}": item})
        elif fd.label == FieldDescriptor.LABEL_REPEATED:
            for i, item in enumerate(value):
                if isinstance(item, Message):
                    out.update(flatten(item, f"{name}.{i}."))
                else:
                    out[f"{name}.{i}"] = _scalar(fd, item)
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            if message.HasField(fd.name):
                out.update(flatten(value, name + "."))
        else:
            out[name] = _scalar(fd, value)
    return out


def _scalar(fd: FieldDescriptor, value: Any) -> Any:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        number = fd.enum_type.values_by_number.get(value)
        return number.name if number is not None else value
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return value.hex()
    return value


def file_name(topic: str) -> str:
    return topic.replace("/", "_") + ".csv"


def export_csv(bag: Path, out_dir: Path, topics: tuple[str, ...] = ()) -> dict[str, tuple[Path, int]]:
    """Write the CSVs; returns topic -> (file, rows)."""
    reader = BagReader(bag)
    rows: dict[str, list[dict[str, Any]]] = {}
    columns: dict[str, dict[str, None]] = {}  # ordered set per topic
    for message in reader.messages():
        if topics and message.topic not in topics:
            continue
        row = {"log_time_ns": message.log_time, "publish_time_ns": message.publish_time,
               "sequence": message.sequence, "src": message.src}
        decoded = reader.decode(message)
        fields = flatten(decoded)
        if is_frame_topic(message.topic):  # pixels do not belong in a table: their size does
            fields["data"] = f"{len(decoded.data)} bytes"
        row.update(fields)
        rows.setdefault(message.topic, []).append(row)
        seen = columns.setdefault(message.topic, dict.fromkeys(HEADER))
        for key in row:
            seen.setdefault(key)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, tuple[Path, int]] = {}
    for topic, topic_rows in rows.items():
        path = out_dir / file_name(topic)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns[topic]), restval="")
            writer.writeheader()
            writer.writerows(topic_rows)
        written[topic] = (path, len(topic_rows))
    return written
