"""``hil bench sim`` runs end to end and prints every figure beside its baselines."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.bench_run import run_bench


@pytest.mark.slow
def test_bench_sim_prints_rates_baselines_and_jitter() -> None:
    out, met, missed = run_bench("sim", "--backend", "mock", "--seconds", "0.5")
    assert met + missed >= 4  # steps/s, CPU/step, share of the floor, jitter
    assert re.search(r"raw pyzmq REQ/REP round trip .* p50 [\d.]+ us", out)
    assert re.search(r"raw pyzmq PUB/SUB ping-pong.* [\d,]+ round trips/s", out)
    row = re.search(r"^mock\s+([\d,]+)\s+3,000", out, re.MULTILINE)
    assert row and int(row.group(1).replace(",", "")) > 0
    # The same loop with both processes on one core, shown beside the default (not judged).
    assert re.search(r"^mock \(CPU \d+\)\s+[\d,]+\s", out, re.MULTILINE), out
    # Where the node's CPU per step goes: every phase of the loop, in its order, beside the process's total.
    phases = re.search(r"^  mock\s*: wait (\d+) \+ receive (\d+) \+ check (\d+) \+ physics (\d+) \+ state (\d+) \+ "
                       r"publish (\d+) = (\d+) us main thread, of (\d+) us/step", out, re.MULTILINE)
    assert phases, out
    parts = [int(v) for v in phases.groups()]
    assert all(v > 0 for v in parts[:6]) and parts[7] > 0
    assert abs(sum(parts[:6]) - parts[6]) <= 6  # the shown parts add up (each rounded)
    assert re.search(r"check_command [\d.]+ us per call in a tight loop, [\d.]+ us right after reading 8 MB", out), out
    assert re.search(r"^normal\s+[\d.]+\s+[\d.]+\s+[\d.]+", out, re.MULTILINE)
    assert re.search(r"^SCHED_FIFO 10\s+[\d.]+", out, re.MULTILINE)


def test_responder_entry_point_says_how_to_use_it() -> None:
    run = subprocess.run([sys.executable, "-m", "tools.bench.lockstep"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "usage: python -m tools.bench.lockstep responder RUN_DIR [CPUS]" in run.stderr
