"""A reset's new run: its history copied from the base run, and the mutable state that history
implies, rebuilt event by event.

Theory of operation. The copied history ends with the reset point's WorkflowTaskStarted, so
everything the workflow had asked for by then is in it: activities scheduled and not closed,
timers started and not fired or canceled, a cancel request. `do_open_copy` writes the events
into a fresh run with `do_append` (ids 1..n again, original times kept) and folds them into the
run's state, then arms what the pending work needs, as a fresh start and a fresh schedule would:
- a pending activity is scheduled again from the reset's instant (attempt 1; an attempt the
  base run had started is not carried over: its worker reports to the base run, which is closed,
  and is refused as stale), its schedule-to-start and schedule-to-close timers counted from then;
- a pending user timer keeps its original due instant (TimerStarted time + duration), so a
  timer already due fires at once, as Temporal's rebuilt timers do;
- the run timeout counts from the reset's instant, the execution timeout is the chain's;
- the search attributes are the base run's as they are now: a start's are not in its history,
  so upserts recorded after the reset point are not undone (Temporal rebuilds them from the
  history; a workflow that upserts re-upserts when it re-executes anyway).
- a message to another workflow initiated in the copy without its outcome there is queued
  again for the new run (`unanswered_messages`);
The caller (on_reset.py) then closes the reset point's task and schedules the next one.
"""

from __future__ import annotations

from raftflow.protocol.commands import ResetWorkflow
from raftflow.protocol.events import (
    ActivityTaskCanceledEventAttributes,
    ActivityTaskCancelRequestedEventAttributes,
    ActivityTaskCompletedEventAttributes,
    ActivityTaskFailedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    ActivityTaskTimedOutEventAttributes,
    HistoryEvent,
    TimerCanceledEventAttributes,
    TimerFiredEventAttributes,
    TimerStartedEventAttributes,
    WorkflowExecutionCancelRequestedEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowTaskCompletedEventAttributes,
    WorkflowTaskStartedEventAttributes,
)
from raftflow.protocol.events_external import (
    ExternalWorkflowExecutionCancelRequestedEventAttributes,
    ExternalWorkflowExecutionSignaledEventAttributes,
    RequestCancelExternalWorkflowExecutionFailedEventAttributes,
    SignalExternalWorkflowExecutionFailedEventAttributes,
)
from raftflow.protocol.messages import MessageBody
from raftflow.shards.core.outbox import initiated_body
from raftflow.shards.core.outbox_queue import do_queue
from raftflow.shards.core.state import ActivityState, Execution, ShardState, TimerKind
from raftflow.shards.core.writes import Changes, dispatch_activity_task, do_append, do_arm

MessageOutcomeAttributes = (ExternalWorkflowExecutionSignaledEventAttributes
                            | ExternalWorkflowExecutionCancelRequestedEventAttributes
                            | SignalExternalWorkflowExecutionFailedEventAttributes
                            | RequestCancelExternalWorkflowExecutionFailedEventAttributes)


def unanswered_messages(base: Execution, copied: list[HistoryEvent],
                        ) -> list[tuple[int, MessageBody]]:
    """The messages initiated in `copied` without an outcome in it: the new run sends them
    again, under its own message ids (a target that took the base run's message gets it a
    second time, as after a reset in Temporal)."""
    pending: dict[int, MessageBody] = {}
    for event in copied:
        body = initiated_body(base, event.attributes)
        if body is not None:
            pending[event.event_id] = body
        elif isinstance(event.attributes, MessageOutcomeAttributes):
            pending.pop(event.attributes.initiated_event_id, None)
    return list(pending.items())


