"""Running a ``hil bench ...`` in a test: the figures are not judged here, only that it ran through and said so."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import HIL


def run_bench(*args: str, timeout: float = 240) -> tuple[str, int, int]:
    """stdout and the (met, missed) of the last line, ``targets: N met, M missed``; the exit status must follow
    it (1 when a target was missed, which a busy machine may do, 0 otherwise)."""
    result = subprocess.run([HIL, "bench", *args], capture_output=True, text=True, timeout=timeout)
    out = result.stdout
    verdict = re.search(r"^targets: (\d+) met, (\d+) missed", out.splitlines()[-1] if out else "")
    assert verdict, out + result.stderr
    met, missed = int(verdict.group(1)), int(verdict.group(2))
    assert result.returncode == (1 if missed else 0), out + result.stderr
    return out, met, missed
