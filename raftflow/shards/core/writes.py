"""Primitive writes (`do_*`) shared by the handlers, and the `Changes` they collect.

Theory of operation. Handlers decide first (every refusal returns before any write), then call
these writes. Each write keeps one invariant local: event ids stay 1..n (DESIGN §4 I3), nothing
is appended after a close event, every timer in the index belongs to an open run, and every
effect produced is recorded in `Changes` for the `Output`.
"""

from __future__ import annotations

import heapq

import msgspec

from raftflow.protocol.effects import (
    DispatchActivityTask,
    DispatchWorkflowTask,
    WorkflowClosed,
)
from raftflow.protocol.events import (
    CLOSE_EVENT_TYPES,
    ActivityTaskCanceledEventAttributes,
    ActivityTaskCompletedEventAttributes,
    ActivityTaskFailedEventAttributes,
    ActivityTaskStartedEventAttributes,
    ActivityTaskTimedOutEventAttributes,
    EventAttributes,
    HistoryEvent,
    WorkflowExecutionCanceledEventAttributes,
    WorkflowExecutionCompletedEventAttributes,
    WorkflowExecutionContinuedAsNewEventAttributes,
    WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
    WorkflowExecutionTimedOutEventAttributes,
    WorkflowTaskFailedEventAttributes,
    WorkflowTaskScheduledEventAttributes,
)
from raftflow.protocol.results import Result, WorkflowStatus
from raftflow.shards.core import limits
from raftflow.shards.core.changes import Changes as Changes
from raftflow.shards.core.child_links import do_tell_links
from raftflow.shards.core.state import (
    ACTIVITY_TIMER_KINDS,
    ActivityState,
    BufferedEvent,
    Execution,
    RequestKey,
    ShardState,
    TimerKey,
    TimerKind,
    WorkflowTaskState,
)

RunClosedAttributes = (WorkflowExecutionCompletedEventAttributes
                       | WorkflowExecutionFailedEventAttributes
                       | WorkflowExecutionTimedOutEventAttributes
                       | WorkflowExecutionCanceledEventAttributes
                       | WorkflowExecutionTerminatedEventAttributes
                       | WorkflowExecutionContinuedAsNewEventAttributes)


def do_append(execution: Execution, changes: Changes, time_ms: int,
              attributes: EventAttributes) -> HistoryEvent:
    """Append one event to the history; the only place event ids are assigned."""
    history = execution.history
    assert execution.is_open, (execution.run_id, attributes.event_type)
    assert not history or history[-1].event_type not in CLOSE_EVENT_TYPES
    event = HistoryEvent(event_id=execution.history_length + 1, time_ms=time_ms,
                         attributes=attributes)
    history.append(event)
    changes.events.append(event)
    # `>=`, not `==`: a run restored from an older release may hold more than the mark.
    if (len(history) >= limits.HISTORY_HOT_EVENTS_MAX + limits.HISTORY_CHUNK_EVENTS
            and (not changes.grown or changes.grown[-1] is not execution)):
        changes.grown.append(execution)
    return event



ActivityClosedAttributes = (ActivityTaskCompletedEventAttributes
                            | ActivityTaskFailedEventAttributes
                            | ActivityTaskTimedOutEventAttributes
                            | ActivityTaskCanceledEventAttributes)


def _resolve(execution: Execution, attributes: EventAttributes) -> EventAttributes:
    """An activity's closing event names its ActivityTaskStarted, which is written right
    before it and whose id is known only when the pair is written (it may wait in the buffer;
    Temporal fixes these ids up on flush the same way). An ActivityTaskStarted is only ever
    written together with its attempt's close, so a close with no started id that directly
    follows its own activity's ActivityTaskStarted refers to that event; any other close
    (an attempt that never started) keeps 0."""
    if not isinstance(attributes, ActivityClosedAttributes) or attributes.started_event_id:
        return attributes
    previous = execution.history[-1].attributes if execution.history else None
    if not (isinstance(previous, ActivityTaskStartedEventAttributes)
            and previous.scheduled_event_id == attributes.scheduled_event_id):
        return attributes
    return msgspec.structs.replace(attributes, started_event_id=execution.history_length)


