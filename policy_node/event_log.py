"""JSON-lines log of the policy node's events, with the obs_seq as correlation id.

The bus carries events rate-limited (a flood must not drown the bus); this
file gets every one, so a deadline-miss burst can be matched step by step
with a recorded run by ``obs_seq``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

from schemas import messages_pb2


class EventLog:
    def __init__(self, path: Path | None, node: str) -> None:
        self.node = node
        self._file: TextIO | None = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the node's life

    def write(self, severity: int, code: str, text: str, obs_seq: int | None = None) -> None:
        if self._file is None:
            return
        record = {
            "stamp_ns": time.monotonic_ns(),
            "wall_time": time.time(),
            "node": self.node,
            "severity": messages_pb2.Severity.Name(severity),  # type: ignore[arg-type]
            "code": code,
            "text": text,
            "obs_seq": obs_seq,
        }
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as exc:  # the log is a diagnostic: losing it must not stop the node
            print(f"[{self.node}] events file no longer writable, stopped logging to it: {exc}", file=sys.stderr)
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
