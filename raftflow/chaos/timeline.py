"""Load over a chaos run, as the workload saw it: acknowledged starts, completions, errors.

`buckets` turns the raw records into fixed-width buckets for the report (pure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from raftflow.chaos.outcome import TimeBucket

BUCKETS_MAX = 10_000  # a 10-minute run at 1 s is 600; wider buckets beyond this


@dataclass(slots=True)
class Timeline:
    """Seconds since the run began."""

    start_acks_s: list[float] = field(default_factory=list)
    completions: list[tuple[float, float]] = field(default_factory=list)  # (at, latency s)
    errors_s: list[float] = field(default_factory=list)


def _percentile_ms(latencies_s: list[float], fraction: float) -> float | None:
    if not latencies_s:
        return None
    ordered = sorted(latencies_s)
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return round(ordered[rank] * 1000, 1)


def buckets(timeline: Timeline, *, end_s: float, width_s: float = 1.0) -> tuple[TimeBucket, ...]:
    """Buckets [0, width), [width, 2 width), ... up to `end_s` (records past it are dropped)."""
    assert width_s > 0 and end_s >= 0
    width_s = max(width_s, end_s / BUCKETS_MAX)
    count = max(1, math.ceil(end_s / width_s))
    starts = [0] * count
    errors = [0] * count
    latencies: list[list[float]] = [[] for _ in range(count)]

    def slot(at_s: float) -> int | None:
        index = int(at_s // width_s)
        return index if 0 <= index < count else None

    for at_s in timeline.start_acks_s:
        if (i := slot(at_s)) is not None:
            starts[i] += 1
    for at_s in timeline.errors_s:
        if (i := slot(at_s)) is not None:
            errors[i] += 1
    for at_s, latency_s in timeline.completions:
        if (i := slot(at_s)) is not None:
            latencies[i].append(latency_s)
    return tuple(TimeBucket(start_s=round(i * width_s, 3), width_s=width_s, starts=starts[i],
                            completions=len(latencies[i]), errors=errors[i],
                            latency_p50_ms=_percentile_ms(latencies[i], 0.5),
                            latency_p99_ms=_percentile_ms(latencies[i], 0.99))
                 for i in range(count))