def do_deliver(state: ShardState, execution: Execution, changes: Changes, time_ms: int,
               deliveries: tuple[EventAttributes, ...]) -> None:
    """Record events for the workflow to see: buffered while a task is started, else written;
    then make sure a workflow task is scheduled to deliver them (Temporal semantics)."""
    assert execution.is_open and deliveries, execution.run_id
    if execution.task_started():
        execution.buffered.extend(
            BufferedEvent(time_ms=time_ms, attributes=attributes) for attributes in deliveries)
        return
    for attributes in deliveries:
        do_append(execution, changes, time_ms, _resolve(execution, attributes))
    # A retried attempt waiting out its back-off gets its first task from the timer.
    if execution.workflow_task is None and not execution.awaiting_backoff:
        do_schedule_workflow_task(state, execution, changes, time_ms, attempt=1)
    assert execution.workflow_task is not None or execution.awaiting_backoff


def do_flush_buffered(execution: Execution, changes: Changes) -> int:
    """Write the buffered events after a workflow task closed; returns how many."""
    assert not execution.task_started(), execution.run_id
    buffered = execution.buffered
    for item in buffered:
        do_append(execution, changes, item.time_ms, _resolve(execution, item.attributes))
    count = len(buffered)
    execution.buffered = []
    return count


def do_schedule_workflow_task(state: ShardState, execution: Execution, changes: Changes,
                              now_ms: int, *, attempt: int) -> None:
    assert execution.workflow_task is None, execution.run_id
    assert attempt >= 1, attempt
    event = do_append(execution, changes, now_ms, WorkflowTaskScheduledEventAttributes(
        task_queue=execution.task_queue, start_to_close_timeout_ms=execution.task_timeout_ms,
        attempt=attempt))
    execution.workflow_task = WorkflowTaskState(
        scheduled_event_id=event.event_id, attempt=attempt, scheduled_time_ms=now_ms)
    changes.effects.append(dispatch_workflow_task(execution))


def drop_dispatch(changes: Changes, dispatch: DispatchWorkflowTask | DispatchActivityTask,
                  ) -> None:
    """A task started by the same command that dispatched it (an eager start) needs no
    poller: drop that order, which would only cost a claim the core refuses as stale. A
    no-op when this command did not dispatch the task (a poll's hand-out)."""
    if dispatch in changes.effects:
        changes.effects.remove(dispatch)
    assert dispatch not in changes.effects, dispatch


def dispatch_workflow_task(execution: Execution) -> DispatchWorkflowTask:
    task = execution.workflow_task
    assert task is not None and task.started_event_id == 0, execution.run_id
    return DispatchWorkflowTask(namespace=execution.namespace, task_queue=execution.task_queue,
                                workflow_id=execution.workflow_id, run_id=execution.run_id,
                                scheduled_event_id=task.scheduled_event_id)


def dispatch_activity_task(execution: Execution, activity: ActivityState) -> DispatchActivityTask:
    assert activity.phase == "scheduled", activity.phase
    return DispatchActivityTask(namespace=execution.namespace, task_queue=activity.task_queue,
                                workflow_id=execution.workflow_id, run_id=execution.run_id,
                                scheduled_event_id=activity.scheduled_event_id,
                                attempt=activity.attempt)


def do_arm(state: ShardState, changes: Changes, key: TimerKey, fire_at_ms: int) -> None:
    """Arm (or re-arm) one durable timer."""
    assert state.executions[key[0]].is_open, key
    assert 0 <= fire_at_ms < 2**62, fire_at_ms
    state.timers.pop(key, None)  # re-arming moves the timer to the end of the index order
    state.timers[key] = fire_at_ms
    heapq.heappush(state.timer_heap, (fire_at_ms, key[0], key[1], key[2]))
    if changes.armed_at_ms is None or fire_at_ms < changes.armed_at_ms:
        changes.armed_at_ms = fire_at_ms


