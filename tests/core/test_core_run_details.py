"""Goal: describe's run details (`queries.run_details`) show exactly what a run waits on —
each pending activity's state, attempt, last failure, heartbeat details and retry time, each
user timer's fire time, each child — and its parent; nothing once the run closed.

Method: the core driver plays both workers with a manual clock; the whole `RunDetails` value is
compared after each step (table-driven, full values rather than picked fields).
"""

from __future__ import annotations

from msgspec.structs import replace

from raftflow.protocol.commands import (
    Failure,
    ParentClosePolicy,
    RecordActivityTaskHeartbeat,
    RetryPolicy,
    StartChildWorkflowExecution,
    StartTimer,
    TerminateWorkflow,
)
from raftflow.protocol.results import WorkflowDescription
from raftflow.protocol.run_details import (
    ParentInfo,
    PendingActivityInfo,
    PendingActivityState,
    PendingChildInfo,
    PendingTimerInfo,
    RunDetails,
)
from raftflow.shards.core import queries
from tests.core.core_driver import NAMESPACE, Shard, activity
from tests.core.test_core_children import _ack, _deliver, _only

POLICY = RetryPolicy(initial_interval_ms=2_000, maximum_attempts=3)
DECLINED = Failure(message="declined", type="CardError")


def _details(shard: Shard, workflow_id: str) -> RunDetails:
    described = queries.describe(shard.state, NAMESPACE, workflow_id)
    assert isinstance(described, WorkflowDescription) and described.details is not None
    return described.details


def test_an_activity_through_its_attempts_and_a_timer() -> None:
    shard = Shard()
    run_id = shard.start()
    scheduled_ms = shard.now_ms
    shard.decide(run_id, activity("pay", retry_policy=POLICY),
                 StartTimer(timer_id="remind", start_to_fire_timeout_ms=60_000))
    timer = PendingTimerInfo(timer_id="remind", started_event_id=6,
                             fire_time_ms=scheduled_ms + 60_000)
    waiting = PendingActivityInfo(
        activity_id="pay", activity_type="Charge", task_queue="q", scheduled_event_id=5,
        state=PendingActivityState.SCHEDULED, cancel_requested=False, attempt=1,
        maximum_attempts=3, scheduled_time_ms=scheduled_ms,
        attempt_scheduled_time_ms=scheduled_ms, started_time_ms=None,
        next_attempt_time_ms=None, identity="", heartbeat_details=b"", last_failure=None)
    assert _details(shard, "wf") == RunDetails(pending_activities=(waiting,),
                                               pending_timers=(timer,), pending_children=(),
                                               parent=None)
    first = shard.poll_activity(run_id, "pay")
    shard.fail_activity(first.token, DECLINED)
    retry_ms = shard.now_ms + 2_000
    # Back-off: the attempt counter already names the next attempt, scheduled for its retry.
    in_backoff = replace(waiting, state=PendingActivityState.BACKOFF, attempt=2,
                         attempt_scheduled_time_ms=retry_ms, next_attempt_time_ms=retry_ms,
                         last_failure=DECLINED)
    assert _details(shard, "wf").pending_activities == (in_backoff,)

    shard.advance(2_000)
    second = shard.poll_activity(run_id, "pay")
    shard.run(RecordActivityTaskHeartbeat(now_ms=shard.now_ms, token=second.token,
                                          details=b'{"done": 1}'))
    running = replace(in_backoff, state=PendingActivityState.STARTED,
                      started_time_ms=retry_ms, next_attempt_time_ms=None,
                      identity="worker-2", heartbeat_details=b'{"done": 1}')
    assert _details(shard, "wf") == RunDetails(pending_activities=(running,),
                                               pending_timers=(timer,), pending_children=(),
                                               parent=None)

    shard.run(TerminateWorkflow(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                                run_id=None, reason="done", request_id=shard.request_id()))
    assert _details(shard, "wf") == RunDetails(pending_activities=(), pending_timers=(),
                                               pending_children=(), parent=None)


def test_a_child_is_pending_on_its_parent_and_names_it() -> None:
    parents, kids = Shard(), Shard()
    parent = parents.start("parent")
    parents.decide(parent, StartChildWorkflowExecution(
        workflow_id="kid", workflow_type="Kid", parent_close_policy=ParentClosePolicy.ABANDON))
    starting = PendingChildInfo(workflow_id="kid", run_id=None, workflow_type="Kid",
                                initiated_event_id=5, parent_close_policy="abandon")
    assert _details(parents, "parent").pending_children == (starting,)
    outcomes = _deliver(kids, _only(parents))
    _ack(parents, outcomes)
    kid = outcomes[0].run_id
    assert _details(parents, "parent").pending_children == (replace(starting, run_id=kid),)
    assert _details(kids, "kid").parent == ParentInfo(namespace=NAMESPACE,
                                                       workflow_id="parent", run_id=parent)

