"""Latency and deadline figures of the policy node, SLA alerts, and their outputs.

Two latencies per command, both on the host's monotonic clock:
``recv_to_send`` (state received -> command sent: the policy node's own
cost) and ``stamp_to_send`` (state stamped by the robot -> command sent:
what the robot sees, transport included). Each keeps whole-run percentiles
and a sliding window (bus.latency.LatencyStats). SLA alerts fire when the
window's p95 or the deadline-miss rate crosses its limit, at most once per
cooldown per kind, so a bad minute is one alert, not thousands.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from bus.latency import LatencyStats, Summary


# Commands recorded before their latencies are sorted in regardless of readers (bounds the list).
_PENDING_MAX = 4096


@dataclass(frozen=True)
class SlaConfig:
    """Limits that raise an alert event; ``min_samples`` avoids alerts on a handful of steps."""

    p95_us: float = 2000.0
    miss_rate: float = 0.01
    cooldown_s: float = 10.0
    min_samples: int = 50
    window: int = 1000


@dataclass(frozen=True)
class Alert:
    code: str
    text: str


class PolicyMetrics:
    def __init__(self, sla: SlaConfig = SlaConfig()) -> None:
        self.sla = sla
        self.recv_to_send = LatencyStats(sla.window)
        self.stamp_to_send = LatencyStats(sla.window)
        self.inference = LatencyStats(sla.window)
        self.commands = 0
        self.misses = 0
        self._recent_misses: deque[bool] = deque(maxlen=sla.window)
        self._last_alert: dict[str, float] = {}
        self._pending: list[tuple[int, int, int, float]] = []

    def record(self, recv_ns: int, stamp_ns: int, send_ns: int, inference_s: float, missed: bool) -> None:
        """One command sent in answer to a state (hold or not).

        The latencies are kept as they come and sorted into their statistics
        by the next reader (the node's housekeeping, once a second): a step
        pays one list append instead of three histogram updates.
        """
        self.commands += 1
        self._pending.append((recv_ns, stamp_ns, send_ns, inference_s))
        if len(self._pending) >= _PENDING_MAX:
            self._fold()
        self._count_miss(missed)

    def _fold(self) -> None:
        pending, self._pending = self._pending, []
        recv_to_send, stamp_to_send, inference = self.recv_to_send.add, self.stamp_to_send.add, self.inference.add
        for recv_ns, stamp_ns, send_ns, inference_s in pending:
            recv_to_send((send_ns - recv_ns) * 1e-9)
            if stamp_ns > 0:
                stamp_to_send((send_ns - stamp_ns) * 1e-9)
            inference(inference_s)

    def record_stale_hold(self) -> None:
        """A hold sent because no fresh state came: a miss with no latency to add."""
        self.commands += 1
        self._count_miss(True)

    def _count_miss(self, missed: bool) -> None:
        self.misses += int(missed)
        self._recent_misses.append(missed)

    @property
    def miss_rate(self) -> float:
        return self.misses / self.commands if self.commands else 0.0

    @property
    def recent_miss_rate(self) -> float:
        return sum(self._recent_misses) / len(self._recent_misses) if self._recent_misses else 0.0

    def alerts(self, now: float | None = None) -> list[Alert]:
        """SLA breaches over the window, each kind at most once per cooldown."""
        now = time.monotonic() if now is None else now
        found: list[Alert] = []
        window = self._stats()["recv_to_send"].recent()
        if window.count >= self.sla.min_samples and window.p95_s * 1e6 > self.sla.p95_us:
            found.append(Alert("sla.p95", f"recv->send p95 {window.p95_s * 1e6:.0f} us over the last "
                                          f"{window.count} commands exceeds {self.sla.p95_us:.0f} us"))
        if len(self._recent_misses) >= self.sla.min_samples and self.recent_miss_rate > self.sla.miss_rate:
            found.append(Alert("sla.miss_rate", f"deadline-miss rate {self.recent_miss_rate:.2%} over the last "
                                                f"{len(self._recent_misses)} commands exceeds {self.sla.miss_rate:.2%}"))
        due = []
        for alert in found:
            last = self._last_alert.get(alert.code)
            if last is None or now - last >= self.sla.cooldown_s:
                self._last_alert[alert.code] = now
                due.append(alert)
        return due

    def as_metrics(self) -> dict[str, float]:
        """Flat figures for ``info.metrics`` (microseconds)."""
        out: dict[str, float] = {
            "commands": float(self.commands),
            "deadline_miss": float(self.misses),
            "deadline_miss_rate": self.miss_rate,
            "deadline_miss_rate_window": self.recent_miss_rate,
        }
        for name, stats in self._stats().items():
            out.update(_finite(stats.total().as_dict(f"{name}.run.")))
            out.update(_finite(stats.recent().as_dict(f"{name}.window.")))
        return out

    def _stats(self) -> dict[str, LatencyStats]:
        """The three statistics, every recorded command in them."""
        self._fold()
        return {"recv_to_send": self.recv_to_send, "stamp_to_send": self.stamp_to_send, "inference": self.inference}

    def write_textfile(self, path: Path, node: str) -> None:
        """Write the figures in Prometheus text format (node_exporter's textfile collector).

        ``write_to_textfile`` writes a temporary file and renames it, so a
        scraper never reads half a file.
        """
        from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

        registry = CollectorRegistry()
        labels = {"node": node}
        Gauge("roarm_policy_commands_total", "Commands sent (holds included)", ["node"], registry=registry).labels(
            **labels).set(self.commands)
        Gauge("roarm_policy_deadline_miss_total", "Holds sent by the watchdog", ["node"], registry=registry).labels(
            **labels).set(self.misses)
        rate = Gauge("roarm_policy_deadline_miss_rate", "Deadline misses per command", ["node", "window"],
                     registry=registry)
        rate.labels(node=node, window="run").set(self.miss_rate)
        rate.labels(node=node, window="recent").set(self.recent_miss_rate)
        latency = Gauge("roarm_policy_latency_seconds", "Latency percentiles",
                        ["node", "kind", "window", "quantile"], registry=registry)
        for kind, stats in self._stats().items():
            for window, summary in (("run", stats.total()), ("recent", stats.recent())):
                for quantile, value in _quantiles(summary).items():
                    if math.isfinite(value):
                        latency.labels(node=node, kind=kind, window=window, quantile=quantile).set(value)
        write_to_textfile(str(path), registry)


def _quantiles(summary: Summary) -> dict[str, float]:
    return {"0.5": summary.p50_s, "0.9": summary.p90_s, "0.95": summary.p95_s, "0.99": summary.p99_s}


def _finite(values: dict[str, float]) -> dict[str, float]:
    """Drop NaN figures (no samples yet): NaN in info.metrics only confuses readers."""
    return {k: v for k, v in values.items() if math.isfinite(v)}
