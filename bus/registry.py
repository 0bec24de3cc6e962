"""Protobuf full name -> message class, for every message of ``schemas/``.

Generic tools (echo, recorder, replay) decode payloads by the type named in
the envelope header, so they need no knowledge of which topic carries what.
Foxglove's image messages (schemas/foxglove.py) are registered the same way.
"""

from __future__ import annotations

from google.protobuf.message import Message

from schemas import foxglove, messages_pb2, services_pb2

MessageClass = type[Message]


def _collect(*modules: object) -> dict[str, MessageClass]:
    table: dict[str, MessageClass] = {}
    for module in modules:
        descriptor = module.DESCRIPTOR  # type: ignore[attr-defined]
        for name in descriptor.message_types_by_name:
            cls = getattr(module, name)
            table[cls.DESCRIPTOR.full_name] = cls
    return table


TYPES: dict[str, MessageClass] = {
    **_collect(messages_pb2, services_pb2),
    **{cls.DESCRIPTOR.full_name: cls for cls in foxglove.MESSAGES},
}


def lookup(full_name: str) -> MessageClass | None:
    """The class for a protobuf full name, or None when the name is unknown."""
    return TYPES.get(full_name)


def full_name(message: Message) -> str:
    return message.DESCRIPTOR.full_name
