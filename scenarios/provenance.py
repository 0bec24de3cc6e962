"""Where a run's inputs came from, so a report can be traced and repeated."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

from schemas import SCHEMA_VERSION


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit(folder: Path) -> tuple[str | None, bool | None]:
    """The commit checked out in ``folder`` and whether the tree has changes; (None, None) outside git."""
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head, bool(status.strip())


def provenance(scenario_path: Path, scenario_sha256: str, policy_file: Path | None, seed: int) -> dict[str, Any]:
    commit, dirty = git_commit(scenario_path.resolve().parent)
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "scenario_sha256": scenario_sha256,
        "policy_file": str(policy_file) if policy_file else None,
        "policy_sha256": sha256_file(policy_file) if policy_file else None,
        "seed": seed,
        "randomization_hash": None,  # filled in by the robot's reset
        "schema_version": SCHEMA_VERSION,
    }
