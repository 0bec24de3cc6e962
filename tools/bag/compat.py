"""Can this code replay a bag recorded with another schema? Compare and say exactly why not.

The bag embeds the FileDescriptorSet of every type it recorded; this module
compares each with the descriptors the code has now, following the schema
evolution rules of docs/design.md:

- compatible: added fields, added messages, renamed fields (same number and
  type), removed fields (their data is ignored; they should be reserved);
- incompatible: a recorded message that no longer exists, a field number
  whose type, message/enum type or label (repeated or not) changed, and a
  bag of another schema major version.

Incompatibilities stop replay and check-policy with a message naming the
message and field, instead of decoding garbage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor_pb2 import FieldDescriptorProto
from google.protobuf.message import DecodeError
from mcap_protobuf.schema import build_file_descriptor_set

from bus import registry
from bus.errors import Failed
from schemas import SCHEMA_MAJOR, SCHEMA_VERSION
from tools.bag.reader import BagReader

_TYPE_NAMES = {v: k[len("TYPE_"):].lower() for k, v in FieldDescriptorProto.Type.items()}
_LABELS = {FieldDescriptorProto.LABEL_REPEATED: "repeated", FieldDescriptorProto.LABEL_OPTIONAL: "singular",
           FieldDescriptorProto.LABEL_REQUIRED: "required"}


class SchemaIncompatible(Failed, RuntimeError):
    """The bag's schema cannot be read as the current one; the text names what differs."""


@dataclass
class CompatReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _index(fds: descriptor_pb2.FileDescriptorSet) -> dict[str, descriptor_pb2.DescriptorProto]:
    """Full name -> message descriptor (nested ones too) of a FileDescriptorSet."""
    out: dict[str, descriptor_pb2.DescriptorProto] = {}

    def add(prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        name = f"{prefix}.{message.name}" if prefix else message.name
        out[name] = message
        for nested in message.nested_type:
            add(name, nested)

    for file in fds.file:
        for message in file.message_type:
            add(file.package, message)
    return out


def _describe(f: FieldDescriptorProto) -> str:
    kind = f.type_name.lstrip(".") if f.type_name else _TYPE_NAMES.get(f.type, str(f.type))
    return f"{_LABELS.get(f.label, '?')} {kind}"


def _reserved(message: descriptor_pb2.DescriptorProto, number: int) -> bool:
    return any(r.start <= number < r.end for r in message.reserved_range)


def compare_type(type_name: str, recorded: descriptor_pb2.FileDescriptorSet, report: CompatReport) -> None:
    """Compare one recorded type (and the message types its fields use) with the current code."""
    old = _index(recorded)
    cls = registry.lookup(type_name)
    if cls is None:
        report.problems.append(f"message {type_name} is recorded in the bag but no longer exists in schema "
                               f"{SCHEMA_VERSION}")
        return
    new = _index(build_file_descriptor_set(cls))
    pending, seen = [type_name], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        was, now = old.get(name), new.get(name)
        if was is None:
            continue  # only in the current schema: an addition
        if now is None:
            report.problems.append(f"message {name} is recorded in the bag but no longer exists")
            continue
        current = {f.number: f for f in now.field}
        for f in was.field:
            g = current.pop(f.number, None)
            where = f"message {name} field {f.number} '{f.name}'"
            if g is None:
                state = "reserved" if _reserved(now, f.number) else "not reserved"
                report.notes.append(f"{where} was removed ({state}); its recorded values are ignored")
                continue
            if f.type != g.type or f.label != g.label or f.type_name.lstrip(".") != g.type_name.lstrip("."):
                report.problems.append(f"{where}: {_describe(f)} in the bag, {_describe(g)} now")
                continue
            if f.name != g.name:
                report.notes.append(f"{where} is now called '{g.name}'")
            if f.type == FieldDescriptorProto.TYPE_MESSAGE:
                pending.append(f.type_name.lstrip("."))
        for g in current.values():
            report.notes.append(f"message {name} field {g.number} '{g.name}' is new (absent from the bag)")


def check_bag(reader: BagReader, channel_ids: Iterable[int] | None = None) -> CompatReport:
    """Compare the schemas of the given channels (default: all) and the bag's major version.

    ``reader`` must have been scanned (schemas and metadata loaded).
    """
    report = CompatReport()
    versions = {reader.provenance.get("schema_version", "")}
    ids = list(reader.channels) if channel_ids is None else list(channel_ids)
    versions |= {reader.channels[i].metadata.get("schema_version", "") for i in ids}
    for version in sorted(v for v in versions if v):
        major = version.split(".", 1)[0]
        if major != str(SCHEMA_MAJOR):
            report.problems.append(f"the bag was recorded with schema {version}, this code speaks {SCHEMA_VERSION}: "
                                   "another major version cannot be replayed")
    schema_ids = {reader.channels[i].schema_id for i in ids}
    for schema_id in sorted(schema_ids):
        schema = reader.schemas.get(schema_id)
        if schema is None or schema.encoding != "protobuf" or schema.name.startswith("foxglove."):
            continue  # not ours: derived viewer channels (tools.viz.scene) are never replayed as bus messages
        try:
            recorded = descriptor_pb2.FileDescriptorSet.FromString(schema.data)
        except DecodeError as exc:
            report.problems.append(f"schema {schema.name}: the embedded FileDescriptorSet does not parse ({exc})")
            continue
        compare_type(schema.name, recorded, report)
    return report


def ensure_compatible(reader: BagReader, channel_ids: Iterable[int] | None = None) -> CompatReport:
    """check_bag, raising SchemaIncompatible with every problem listed."""
    report = check_bag(reader, channel_ids)
    if not report.ok:
        raise SchemaIncompatible(f"{reader.path} cannot be used with schema {SCHEMA_VERSION}:\n  "
                                 + "\n  ".join(report.problems))
    return report
