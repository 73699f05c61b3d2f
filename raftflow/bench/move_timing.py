"""Replica moves as seen from outside, and the summaries `raftflow bench moves` prints (pure).

A move shows in `GET /api/v1/cluster/status` under `moves` from the map epoch that applied its
StartMove to the one that applied its FinishMove (or AbortMove): first with `learner` set (the
new replica catches up from snapshot and log), then with `promoted` set (it votes; the old
replica, `leaving`, is still there). `MoveTracker` is fed those lists with the time each was
read and keeps, per move, when it was first seen, first seen promoted, and first seen gone.
Its resolution is the polling period plus the map's propagation to the polled node (a meta
voter learns a map change when it commits, the others within a map-duty round, 0.5 s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from raftflow.bench.load import percentile

MOVES_TRACKED_MAX = 10_000  # a benchmark run makes tens of moves; this only bounds a bug
META_GROUP = -1  # the cluster map's own group; its moves are reported apart from the shards'


@dataclass(frozen=True, slots=True, order=True)
class MoveKey:
    """One move: the group, the replica it adds (None: shrink only) and the one it removes."""

    group: int
    added: str | None
    leaving: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveTiming:
    key: MoveKey
    started_s: float
    promoted_s: float | None  # None: never seen promoted (it went from learner to gone)
    finished_s: float | None  # None: still in progress at the last poll

    @property
    def seconds(self) -> float | None:
        return None if self.finished_s is None else self.finished_s - self.started_s

    @property
    def catch_up_seconds(self) -> float | None:
        """From StartMove to the learner's promotion: the snapshot and log transfer."""
        return None if self.promoted_s is None else self.promoted_s - self.started_s


def move_key(raw: dict[str, object]) -> MoveKey:
    """The key of one entry of the status's `moves` list."""
    group, learner, promoted, leaving = (raw.get("shard"), raw.get("learner"),
                                         raw.get("promoted"), raw.get("leaving"))
    assert isinstance(group, int), raw
    added = learner if learner is not None else promoted
    assert added is None or isinstance(added, str), raw
    assert leaving is None or isinstance(leaving, str), raw
    return MoveKey(group=group, added=added, leaving=leaving)


class MoveTracker:
    """Per-move first-seen times from successive `moves` lists, each read at `now_s`."""

    def __init__(self) -> None:
        self._started: dict[MoveKey, float] = {}
        self._promoted: dict[MoveKey, float] = {}
        self._finished: dict[MoveKey, float] = {}
        self._last_s = float("-inf")

    def observe(self, now_s: float, moves: Sequence[dict[str, object]]) -> None:
        assert now_s >= self._last_s, "observations must come in time order"
        self._last_s = now_s
        current = set()
        for raw in moves:
            key = move_key(raw)
            current.add(key)
            if key not in self._started or key in self._finished:
                # New, or the same move again after it finished (a later identical move).
                assert len(self._started) < MOVES_TRACKED_MAX
                self._started[key] = now_s
                self._promoted.pop(key, None)
                self._finished.pop(key, None)
            if raw.get("learner") is None and key not in self._promoted:
                self._promoted[key] = now_s
        for key in self._started:
            if key not in current and key not in self._finished:
                self._finished[key] = now_s

    @property
    def in_progress(self) -> int:
        return sum(1 for key in self._started if key not in self._finished)

    def timings(self) -> list[MoveTiming]:
        return sorted((MoveTiming(key=key, started_s=started, promoted_s=self._promoted.get(key),
                                  finished_s=self._finished.get(key))
                       for key, started in self._started.items()),
                      key=lambda t: (t.started_s, t.key))


def seconds_summary(values: Sequence[float]) -> dict[str, object]:
    """count, p50 and max (nearest rank), rounded to 0.01 s; None values when empty."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50_s": None, "max_s": None}
    return {"count": len(ordered), "p50_s": round(percentile(ordered, 0.50), 2),
            "max_s": round(ordered[-1], 2)}


def moves_summary(timings: Sequence[MoveTiming]) -> dict[str, object]:
    """Shard moves (the meta group's apart): total and catch-up seconds, unfinished count."""
    shards = [t for t in timings if t.key.group != META_GROUP]
    done = [t for t in shards if t.seconds is not None]
    return {
        "shard_moves": len(shards),
        "unfinished": len(shards) - len(done),
        "move": seconds_summary([t.seconds for t in done if t.seconds is not None]),
        "catch_up": seconds_summary([t.catch_up_seconds for t in done
                                     if t.catch_up_seconds is not None]),
        "meta_moves": len(timings) - len(shards),
        "each": [{"group": t.key.group, "add": t.key.added, "remove": t.key.leaving,
                  "seconds": None if t.seconds is None else round(t.seconds, 2),
                  "catch_up_seconds": None if t.catch_up_seconds is None
                  else round(t.catch_up_seconds, 2)} for t in timings],
    }


def latency_summary(latencies_ms: Sequence[float], *, seconds: float,
                    errors: int) -> dict[str, object]:
    """One window of the steady workload: throughput, p50/p99/max latency, client errors."""
    assert seconds > 0 and errors >= 0
    ordered = sorted(latencies_ms)

    def rank(fraction: float) -> float | None:
        return round(percentile(ordered, fraction), 1) if ordered else None

    return {"seconds": round(seconds, 1), "completed": len(ordered),
            "per_sec": round(len(ordered) / seconds, 1), "p50_ms": rank(0.50),
            "p99_ms": rank(0.99), "max_ms": round(ordered[-1], 1) if ordered else None,
            "errors": errors}
