"""Goal: snapshots restore an identical state, a new leader can rebuild its orders from state,
and the read queries describe, page and list runs correctly.

Method: build a shard with every kind of pending work (started and scheduled tasks, backoff,
buffered events, timers, closed runs), snapshot and restore it, compare digests, then apply the
same further commands to original and restored copies and compare digests again.
"""

from __future__ import annotations

from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    Failure,
    FireTimers,
    RetryPolicy,
    StartTimer,
)
from raftflow.protocol.effects import ArmTimer, DispatchActivityTask, DispatchWorkflowTask
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import Rejected, WorkflowDescription, WorkflowStatus
from raftflow.shards import visibility_reads
from raftflow.shards.core import apply, pending_effects, queries, snapshot
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.invariants import check_invariants
from raftflow.visibility.query_parser import parse
from tests.core.core_driver import NAMESPACE, Shard, activity


def _busy_shard() -> Shard:
    shard = Shard()
    # Distinct start times: lists show the latest started first, ties broken by run id.
    shard.now_ms = 500
    done = shard.start("done")
    shard.decide(done, CompleteWorkflowExecution(result=b"1"))
    shard.now_ms = 1_000
    busy = shard.start("busy")
    shard.decide(busy, activity("a1"), activity("a2", retry_policy=RetryPolicy()),
                 activity("a3", schedule_to_start_timeout_ms=50_000),
                 StartTimer(timer_id="t", start_to_fire_timeout_ms=9_000))
    shard.fail_activity(shard.poll_activity(busy, "a2").token, Failure(message="x"))
    shard.poll_activity(busy, "a1")
    shard.wake(busy)
    shard.poll_workflow_task(busy)
    shard.wake(busy)  # buffered
    shard.now_ms += 1
    shard.start("fresh")
    return shard


def test_snapshot_round_trip_preserves_digest_and_behaviour() -> None:
    shard = _busy_shard()
    data = snapshot.to_bytes(shard.state)
    restored = snapshot.from_bytes(data)
    check_invariants(restored)
    assert snapshot.to_bytes(restored) == data
    assert state_digest(restored) == state_digest(shard.state)
    assert pending_effects(restored) == pending_effects(shard.state)
    for now_ms in (2_000, 10_000, 60_000, 200_000):
        a = apply(shard.state, FireTimers(now_ms=now_ms))
        b = apply(restored, FireTimers(now_ms=now_ms))
        assert a == b
        assert state_digest(restored) == state_digest(shard.state)


def test_pending_effects_rebuild_dispatches_and_the_earliest_timer() -> None:
    shard = _busy_shard()
    effects = pending_effects(shard.state)
    dispatches = [e for e in effects if isinstance(e, DispatchActivityTask)]
    assert [(d.run_id, d.scheduled_event_id) for d in dispatches] == [("run-busy", 7)]
    tasks = [e for e in effects if isinstance(e, DispatchWorkflowTask)]
    assert [t.run_id for t in tasks] == ["run-fresh"]
    assert effects[-1] == ArmTimer(fire_at_ms=2_000)  # a2's retry after 1 s back-off
    assert pending_effects(Shard().state) == []


def test_describe_history_and_list() -> None:
    shard = _busy_shard()
    done = queries.describe(shard.state, NAMESPACE, "done")
    assert isinstance(done, WorkflowDescription)
    assert done.status is WorkflowStatus.COMPLETED and done.close_event is not None
    assert done.close_event.attributes.result == b"1"
    busy = queries.describe(shard.state, NAMESPACE, "busy")
    assert isinstance(busy, WorkflowDescription)
    assert busy.pending_activity_count == 3 and busy.pending_timer_count == 1
    missing = queries.describe(shard.state, NAMESPACE, "nope")
    assert isinstance(missing, Rejected) and missing.code is ErrorCode.NOT_FOUND
    page = queries.history(shard.state, NAMESPACE, "busy", None, first_event_id=1, page_size=4)
    assert not isinstance(page, Rejected)
    events, next_id = page
    assert [e.event_id for e in events] == [1, 2, 3, 4] and next_id == 5
    last = queries.history(shard.state, NAMESPACE, "busy", "run-busy", next_id, 1_000)
    assert not isinstance(last, Rejected) and last[1] is None
    listed = visibility_reads.page(shard.state, NAMESPACE, parse("", {}), None, 10)
    assert [d.workflow_id for _, d in listed] == ["fresh", "busy", "done"]
    running = parse("ExecutionStatus = 'Running'", {})
    assert [d.workflow_id for _, d in visibility_reads.page(shard.state, NAMESPACE, running,
                                                            None, 10)] == ["fresh", "busy"]
    assert visibility_reads.count(shard.state, NAMESPACE, running) == 2
    assert visibility_reads.page(shard.state, "other", parse("", {}), None, 10) == []
