"""Goal: `raftflow bench moves` turns what it polled into the right per-move times and summaries.

Method: feed MoveTracker hand-made `moves` lists of the cluster status, with the times they were
read, through each phase of a move (learner, promoted, gone), a move that is still running, a
meta-group move and a repeated identical move; compare the timings and summaries with the
values worked out by hand. Also the window summary of the steady load (move_load.Tally).
"""

from __future__ import annotations

import pytest

from raftflow.bench.move_load import Sample, Tally
from raftflow.bench.move_timing import (
    META_GROUP,
    MoveKey,
    MoveTracker,
    latency_summary,
    move_key,
    moves_summary,
    seconds_summary,
)


def _move(group: int, *, learner: str | None = None, promoted: str | None = None,
          leaving: str | None = None) -> dict[str, object]:
    return {"shard": group, "learner": learner, "promoted": promoted, "leaving": leaving}


def test_a_move_is_timed_from_first_seen_to_first_seen_gone() -> None:
    tracker = MoveTracker()
    tracker.observe(10.0, [_move(3, learner="n4", leaving="n1")])
    tracker.observe(10.5, [_move(3, learner="n4", leaving="n1"),
                           _move(7, learner="n4", leaving="n2")])
    tracker.observe(11.0, [_move(3, promoted="n4", leaving="n1"),
                           _move(7, learner="n4", leaving="n2")])
    tracker.observe(12.0, [_move(7, promoted="n4", leaving="n2")])
    assert tracker.in_progress == 1
    first, second = tracker.timings()
    assert first.key == MoveKey(group=3, added="n4", leaving="n1")
    assert (first.seconds, first.catch_up_seconds) == (2.0, 1.0)
    assert second.key == MoveKey(group=7, added="n4", leaving="n2")
    assert (second.seconds, second.catch_up_seconds) == (None, 1.5)


def test_a_move_never_seen_as_learner_counts_as_promoted_when_first_seen() -> None:
    tracker = MoveTracker()
    tracker.observe(1.0, [_move(2, promoted="n3", leaving="n1")])
    tracker.observe(1.25, [])
    (timing,) = tracker.timings()
    assert (timing.seconds, timing.catch_up_seconds) == (0.25, 0.0)


def test_the_same_move_again_after_it_finished_is_timed_again() -> None:
    tracker = MoveTracker()
    tracker.observe(0.0, [_move(1, learner="n4", leaving="n1")])
    tracker.observe(1.0, [])
    tracker.observe(5.0, [_move(1, learner="n4", leaving="n1")])
    tracker.observe(8.0, [])
    (timing,) = tracker.timings()  # one key: the later move replaces the earlier one
    assert (timing.started_s, timing.finished_s) == (5.0, 8.0)


def test_observations_out_of_time_order_are_a_bug() -> None:
    tracker = MoveTracker()
    tracker.observe(2.0, [])
    with pytest.raises(AssertionError):
        tracker.observe(1.0, [])


def test_move_key_of_a_shrink_has_no_added_replica() -> None:
    assert move_key(_move(META_GROUP, leaving="n1")) == MoveKey(group=-1, added=None,
                                                                 leaving="n1")


def test_moves_summary_keeps_the_meta_group_apart() -> None:
    tracker = MoveTracker()
    tracker.observe(0.0, [_move(META_GROUP, learner="n4"), _move(0, learner="n4", leaving="n1"),
                          _move(1, learner="n4", leaving="n2")])
    tracker.observe(1.0, [_move(1, promoted="n4", leaving="n2")])
    tracker.observe(3.0, [_move(2, learner="n4", leaving="n3")])
    summary = moves_summary(tracker.timings())
    assert summary["shard_moves"] == 3 and summary["meta_moves"] == 1
    assert summary["unfinished"] == 1
    assert summary["move"] == {"count": 2, "p50_s": 1.0, "max_s": 3.0}
    # Shard 0 went from learner to gone between two polls: its catch-up time is unknown.
    assert summary["catch_up"] == {"count": 1, "p50_s": 1.0, "max_s": 1.0}
    each = summary["each"]
    assert isinstance(each, list) and len(each) == 4
    assert each[-1] == {"group": 2, "add": "n4", "remove": "n3", "seconds": None,
                        "catch_up_seconds": None}


def test_seconds_summary_is_nearest_rank() -> None:
    assert seconds_summary([4.0, 1.0, 3.0, 2.0]) == {"count": 4, "p50_s": 2.0, "max_s": 4.0}
    assert seconds_summary([]) == {"count": 0, "p50_s": None, "max_s": None}


def test_latency_summary_of_a_window() -> None:
    latencies = [float(v) for v in range(1, 201)]  # 1..200 ms
    summary = latency_summary(latencies, seconds=4.0, errors=1)
    assert summary == {"seconds": 4.0, "completed": 200, "per_sec": 50.0, "p50_ms": 100.0,
                       "p99_ms": 198.0, "max_ms": 200.0, "errors": 1}
    empty = latency_summary([], seconds=1.0, errors=0)
    assert empty["p99_ms"] is None and empty["per_sec"] == 0.0


def test_a_window_counts_the_workflows_started_inside_it() -> None:
    tally = Tally(samples=[Sample(workflow_id=f"w{t}", started_s=t, start_ms=t, total_ms=10 * t)
                           for t in (0.5, 1.0, 1.5, 2.0, 2.5)],
                  errors=[(0.9, "early"), (1.2, "inside")])
    window = tally.window(1.0, 2.0)
    assert window["completed"] == 2 and window["per_sec"] == 2.0
    assert (window["p50_ms"], window["p99_ms"], window["start_p99_ms"]) == (10.0, 15.0, 1.5)
    assert window["errors"] == 1 and window["error_examples"] == ["inside"]
    assert window["slowest"] == [{"workflow_id": "w1.5", "ms": 15.0, "started_at_s": 0.5},
                                 {"workflow_id": "w1.0", "ms": 10.0, "started_at_s": 0.0}]