def do_open_copy(state: ShardState, changes: Changes, base: Execution,
                 copied: list[HistoryEvent], command: ResetWorkflow) -> Execution:
    """Open the reset's new run holding `copied` (events 1..k of `base`, ending with a
    WorkflowTaskStarted) and the pending work those events leave; no workflow task yet."""
    assert copied and isinstance(copied[0].attributes, WorkflowExecutionStartedEventAttributes)
    assert isinstance(copied[-1].attributes, WorkflowTaskStartedEventAttributes)
    key = base.key
    assert key not in state.open_runs and not state.run_id_used(command.new_run_id)
    now_ms = command.now_ms
    execution = Execution(
        namespace=base.namespace, workflow_id=base.workflow_id, run_id=command.new_run_id,
        workflow_type=base.workflow_type, task_queue=base.task_queue, start_time_ms=now_ms,
        task_timeout_ms=base.task_timeout_ms, run_timeout_ms=base.run_timeout_ms,
        execution_timeout_ms=base.execution_timeout_ms,
        execution_expire_ms=base.execution_expire_ms,
        first_execution_run_id=base.first_execution_run_id,
        continued_execution_run_id=base.continued_execution_run_id,
        search_attributes=base.search_attributes, parent=base.parent,
        retry_policy=base.retry_policy, attempt=base.attempt)
    state.executions[execution.run_id] = execution
    state.touch(execution.run_id)
    state.open_runs[key] = execution.run_id
    for event in copied:
        do_append(execution, changes, event.time_ms, event.attributes)
        _fold(execution, event, now_ms)
    _do_arm_pending(state, execution, changes, copied, now_ms)
    for initiated_event_id, body in unanswered_messages(base, copied):
        do_queue(state, execution, changes, now_ms, initiated_event_id, body)
    assert execution.history_length == len(copied) and execution.workflow_task is None
    return execution


def _fold(execution: Execution, event: HistoryEvent, now_ms: int) -> None:
    """What one copied event leaves pending in the new run."""
    attributes = event.attributes
    match attributes:
        case ActivityTaskScheduledEventAttributes():
            sid = event.event_id
            execution.activities[sid] = ActivityState(
                scheduled_event_id=sid, activity_id=attributes.activity_id,
                activity_type=attributes.activity_type, task_queue=attributes.task_queue,
                input=attributes.input,
                schedule_to_close_timeout_ms=attributes.schedule_to_close_timeout_ms,
                schedule_to_start_timeout_ms=attributes.schedule_to_start_timeout_ms,
                start_to_close_timeout_ms=attributes.start_to_close_timeout_ms,
                heartbeat_timeout_ms=attributes.heartbeat_timeout_ms,
                retry_policy=attributes.retry_policy, scheduled_time_ms=now_ms,
                attempt_scheduled_time_ms=now_ms, traceparent=attributes.traceparent)
            execution.activity_ids[attributes.activity_id] = sid
        case (ActivityTaskCompletedEventAttributes() | ActivityTaskFailedEventAttributes()
              | ActivityTaskTimedOutEventAttributes() | ActivityTaskCanceledEventAttributes()):
            closed = execution.activities.pop(attributes.scheduled_event_id, None)
            if closed is not None:
                del execution.activity_ids[closed.activity_id]
        case ActivityTaskCancelRequestedEventAttributes():
            requested = execution.activities.get(attributes.scheduled_event_id)
            if requested is not None:  # else canceled at once, by the next event
                requested.cancel_requested_event_id = event.event_id
        case TimerStartedEventAttributes():
            execution.timers[attributes.timer_id] = event.event_id
        case TimerFiredEventAttributes() | TimerCanceledEventAttributes():
            execution.timers.pop(attributes.timer_id, None)
        case WorkflowExecutionCancelRequestedEventAttributes():
            execution.cancel_requested = True
        case WorkflowTaskCompletedEventAttributes():
            execution.previous_started_event_id = attributes.started_event_id
        case _:
            pass


def _do_arm_pending(state: ShardState, execution: Execution, changes: Changes,
                    copied: list[HistoryEvent], now_ms: int) -> None:
    run_id = execution.run_id
    for sid, activity in execution.activities.items():
        if activity.schedule_to_start_timeout_ms is not None:
            do_arm(state, changes, (run_id, TimerKind.ACTIVITY_SCHEDULE_TO_START, sid),
                   now_ms + activity.schedule_to_start_timeout_ms)
        if activity.schedule_to_close_timeout_ms is not None:
            do_arm(state, changes, (run_id, TimerKind.ACTIVITY_SCHEDULE_TO_CLOSE, sid),
                   now_ms + activity.schedule_to_close_timeout_ms)
        changes.effects.append(dispatch_activity_task(execution, activity))
    for started_id in execution.timers.values():
        started = copied[started_id - 1]
        assert isinstance(started.attributes, TimerStartedEventAttributes), started_id
        do_arm(state, changes, (run_id, TimerKind.USER, started_id),
               started.time_ms + started.attributes.start_to_fire_timeout_ms)
    if execution.run_timeout_ms is not None:
        do_arm(state, changes, (run_id, TimerKind.RUN_TIMEOUT, 0),
               now_ms + execution.run_timeout_ms)
    if execution.execution_expire_ms is not None:
        do_arm(state, changes, (run_id, TimerKind.EXECUTION_TIMEOUT, 0),
               execution.execution_expire_ms)
