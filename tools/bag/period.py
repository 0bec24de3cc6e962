"""The robot's control period as a bag records it.

Scripted policies derive speed limits from it and the replayed robot reports
it in ``info``, so it must come from the run, not a default: the runner's
"dt" provenance when given, else the median step of JointState.sim_time.
"""

from __future__ import annotations

import statistics

from bus.topics import JOINT_STATE
from tools.bag.node_info import PREFIX
from tools.bag.reader import BagReader

_SAMPLES = 200


def control_period(reader: BagReader) -> float:
    """Seconds per control step, 0.0 when the bag cannot tell."""
    for given in (reader.provenance.get("dt", ""), reader.metadata.get(PREFIX + "robot", {}).get("dt", "")):
        try:
            if float(given) > 0:
                return float(given)
        except ValueError:
            pass
    times: list[float] = []
    for message in reader.messages():
        if message.topic == JOINT_STATE:
            times.append(float(reader.decode(message).sim_time))  # type: ignore[attr-defined]
            if len(times) >= _SAMPLES:
                break
    steps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
    return statistics.median(steps) if steps else 0.0