def do_disarm(state: ShardState, key: TimerKey) -> None:
    """Forget a timer if armed; its heap entry turns stale and is dropped lazily."""
    state.timers.pop(key, None)
    assert key not in state.timers
    if len(state.timer_heap) > 2 * len(state.timers) + 64:
        state.rebuild_timer_heap()


def do_disarm_activity(state: ShardState, run_id: str, scheduled_event_id: int) -> None:
    for kind in ACTIVITY_TIMER_KINDS:
        do_disarm(state, (run_id, kind, scheduled_event_id))


def do_remember(state: ShardState, key: RequestKey, result: Result, now_ms: int) -> None:
    """Remember a request's first answer (I5) for REQUEST_IDS_RETENTION_MS. The caller looked
    the key up first (a remembered one is answered, not written again); the archive asserts it."""
    state.archive.remember(key, result, now_ms + limits.REQUEST_IDS_RETENTION_MS)


def retention_ms(state: ShardState, namespace: str) -> int:
    """How long a closed run of `namespace` is kept after its close time: its setting when
    the run closes (a later change applies to runs closing after it, as in Temporal)."""
    config = state.namespaces.get(namespace)
    return limits.DEFAULT_RETENTION_MS if config is None else config.retention_ms


def do_close_run(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
                 close: tuple[WorkflowStatus, RunClosedAttributes]) -> HistoryEvent:
    """Close a run: fail a started workflow task (cause ForceCloseCommand, as Temporal does when
    a run is closed under a running task), write buffered events, then the close event (last,
    once: I3); drop every pending task and timer of the run, and free the workflow id."""
    status, attributes = close
    assert attributes.event_type in CLOSE_EVENT_TYPES and status is not WorkflowStatus.RUNNING
    assert state.open_runs.get(execution.key) == execution.run_id, execution.run_id
    run_id = execution.run_id
    task = execution.workflow_task
    if task is not None:
        do_disarm(state, (run_id, TimerKind.WORKFLOW_TASK_START_TO_CLOSE,
                          task.scheduled_event_id))
        if task.started_event_id:
            do_append(execution, changes, now_ms, WorkflowTaskFailedEventAttributes(
                scheduled_event_id=task.scheduled_event_id,
                started_event_id=task.started_event_id, cause="ForceCloseCommand"))
        execution.workflow_task = None  # any completion of it is now stale
    do_flush_buffered(execution, changes)
    event = do_append(execution, changes, now_ms, attributes)
    for scheduled_event_id in execution.activities:
        do_disarm_activity(state, run_id, scheduled_event_id)
    for started_event_id in execution.timers.values():
        do_disarm(state, (run_id, TimerKind.USER, started_event_id))
    do_disarm(state, (run_id, TimerKind.RUN_TIMEOUT, 0))
    do_disarm(state, (run_id, TimerKind.EXECUTION_TIMEOUT, 0))
    do_disarm(state, (run_id, TimerKind.WORKFLOW_BACKOFF, 0))
    execution.awaiting_backoff = False  # closed under its back-off: no first task will come
    execution.activities.clear()
    execution.activity_ids.clear()
    execution.timers.clear()
    do_tell_links(state, execution, changes, now_ms, status, attributes, event.event_id)
    execution.status = status
    execution.close_time_ms = now_ms
    del state.open_runs[execution.key]
    del state.executions[run_id]
    state.touch(run_id)  # the store deletes its open-run row
    changes.effects.append(WorkflowClosed(namespace=execution.namespace,
                                          workflow_id=execution.workflow_id, run_id=run_id))
    # Last: the archive owns the run from here on and nothing changes it any more.
    state.archive.put_closed(execution, now_ms + retention_ms(state, execution.namespace))
    return event

