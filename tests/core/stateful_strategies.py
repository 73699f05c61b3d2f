"""The strategies and the message check of the hypothesis state machine (test_core_stateful.py).

Not a test module: split from it so that each stays under 400 lines. The strategies draw the
workflow commands a task completes with (opening, cancelling, closing, and messages to other
workflows of the same shard: signals, cancel requests, child starts); `check_messages_once`
is the machine's exactly-once model of the outbox.
"""

from __future__ import annotations

from hypothesis import strategies as st

from raftflow.protocol.commands import (
    CancelTimer,
    CancelWorkflowExecution,
    CompleteWorkflowExecution,
    ContinueAsNewWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    ParentClosePolicy,
    RecordMarker,
    RequestCancelActivityTask,
    RequestCancelExternalWorkflowExecution,
    RetryPolicy,
    ScheduleActivityTask,
    SignalExternalWorkflowExecution,
    StartChildWorkflowExecution,
    StartTimer,
    WorkflowCommand,
)
from raftflow.protocol.events import EventType
from raftflow.protocol.workflow_commands import FoldedWorkflowTask
from raftflow.shards.core import ShardState
from raftflow.shards.core.runs import Execution
from tests.core.core_driver import all_runs

NS = "ns"
WORKFLOW_IDS = st.sampled_from(["w1", "w2", "w3"])
REQUEST_IDS = st.sampled_from([f"q{i}" for i in range(6)])
ACTIVITY_IDS = st.sampled_from(["a1", "a2", "a3"])
TIMER_IDS = st.sampled_from(["t1", "t2"])
SHORT_MS = st.integers(min_value=1, max_value=20_000)
OPTIONAL_MS = st.none() | SHORT_MS
FAILURES = st.builds(Failure, message=st.just("x"), type=st.sampled_from(["E", "Fatal"]),
                     non_retryable=st.booleans())
POLICIES = st.none() | st.builds(
    RetryPolicy, initial_interval_ms=st.integers(1, 3_000),
    backoff_coefficient=st.sampled_from([1.0, 1.5, 2.0]), maximum_attempts=st.integers(0, 3),
    non_retryable_error_types=st.sampled_from([(), ("Fatal",)]))
SCHEDULE = st.builds(ScheduleActivityTask, activity_id=ACTIVITY_IDS, activity_type=st.just("A"),
                     schedule_to_close_timeout_ms=OPTIONAL_MS,
                     schedule_to_start_timeout_ms=OPTIONAL_MS,
                     start_to_close_timeout_ms=st.one_of(SHORT_MS, SHORT_MS, SHORT_MS, st.none()),
                     heartbeat_timeout_ms=OPTIONAL_MS,
                     retry_policy=POLICIES)
OPEN_COMMANDS: st.SearchStrategy[WorkflowCommand] = st.one_of(
    SCHEDULE, SCHEDULE,
    st.builds(StartTimer, timer_id=TIMER_IDS, start_to_fire_timeout_ms=SHORT_MS),
    st.builds(RecordMarker, marker_name=st.just("m")),
    # Messages to other workflows of this shard (or to none): the deliver and ack rules play
    # a courier that repeats, drops and reorders.
    st.builds(SignalExternalWorkflowExecution, workflow_id=st.sampled_from(["w1", "w2", "gone"]),
              signal_name=st.just("s"), input=st.sampled_from([b"", b"12"])),
    st.builds(RequestCancelExternalWorkflowExecution, workflow_id=WORKFLOW_IDS),
    st.builds(StartChildWorkflowExecution, workflow_id=st.sampled_from(["c1", "c2", "w2"]),
              workflow_type=st.just("C"),
              parent_close_policy=st.sampled_from(list(ParentClosePolicy)),
              retry_policy=POLICIES),
)
CANCEL_COMMANDS: st.SearchStrategy[WorkflowCommand] = st.one_of(
    st.builds(CancelTimer, timer_id=TIMER_IDS),
    st.builds(RequestCancelActivityTask, scheduled_event_id=st.integers(5, 12)),
)
CLOSE_COMMANDS: st.SearchStrategy[WorkflowCommand] = st.one_of(
    st.builds(CompleteWorkflowExecution, result=st.just(b"1")),
    st.builds(FailWorkflowExecution, failure=FAILURES),
    st.builds(CancelWorkflowExecution),
    st.builds(ContinueAsNewWorkflowExecution, run_timeout_ms=OPTIONAL_MS),
)


def _sometimes(strategy: st.SearchStrategy[WorkflowCommand],
               ) -> st.SearchStrategy[WorkflowCommand | None]:
    """`strategy` one time in four, else None (one_of alone would pick it half the time)."""
    return st.sampled_from([False, False, False, True]).flatmap(
        lambda chosen: strategy if chosen else st.none())


# Eager and sticky fields: mostly off, sometimes the run's queue "q", sometimes another queue.
EAGER_QUEUES = st.sampled_from(["", "q", "q", "other"])
STICKY_QUEUES = st.sampled_from(["", "s1", "s1", "s2"])
EAGER = st.tuples(EAGER_QUEUES, st.integers(min_value=0, max_value=3), STICKY_QUEUES)

TASK_COMMANDS = st.tuples(
    _sometimes(CANCEL_COMMANDS), st.lists(OPEN_COMMANDS, max_size=3), _sometimes(CLOSE_COMMANDS),
).map(lambda t: tuple(c for c in (t[0], *t[1], t[2]) if c is not None))


TARGET_TYPES = frozenset({EventType.WORKFLOW_EXECUTION_SIGNALED,
                           EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED})
OUTCOME_TYPES = frozenset({EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
                            EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
                            EventType.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
                            EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED})


def check_messages_once(state: ShardState) -> None:
    """Each message id is applied to a target at most once, and each initiating event has
    at most one outcome event (and none while its message waits in the outbox)."""
    applied: dict[tuple[str, str], int] = {}
    outcomes: dict[tuple[str, int], int] = {}
    for execution in all_runs(state):
        attributes = [e.attributes for e in execution.history] + [
            b.attributes for b in execution.buffered]
        for a in attributes:
            # Per run: a reset copies the signals after its point, request ids included.
            if a.event_type in TARGET_TYPES and "/" in a.request_id:
                key = (execution.run_id, a.request_id)
                applied[key] = applied.get(key, 0) + 1
            elif a.event_type in OUTCOME_TYPES:
                key = (execution.run_id, a.initiated_event_id)
                outcomes[key] = outcomes.get(key, 0) + 1
    assert all(count == 1 for count in applied.values()), applied
    assert all(count == 1 for count in outcomes.values()), outcomes
    waiting = {(e.source_run_id, e.initiated_event_id) for e in state.outbox.values()}
    assert not waiting & set(outcomes)


def folded_task(data: st.DataObject, execution: Execution | None,
                now_ms: int) -> FoldedWorkflowTask | None:
    """The workflow task an activity's completion makes, completed in advance: for the run's
    current end or not, at a worker time before, at or after the proposer's."""
    if execution is None:
        return None
    return FoldedWorkflowTask(
        after_event_id=execution.history_length + data.draw(st.sampled_from([0, 0, 0, -1])),
        workflow_time_ms=now_ms + data.draw(st.sampled_from([0, -1, -10, 1])),
        commands=data.draw(TASK_COMMANDS),
        eager_activities_max=data.draw(st.integers(min_value=0, max_value=3)))
