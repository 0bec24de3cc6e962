"""What a run looked like over time, on the robot's clock: the data behind the
plots of ``report.html`` and ``hil bag plot``.

One ``Trace`` comes either from the runner (``scenarios.trace_recorder``,
every run, recorded or not) or from a bag (``tools.bag.series``), so the same
plotting code (``scenarios.plots``) draws both. Times are simulated seconds
(``JointState.sim_time``) since the first reset, summed over episodes: a
lockstep run 50x faster than real time plots exactly like a real-time one.
Distances are stored in SI units (m, rad); the plots show mm for TCP goals.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus.errors import HilError

TRACE_FORMAT = 1
TRACE_FILE = "trace.json"

# Goal outcomes as the report shows them.
REACHED, MISSED, CUT_SHORT, NOT_RUN = "reached", "missed", "cut short", "not run"


class TraceError(HilError, ValueError):
    """A trace file that cannot be read back."""


@dataclass
class GoalSpan:
    """One goal as it happened: where on the run clock it started and how it ended."""

    index: int
    id: str
    kind: str  # "tcp" (judged in metres) or "joints" (radians)
    tolerance: float  # m or rad
    timeout_s: float
    start_t: float = math.nan  # run clock (s); NaN: it never started
    reached_after_s: float | None = None  # sim seconds from its start to reached (judged)
    status: str = NOT_RUN
    note: str = ""

    @property
    def unit(self) -> str:
        return "mm" if self.kind == "tcp" else "rad"

    @property
    def scale(self) -> float:
        """Stored unit -> shown unit (m -> mm for TCP goals)."""
        return 1000.0 if self.kind == "tcp" else 1.0


@dataclass
class EventMark:
    t: float  # run clock (s); 0 for what happened before the first state
    node: str
    severity: str  # DEBUG, INFO, WARNING, ERROR
    code: str
    text: str = ""


@dataclass
class Thumbnail:
    """A camera frame for the report (issue 14 fills these; the page shows them when present)."""

    camera: str
    t: float
    mime: str  # image/jpeg or image/png
    data: bytes


@dataclass
class Trace:
    """Per-state rows (columns of equal length) plus goals, events and thumbnails."""

    joint_names: list[str] = field(default_factory=list)
    t: list[float] = field(default_factory=list)
    position: list[list[float]] = field(default_factory=list)
    command: list[list[float] | None] = field(default_factory=list)  # the command answering this state
    hold: list[bool] = field(default_factory=list)  # that command was a watchdog hold
    goal_index: list[int] = field(default_factory=list)  # -1: no goal active
    goal_elapsed: list[float] = field(default_factory=list)  # sim seconds since that goal started
    distance: list[float | None] = field(default_factory=list)  # m (tcp) or rad (joints)
    latency_ms: list[float | None] = field(default_factory=list)  # state stamp -> first command's stamp
    goals: list[GoalSpan] = field(default_factory=list)
    events: list[EventMark] = field(default_factory=list)
    thumbnails: list[Thumbnail] = field(default_factory=list)
    episodes: list[float] = field(default_factory=list)  # run clock at each reset
    latency_bound_ms: float | None = None
    stride: int = 1  # every stride-th state was kept (long runs are thinned)
    source: str = "runner"

    def __len__(self) -> int:
        return len(self.t)

    # -- file -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TRACE_FORMAT,
            "clock": "sim_time",
            "source": self.source,
            "stride": self.stride,
            "joint_names": self.joint_names,
            "latency_bound_ms": self.latency_bound_ms,
            "episodes": [_num(v) for v in self.episodes],
            "rows": {
                "t": [_num(v) for v in self.t],
                "position": [[_num(v) for v in row] for row in self.position],
                "command": [None if row is None else [_num(v) for v in row] for row in self.command],
                "hold": self.hold,
                "goal_index": self.goal_index,
                "goal_elapsed": [_num(v) for v in self.goal_elapsed],
                "distance": [_num(v) for v in self.distance],
                "latency_ms": [_num(v) for v in self.latency_ms],
            },
            "goals": [{**vars(g), "start_t": _num(g.start_t)} for g in self.goals],
            "events": [vars(e) for e in self.events],
            "thumbnails": [{"camera": th.camera, "t": th.t, "mime": th.mime,
                            "data": base64.b64encode(th.data).decode("ascii")} for th in self.thumbnails],
        }

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False))
        return path

    @classmethod
    def load(cls, path: Path) -> Trace:
        try:
            data = json.loads(path.read_text())
            return cls.from_dict(data)
        except OSError as exc:
            raise TraceError(f"cannot read {path}: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise TraceError(f"{path} is not a trace this version reads ({exc})") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        if data.get("format") != TRACE_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {TRACE_FORMAT}")
        rows = data["rows"]
        goals = [GoalSpan(**{**g, "start_t": _nan(g["start_t"])}) for g in data["goals"]]
        return cls(
            joint_names=list(data["joint_names"]),
            t=[float(v) for v in rows["t"]],
            position=[[_nan(v) for v in row] for row in rows["position"]],
            command=[None if row is None else [_nan(v) for v in row] for row in rows["command"]],
            hold=[bool(v) for v in rows["hold"]],
            goal_index=[int(v) for v in rows["goal_index"]],
            goal_elapsed=[_nan(v) for v in rows["goal_elapsed"]],
            distance=list(rows["distance"]),
            latency_ms=list(rows["latency_ms"]),
            goals=goals,
            events=[EventMark(**e) for e in data["events"]],
            thumbnails=[Thumbnail(th["camera"], float(th["t"]), th["mime"], base64.b64decode(th["data"]))
                        for th in data.get("thumbnails", [])],
            episodes=[_nan(v) for v in data.get("episodes", [])],
            latency_bound_ms=data.get("latency_bound_ms"),
            stride=int(data.get("stride", 1)),
            source=str(data.get("source", "runner")),
        )


def _num(value: float | None) -> float | None:
    """JSON has no NaN: None; six significant digits are plenty for a plot."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
