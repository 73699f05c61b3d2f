"""FireTimers: fire the durable timers due at or before the proposer's `now_ms`, oldest first,
at most `TIMERS_PER_FIRE_MAX` of them.

Theory of operation. Timers live in the shard state (the timer index), never in a shell clock,
so they survive leader changes: a new leader re-arms its wake-up from `pending_effects`. Timers
fire in (fire_at_ms, key) order, which every replica agrees on (I2). Each kind's handler finds
its owner (run, activity, workflow task) in the state it expects, because every write that ends
an owner disarms its timers first. Server-driven events cannot be refused, so a run whose history
reaches HISTORY_EVENTS_MAX here is terminated (Temporal does the same). The same command then
deletes archive rows that are due (closed runs past retention, request ids past theirs), at most
EXPIRIES_PER_FIRE_MAX, in the archive's total order.
"""

from __future__ import annotations

import heapq

from raftflow.protocol.commands import Failure, FireTimers
from raftflow.protocol.events import (
    ActivityTaskTimedOutEventAttributes,
    RetryState,
    TimeoutType,
    TimerFiredEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
    WorkflowExecutionTimedOutEventAttributes,
    WorkflowTimeoutType,
)
from raftflow.protocol.results import Ack, WorkflowStatus
from raftflow.shards.core import limits, retry
from raftflow.shards.core.on_activity import do_close_activity, do_retry_activity
from raftflow.shards.core.on_workflow_task import on_workflow_task_timeout
from raftflow.shards.core.outbox import do_expire_messages
from raftflow.shards.core.output import Output
from raftflow.shards.core.state import (
    ActivityPhase,
    ActivityState,
    Execution,
    ShardState,
    TimerKey,
    TimerKind,
)
from raftflow.shards.core.workflow_retry import do_end_backoff, do_fail_run
from raftflow.shards.core.writes import (
    Changes,
    dispatch_activity_task,
    do_arm,
    do_close_run,
    do_deliver,
)

_TIMEOUT_TYPES = {
    TimerKind.ACTIVITY_SCHEDULE_TO_START: TimeoutType.SCHEDULE_TO_START,
    TimerKind.ACTIVITY_SCHEDULE_TO_CLOSE: TimeoutType.SCHEDULE_TO_CLOSE,
    TimerKind.ACTIVITY_START_TO_CLOSE: TimeoutType.START_TO_CLOSE,
    TimerKind.ACTIVITY_HEARTBEAT: TimeoutType.HEARTBEAT,
}


def on_fire_timers(state: ShardState, command: FireTimers) -> Output:
    changes = Changes()
    fired = 0
    # At most TIMERS_PER_FIRE_MAX per command, so one apply stays short (I7); the rest stay
    # due, `armed_at_ms` points at them and the leader proposes the next FireTimers at once.
    while (fired < limits.TIMERS_PER_FIRE_MAX and (due := state.earliest_timer()) is not None
           and due[0] <= command.now_ms):
        at_ms, key = due
        heapq.heappop(state.timer_heap)
        del state.timers[key]
        execution = state.take_open_run(key[0])
        assert execution.is_open, f"timer {key} outlived its run"
        _fire(state, execution, changes, command.now_ms, key)
        if execution.is_open and (execution.history_length + len(execution.buffered)
                                  >= limits.HISTORY_EVENTS_MAX):
            do_close_run(state, execution, changes, command.now_ms, (
                WorkflowStatus.TERMINATED, WorkflowExecutionTerminatedEventAttributes(
                    reason="HISTORY_EVENTS_MAX reached")))
        fired += 1
        assert at_ms <= command.now_ms
    nxt = state.earliest_timer()
    assert fired <= limits.TIMERS_PER_FIRE_MAX
    assert nxt is None or nxt[0] > command.now_ms or fired == limits.TIMERS_PER_FIRE_MAX
    # Retention and request-id expiry are durable timers too: the archive deletes what is due.
    state.archive.expire(command.now_ms, limits.EXPIRIES_PER_FIRE_MAX)
    # And so is the retry horizon of outbox messages with no answer (outbox.py).
    do_expire_messages(state, changes, command.now_ms, limits.EXPIRIES_PER_FIRE_MAX)
    changes.armed_at_ms = state.next_wakeup_ms()
    return Output.of(Ack(), changes)


def _fire(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
          key: TimerKey) -> None:
    kind, ref = TimerKind(key[1]), key[2]
    assert execution.is_open and key[0] == execution.run_id, key
    assert key not in state.timers, "a timer fires once"
    if kind is TimerKind.USER:
        timer_id = next(t for t, started in execution.timers.items() if started == ref)
        del execution.timers[timer_id]
        do_deliver(state, execution, changes, now_ms, (
            TimerFiredEventAttributes(timer_id=timer_id, started_event_id=ref),))
    elif kind is TimerKind.WORKFLOW_TASK_START_TO_CLOSE:
        on_workflow_task_timeout(state, execution, changes, now_ms, ref)
    elif kind in (TimerKind.RUN_TIMEOUT, TimerKind.EXECUTION_TIMEOUT):
        timeout_type = (WorkflowTimeoutType.RUN if kind is TimerKind.RUN_TIMEOUT
                        else WorkflowTimeoutType.EXECUTION)
        do_fail_run(state, execution, changes, now_ms,
                    WorkflowExecutionTimedOutEventAttributes(timeout_type=timeout_type))
    elif kind is TimerKind.WORKFLOW_BACKOFF:
        do_end_backoff(state, execution, changes, now_ms)
    else:
        _fire_activity(state, execution, changes, now_ms, kind, execution.activities[ref])


def _fire_activity(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
                   kind: TimerKind, activity: ActivityState) -> None:
    if kind is TimerKind.ACTIVITY_RETRY:
        assert activity.phase is ActivityPhase.BACKOFF, activity.phase
        activity.phase = ActivityPhase.SCHEDULED
        activity.attempt_scheduled_time_ms = now_ms
        if activity.schedule_to_start_timeout_ms is not None:
            do_arm(state, changes, (execution.run_id, TimerKind.ACTIVITY_SCHEDULE_TO_START,
                                    activity.scheduled_event_id),
                   now_ms + activity.schedule_to_start_timeout_ms)
        changes.effects.append(dispatch_activity_task(execution, activity))
        return
    timeout_type = _TIMEOUT_TYPES[kind]
    retryable = kind in (TimerKind.ACTIVITY_START_TO_CLOSE, TimerKind.ACTIVITY_HEARTBEAT)
    assert not retryable or activity.phase is ActivityPhase.STARTED, (kind, activity.phase)
    assert kind is not TimerKind.ACTIVITY_SCHEDULE_TO_START or activity.phase == "scheduled"
    failure = Failure(message=f"activity {timeout_type} timeout", type="TimeoutError")
    retry_at_ms = retry.next_retry_at_ms(activity, None, now_ms) if retryable else None
    if retry_at_ms is not None:
        do_retry_activity(state, changes, execution, activity, retry_at_ms, failure)
        return
    retry_state = retry.retry_state(activity, None) if retryable else RetryState.TIMEOUT
    do_close_activity(state, execution, changes, now_ms, activity,
                      ActivityTaskTimedOutEventAttributes(
                          scheduled_event_id=activity.scheduled_event_id,
                          timeout_type=timeout_type, last_failure=activity.last_failure,
                          retry_state=retry_state))
