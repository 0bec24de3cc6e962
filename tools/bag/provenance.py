"""The provenance a bag carries: what produced the run, so a bag explains itself.

The runner passes what it knows (scenario, policy sha256, seed, randomization
hash) as ``--meta KEY=VALUE`` or a JSON file; the recorder adds what it can
find out itself (schema version, git commit, host, clocks). Everything lands
in the MCAP metadata record named ``roarm-hil``, written before the first
message so even a bag cut short by SIGKILL keeps it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

from bus.errors import HilError
from schemas import SCHEMA_MAJOR, SCHEMA_VERSION

METADATA_NAME = "roarm-hil"
SUMMARY_NAME = "roarm-hil.streams"
# Keys the runner is expected to fill; shown first by ``hil bag info``.
RUN_KEYS = ("scenario", "policy_sha256", "seed", "randomization_hash")
_REPO = Path(__file__).resolve().parent.parent.parent


class ProvenanceError(HilError, ValueError):
    """A --meta/--meta-json value that cannot be used, with what is wrong."""


def parse_meta(pairs: tuple[str, ...] | list[str], json_file: Path | None = None) -> dict[str, str]:
    """KEY=VALUE pairs and a flat JSON object, as MCAP metadata (strings only).

    Non-string JSON values are stored JSON-encoded, so a seed of 7 reads back
    as "7" and a list stays a parseable list. Pairs win over the file.
    """
    meta: dict[str, str] = {}
    if json_file is not None:
        try:
            data = json.loads(Path(json_file).read_text())
        except (OSError, ValueError) as exc:
            raise ProvenanceError(f"cannot read --meta-json {json_file}: {exc}") from None
        if not isinstance(data, dict):
            raise ProvenanceError(f"--meta-json {json_file} must hold a JSON object, not {type(data).__name__}")
        for key, value in data.items():
            meta[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ProvenanceError(f"--meta takes KEY=VALUE, got {pair!r}")
        meta[key.strip()] = value
    return meta


def git_commit(repo: Path = _REPO) -> str:
    """HEAD of the checkout this code runs from (with "-dirty" for local edits), or "unknown"."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def provenance(meta: dict[str, str]) -> dict[str, str]:
    """The ``roarm-hil`` metadata record: the runner's facts plus the recorder's own.

    log_time in the bag is CLOCK_MONOTONIC of the recording host (the clock
    every sender stamps with); the wall/monotonic pair taken here converts it
    to calendar time.
    """
    record = {key: "" for key in RUN_KEYS}
    record.update(meta)
    record.update(
        {
            "schema_version": SCHEMA_VERSION,
            "schema_major": str(SCHEMA_MAJOR),
            "git_commit": git_commit(),
            "host": socket.gethostname(),
            "recorder_pid": str(os.getpid()),
            "clock": "monotonic",
            "start_wall_ns": str(time.time_ns()),
            "start_monotonic_ns": str(time.monotonic_ns()),
        }
    )
    return record
