"""Reading a bag record by record, tolerating a file cut short by SIGKILL or a crash.

The reader streams the file from the start (mcap's StreamReader) instead of
seeking to the summary at its end: a bag whose recorder was killed has no
summary or footer, and everything up to its last flushed chunk must still be
usable. Messages decode from the schemas embedded in the bag, never from
``schemas/``, so old bags stay readable after the code moved on.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from mcap.exceptions import EndOfFile, McapError
from mcap.records import Channel, Metadata, Schema
from mcap.records import Message as McapMessage
from mcap.stream_reader import StreamReader
from mcap_protobuf.decoder import DecoderFactory
from zstandard import ZstdError

from bus.errors import Failed
from tools.bag.provenance import METADATA_NAME, SUMMARY_NAME


class BagReadError(Failed, RuntimeError):
    """The file is not a readable bag, said plainly."""


@dataclass(frozen=True, slots=True)
class BagMessage:
    channel: Channel
    log_time: int
    publish_time: int
    sequence: int
    data: bytes

    @property
    def topic(self) -> str:
        return self.channel.topic

    @property
    def src(self) -> str:
        return self.channel.metadata.get("src", "")

    @property
    def role(self) -> str:
        return self.channel.metadata.get("role", "")


@dataclass
class BagReader:
    """One pass over a bag: ``messages()`` yields while schemas, channels and
    metadata fill in as their records go by. ``truncated`` says why reading
    stopped early ("" for a complete file)."""

    path: Path
    schemas: dict[int, Schema] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    truncated: str = ""
    complete: bool = False
    _decoders: dict[int, Callable[[bytes], Any]] = field(default_factory=dict)
    _factory: DecoderFactory = field(default_factory=DecoderFactory)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_file():
            raise BagReadError(f"no bag at {self.path}")
        with open(self.path, "rb") as handle:
            if handle.read(8) != b"\x89MCAP0\r\n":
                raise BagReadError(f"{self.path} is not an MCAP file (bad magic)")

    def messages(self) -> Iterator[BagMessage]:
        """Every message in file order (the recorder writes each batch in sender-stamp order)."""
        with open(self.path, "rb") as handle:
            records = StreamReader(handle, record_size_limit=1 << 30).records
            while True:
                try:
                    record = next(records)
                except StopIteration:
                    self.complete = True
                    return
                except (EndOfFile, McapError, ZstdError, struct.error, ValueError, EOFError) as exc:
                    # A torn last record: everything before it is good.
                    self.truncated = f"stopped at byte {handle.tell()}: {type(exc).__name__} {exc}".strip()
                    return
                if isinstance(record, McapMessage):
                    channel = self.channels.get(record.channel_id)
                    if channel is not None:
                        yield BagMessage(channel, record.log_time, record.publish_time, record.sequence, record.data)
                elif isinstance(record, Schema):
                    self.schemas[record.id] = record
                elif isinstance(record, Channel):
                    self.channels[record.id] = record
                elif isinstance(record, Metadata):
                    self.metadata[record.name] = dict(record.metadata)

    def scan(self) -> BagReader:
        """Read through once for schemas, channels and metadata (messages discarded)."""
        for _ in self.messages():
            pass
        return self

    def decode(self, message: BagMessage) -> Message:
        """The protobuf message, built from the bag's own FileDescriptorSet."""
        decoder = self._decoders.get(message.channel.id)
        if decoder is None:
            schema = self.schemas.get(message.channel.schema_id)
            if schema is None:
                raise BagReadError(f"channel {message.topic} has no schema in {self.path}")
            decoder = self._factory.decoder_for(message.channel.message_encoding, schema)
            if decoder is None:
                raise BagReadError(f"channel {message.topic}: cannot decode {message.channel.message_encoding!r}")
            self._decoders[message.channel.id] = decoder
        return decoder(message.data)

    @property
    def provenance(self) -> dict[str, str]:
        return self.metadata.get(METADATA_NAME, {})

    @property
    def stream_summary(self) -> dict[str, str]:
        """The recorder's own counts, present when it closed the bag properly."""
        return self.metadata.get(SUMMARY_NAME, {})
