"""Writing bus envelopes into an MCAP file, bytes as they came off the wire.

Why it is built this way:
- The file is opened, probe-written and flushed before anything subscribes,
  so an unwritable path or a full disk is a clear error at start, never a
  traceback an hour into a run.
- Payloads are stored as received (no decode/re-encode): the recorder costs
  little and the bag holds exactly what the nodes saw.
- Chunks are finished and flushed to the OS every ``flush_interval_s``, so a
  SIGKILLed recorder leaves a file readable up to its last flush.
- Each protobuf type is stored once as a complete FileDescriptorSet, so the
  bag decodes with no .proto files around (Foxglove, the mcap CLI, Python).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mcap.writer import CompressionType, Writer
from mcap_protobuf.schema import build_file_descriptor_set

from bus import registry
from bus.envelope import Envelope
from bus.errors import Failed
from schemas import SCHEMA_VERSION
from tools.bag.chunk_append import ChunkAppender
from tools.bag.drops import DropCounter, StreamCount
from tools.bag.provenance import METADATA_NAME, SUMMARY_NAME
from tools.viz.scene import VizMessage, schema_bytes

LIBRARY = "roarm-hil recorder"
# MCAP's sequence field is 32 bits; envelope seqs are stored modulo 2**32.
_SEQ_MASK = 0xFFFFFFFF


class BagWriteError(Failed, RuntimeError):
    """The bag cannot be written (path, permissions, disk full), said plainly."""


@dataclass(frozen=True)
class WriterConfig:
    # Chunks close at this size or at the flush interval, whichever comes first.
    # The mcap writer keeps an index entry (~1-2 KB) per chunk in memory until
    # the bag is closed, so fewer, larger chunks keep a long recording's memory
    # flat; the interval is also what a SIGKILL can lose at most.
    chunk_size: int = 1024 * 1024
    flush_interval_s: float = 1.0
    # Refuse to start with less free space than this on the bag's file system.
    min_free_bytes: int = 16 * 1024 * 1024
    compression: str = "zstd"


def _describe(exc: OSError, path: Path) -> str:
    return f"cannot write bag {path}: {exc.strerror or exc}"


class BagWriter:
    """One open MCAP file; ``write`` envelopes, then ``close`` (idempotent)."""

    def __init__(self, path: Path, provenance: dict[str, str], config: WriterConfig | None = None) -> None:
        self.path = Path(path)
        self.config = config or WriterConfig()
        self.drops = DropCounter()
        self._schemas: dict[str, int] = {}
        self._channels: dict[tuple[str, ...], int] = {}
        # (role, topic, src, origin) -> (channel id, that stream's drop counter): the hot path's one lookup
        self._streams: dict[tuple[str, str, str, str], tuple[int, StreamCount]] = {}
        self._next_flush = time.monotonic() + self.config.flush_interval_s
        self._closed = False
        self._file = self._open()
        try:
            compression = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4,
                           "none": CompressionType.NONE}[self.config.compression]
            self._writer = Writer(self._file, chunk_size=self.config.chunk_size, compression=compression)
            self._writer.start(profile="", library=LIBRARY)
            # (channel, log_time, data, publish_time, sequence): into the open chunk directly where the
            # installed mcap allows (tools/bag/chunk_append.py), else through the package's add_message
            appender = ChunkAppender.attach(self._writer)
            self._add_message = appender.append if appender is not None else self._writer.add_message
            self._writer.add_metadata(METADATA_NAME, provenance)
            self._sync()
        except OSError as exc:
            _close_quietly(self._file)
            raise BagWriteError(_describe(exc, self.path)) from None

    def _open(self) -> BinaryIO:
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise BagWriteError(f"cannot write bag {self.path}: folder {parent} does not exist")
        try:
            handle = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise BagWriteError(_describe(exc, self.path)) from None
        if stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            free = shutil.disk_usage(parent).free
            if free < self.config.min_free_bytes:
                handle.close()
                raise BagWriteError(
                    f"cannot write bag {self.path}: only {free / 2**20:.1f} MiB free on its disk "
                    f"(need {self.config.min_free_bytes / 2**20:.0f} MiB)"
                )
        return handle

    def _sync(self) -> None:
        """Push everything to the OS (and the disk, for a regular file): errors surface here."""
        self._writer.flush()
        self._file.flush()
        if stat.S_ISREG(os.fstat(self._file.fileno()).st_mode):
            os.fsync(self._file.fileno())

    # -- writing ----------------------------------------------------------------
    def _schema_id(self, type_name: str) -> int:
        schema_id = self._schemas.get(type_name)
        if schema_id is None:
            cls = registry.lookup(type_name)
            if cls is None:  # decode() already rejects unknown types; be explicit anyway
                raise BagWriteError(f"no schema for message type {type_name!r}")
            data = build_file_descriptor_set(cls).SerializeToString()
            schema_id = self._schemas[type_name] = self._writer.register_schema(type_name, "protobuf", data)
        return schema_id

    def _channel_id(self, role: str, envelope: Envelope, origin: str) -> int:
        key = (role, envelope.topic, envelope.src, origin)
        channel_id = self._channels.get(key)
        if channel_id is None:
            metadata = {"role": role, "src": envelope.src, "type": envelope.type,
                        "schema_version": "{}.{}".format(*envelope.version)}
            if origin != envelope.topic:
                metadata["encoded_from"] = origin  # a raw camera frame stored as JPEG (tools/bag/frames.py)
            channel_id = self._writer.register_channel(envelope.topic, "protobuf", self._schema_id(envelope.type),
                                                       metadata)
            self._channels[key] = channel_id
        return channel_id

    def write(self, role: str, envelope: Envelope, origin: str = "") -> int:
        """Store one envelope received from ``role``'s PUB; returns the seq gap before it.

        The payload goes in as it came off the wire; one lookup per message
        finds the stream's channel and its drop counter. ``origin``: the
        topic it was received on when that differs (a raw frame re-encoded as
        JPEG): drops are counted on the stream received.
        """
        origin = origin or envelope.topic
        key = (role, envelope.topic, envelope.src, origin)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = (self._channel_id(role, envelope, origin),
                                           self.drops.stream(origin, envelope.src))
        seq = envelope.seq
        try:
            self._add_message(stream[0], envelope.recv_ns, envelope.payload, envelope.sent_ns, seq & _SEQ_MASK)
        except OSError as exc:
            raise BagWriteError(_describe(exc, self.path)) from None
        return stream[1].observe(seq)

    def write_viz(self, message: VizMessage) -> None:
        """A message derived for viewers (Foxglove's 3D panel): channels of role "recorder"."""
        key = ("recorder", message.topic, message.schema)
        channel_id = self._channels.get(key)
        try:
            if channel_id is None:
                encoding, data = schema_bytes(message.schema)
                schema_id = self._schemas.get(message.schema)
                if schema_id is None:
                    schema_id = self._schemas[message.schema] = self._writer.register_schema(
                        message.schema, encoding, data)
                channel_id = self._channels[key] = self._writer.register_channel(
                    message.topic, message.encoding, schema_id,
                    {"role": "recorder", "src": "recorder", "type": message.schema, "derived": "true"})
            self._add_message(channel_id, message.log_time_ns, message.data, message.publish_time_ns, 0)
        except OSError as exc:
            raise BagWriteError(_describe(exc, self.path)) from None

    def add_attachment(self, name: str, media_type: str, data: bytes, log_time_ns: int) -> None:
        try:
            self._writer.add_attachment(create_time=log_time_ns, log_time=log_time_ns, name=name,
                                        media_type=media_type, data=data)
        except OSError as exc:
            raise BagWriteError(_describe(exc, self.path)) from None

    def add_metadata(self, name: str, record: dict[str, str]) -> None:
        """A metadata record (written at once, outside the chunks)."""
        try:
            self._writer.add_metadata(name, record)
        except OSError as exc:
            raise BagWriteError(_describe(exc, self.path)) from None

    def flush_if_due(self, now: float | None = None) -> bool:
        """Finish the open chunk when the flush interval has passed (SIGKILL safety)."""
        now = time.monotonic() if now is None else now
        if now < self._next_flush:
            return False
        self._next_flush = now + self.config.flush_interval_s
        try:
            self._writer.flush()
            self._file.flush()
        except OSError as exc:
            raise BagWriteError(_describe(exc, self.path)) from None
        return True

    def summary(self) -> dict[str, str]:
        """Per-stream counts and drops, as the ``roarm-hil.streams`` metadata record."""
        record = {f"{topic} from {src}": json.dumps(s.as_dict(), sort_keys=True)
                  for (topic, src), s in sorted(self.drops.streams.items())}
        record["total"] = json.dumps({"received": self.drops.received, "dropped": self.drops.dropped,
                                      "schema_version": SCHEMA_VERSION})
        return record

    def close(self) -> None:
        """Write the stream summary, the MCAP summary section and footer; close the file."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.add_metadata(SUMMARY_NAME, self.summary())
            self._writer.finish()
            self._file.flush()
            if stat.S_ISREG(os.fstat(self._file.fileno()).st_mode):
                os.fsync(self._file.fileno())
        except OSError as exc:
            raise BagWriteError(_describe(exc, self.path)) from None
        finally:
            _close_quietly(self._file)


def _close_quietly(handle: BinaryIO) -> None:
    """Close after a write error: the close's own flush fails the same way, and
    the error that matters has already been raised."""
    try:
        handle.close()
    except OSError:
        pass
