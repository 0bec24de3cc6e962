"""``hil bench policy`` runs end to end: inference, the closed loops (default and pinned) and where a step's CPU goes."""

from __future__ import annotations

import re

import pytest

from tests.bench_run import run_bench


@pytest.mark.slow
def test_bench_policy_prints_loops_beside_baselines_and_the_phases_of_both_nodes() -> None:
    out, met, missed = run_bench("policy", "--samples", "200", "--seconds", "0.5", timeout=300)
    assert met + missed == 4  # inference, loop p50, loop p99, policy CPU/step
    assert re.search(r"raw pyzmq REQ/REP round trip .* p50 [\d.]+ us", out)
    assert re.search(r"^  session.run\s+p50\s+[\d.]+ us", out, re.MULTILINE)
    for label in (r"reach\.onnx", r"scripted:hold", r"reach\.onnx \(CPU \d+\)"):
        row = re.search(rf"^  {label}\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d,]+)\s+\d+\s+(\d+)\s+(\d+)$",
                        out, re.MULTILINE)
        assert row, f"no closed-loop row for {label}:\n{out}"
        assert int(row.group(2).replace(",", "")) > 0 and int(row.group(3)) > 0 and int(row.group(4)) > 0
    policy = re.search(r"^  policy node: wait \d+ \+ receive \d+ \+ observe \d+ \+ act \d+ \+ send \d+ \+ "
                       r"bookkeeping \d+ = \d+ us main thread, of \d+ us/step", out, re.MULTILINE)
    robot = re.search(r"^  robot node : wait \d+ \+ receive \d+ \+ check \d+ \+ physics \d+ \+ state \d+ \+ "
                      r"publish \d+ = \d+ us main thread", out, re.MULTILINE)
    assert policy and robot, out
