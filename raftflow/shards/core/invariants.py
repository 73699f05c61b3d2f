"""`check_invariants(state)`: the shard's safety properties, checked as a whole.

Used by tests after every step, by the simulator, and by the shard actor under a debug flag. It
walks the whole state (cost linear in its size), raising `InvariantViolation` on the first broken
property. Checked (DESIGN §4 I3, I5, I7):
- event ids of every history are 1..n, no gap or repeat (times may go back: an event buffered
  during a workflow task keeps its arrival time and is written after the task's closing event);
- a run has at most one close event, it is the last event, and a run is open iff it has none;
- a WorkflowTaskStarted is immediately followed by its task's Completed/Failed/TimedOut event
  (or is the last event while the task runs): buffering keeps a started task's view stable;
- at most one open run per (namespace, workflow_id), and `open_runs` lists exactly the open runs;
- every pending workflow task, activity, user timer and buffered event belongs to an open run
  and matches its scheduling event; every armed timer refers to an open run and a live owner;
- closed runs live only in the archive, each with a deletion time after its close time, and
  every latest-run pointer names a retained run of that workflow id (reference archive only: a
  store-backed one is compared to it by digest);
- a run's search attributes are sorted by name, unique, within SEARCH_ATTRIBUTES_PER_RUN_MAX;
- every outbox entry is under its own id, `outbox_bytes` is their payload total (the outbox
  bounds limit what tasks send; a close's notices are server-driven and may pass them),
  each open run's `pending_messages` counts exactly its entries, an open source run's entry names a `...Initiated` event of its history, and each
  pending child names a StartChildWorkflowExecutionInitiated event.
- a run's updates are bounded, an accepted one names its Accepted event, and one not yet
  delivered has a workflow task pending (on_update.update_problem).
"""

from __future__ import annotations

from raftflow.protocol.events import (
    CLOSE_EVENT_TYPES,
    EventType,
    HistoryEvent,
    TimerStartedEventAttributes,
)
from raftflow.protocol.schedules import SCHEDULE_BUFFERED_ACTIONS_MAX
from raftflow.protocol.search_attributes import SEARCH_ATTRIBUTES_PER_RUN_MAX
from raftflow.shards.core import limits, run_history
from raftflow.shards.core.memory_archive import MemoryArchive
from raftflow.shards.core.on_update import update_problem
from raftflow.shards.core.outbox_queue import entry_bytes
from raftflow.shards.core.state import (
    ActivityPhase,
    Execution,
    ShardState,
    TimerKind,
)

# A started workflow task's very next event closes it: events arriving meanwhile are buffered.
_TASK_CLOSE_EVENT_TYPES = frozenset({EventType.WORKFLOW_TASK_COMPLETED,
                                     EventType.WORKFLOW_TASK_FAILED,
                                     EventType.WORKFLOW_TASK_TIMED_OUT})


_INITIATED_TYPES = frozenset({
    EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED})


class InvariantViolation(AssertionError):
    """A broken safety property: a bug. The shard actor crashes and is rebuilt."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantViolation(message)


def check_invariants(state: ShardState) -> None:
    open_seen: dict[tuple[str, str], str] = {}
    for run_id, execution in state.executions.items():
        _require(run_id == execution.run_id, f"run {run_id} stored under the wrong key")
        _require(execution.is_open, f"closed run {run_id} kept among the open runs")
        history = _whole_history(state, execution)
        _check_history(execution, history)
        _require(execution.key not in open_seen, f"two open runs for {execution.key}")
        open_seen[execution.key] = run_id
        _check_pending(execution, history)
        _check_attributes(execution)
    _require(open_seen == state.open_runs, "open_runs does not list exactly the open runs")
    _check_timers(state)
    _check_outbox(state)
    _check_schedules(state)
    if isinstance(state.archive, MemoryArchive):  # a store-backed archive is checked by digest
        _check_archive(state, state.archive)


def _check_schedules(state: ShardState) -> None:
    """Each schedule under its key, within its bounds; no action both running and buffered;
    the action budget never negative; the cursor never before the schedule's creation (it
    only moves forward: on_schedules refuses a tick that would move it back)."""
    _require(len(state.schedules) <= limits.SCHEDULES_PER_SHARD_MAX, "too many schedules")
    for key, record in state.schedules.items():
        _require(key == (record.namespace, record.schedule_id), f"schedule {key} misfiled")
        buffered = [b.workflow_id for b in record.buffered]
        _require(len(buffered) <= SCHEDULE_BUFFERED_ACTIONS_MAX, f"schedule {key}: buffer")
        _require(not set(buffered) & set(record.running), f"schedule {key}: buffered runs")
        _require(record.schedule.state.remaining_actions >= 0, f"schedule {key}: budget")
        _require(len(record.backfills) <= limits.SCHEDULE_BACKFILLS_PENDING_MAX,
                 f"schedule {key}: backfills")
        _require(record.processed_through_ms >= record.created_at_ms,
                 f"schedule {key}: cursor before its creation")


def _check_outbox(state: ShardState) -> None:
    outbox = state.outbox
    _require(sum(entry_bytes(e.body) for e in outbox.values()) == state.outbox_bytes,
             "outbox_bytes is not the outbox's payload total")
    pending: dict[str, int] = {}
    for message_id, entry in outbox.items():
        _require(message_id == entry.message_id and message_id.startswith(
            f"{entry.source_run_id}/{entry.initiated_event_id}"),
            f"outbox entry {message_id} under a wrong id")
        pending[entry.source_run_id] = pending.get(entry.source_run_id, 0) + 1
        source = state.executions.get(entry.source_run_id)
        if source is None:
            continue  # a closed source: the message still goes out
        initiated = _whole_history(state, source)[entry.initiated_event_id - 1]
        _require(initiated.event_type in _INITIATED_TYPES,
                 f"outbox entry {message_id} names event {initiated.event_type}")
    for run_id, execution in state.executions.items():
        _require(execution.pending_messages == pending.get(run_id, 0),
                 f"run {run_id} counts {execution.pending_messages} pending messages")
        _require(execution.pending_messages <= limits.PENDING_MESSAGES_PER_RUN_MAX,
                 f"run {run_id} over PENDING_MESSAGES_PER_RUN_MAX")
        events = _whole_history(state, execution) if execution.children else []
        for child_event_id in execution.children:
            _require(events[child_event_id - 1].event_type
                     == EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED,
                     f"run {run_id} child {child_event_id} names no StartChild event")


def _check_archive(state: ShardState, archive: MemoryArchive) -> None:
    runs, latest, _ = archive.contents()
    for run in runs:
        execution = run.execution
        _require(not execution.is_open, f"open run {execution.run_id} in the archive")
        _require(execution.run_id not in state.executions, "run both open and archived")
        _require(execution.spilled_events == 0, f"closed run {execution.run_id} not whole")
        _check_history(execution, execution.history)
        _check_closed(execution)
        assert execution.close_time_ms is not None
        _require(run.delete_at_ms >= execution.close_time_ms, "deleted before it closed")
    for key, run_id in latest:
        closed = archive.closed_run(run_id)
        _require(closed is not None and closed.key == key, f"latest run of {key} mislabelled")


def _check_attributes(execution: Execution) -> None:
    names = [a.name for a in execution.search_attributes]
    _require(names == sorted(set(names)) and len(names) <= SEARCH_ATTRIBUTES_PER_RUN_MAX,
             f"run {execution.run_id}: search attributes not sorted, unique and bounded")


def _whole_history(state: ShardState, execution: Execution) -> list[HistoryEvent]:
    """An open run's whole history; its spilled part must be whole chunks that the archive
    holds (`run_history.whole` asserts it has every spilled event). How much stays in memory
    is a bound on memory, not on safety: a run restored from an older release may hold more
    until its next event."""
    spilled = execution.spilled_events
    _require(spilled % limits.HISTORY_CHUNK_EVENTS == 0, f"run {execution.run_id}: spilled "
             f"{spilled} events, not whole chunks")
    _require(not execution.history or execution.history[0].event_id == spilled + 1,
             f"run {execution.run_id}: history in memory does not follow its spilled part")
    return run_history.whole(state.archive, execution)


def _check_history(execution: Execution, history: list[HistoryEvent]) -> None:
    _require(bool(history), f"run {execution.run_id} has no history")
    _require(history[0].event_type == EventType.WORKFLOW_EXECUTION_STARTED, "first event")
    for position, event in enumerate(history, start=1):
        _require(event.event_id == position,
                 f"run {execution.run_id}: event {event.event_id} at position {position}")
        _require(event.time_ms >= 0, f"negative time at {event.event_id}")
        if event.event_type == EventType.WORKFLOW_TASK_STARTED and position < len(history):
            _require(history[position].event_type in _TASK_CLOSE_EVENT_TYPES,
                     f"run {execution.run_id}: task started at {position} not closed next")
        is_close = event.event_type in CLOSE_EVENT_TYPES
        _require(not is_close or position == len(history),
                 f"run {execution.run_id}: close event {event.event_id} is not last")
    closed = history[-1].event_type in CLOSE_EVENT_TYPES
    _require(closed != execution.is_open, f"run {execution.run_id}: status vs close event")
    _require(len(history) <= limits.HISTORY_EVENTS_MAX + limits.HISTORY_EVENTS_SERVER_SLACK,
             f"run {execution.run_id}: history beyond its limit")


def _check_pending(execution: Execution, history: list[HistoryEvent]) -> None:
    task = execution.workflow_task
    if task is not None:
        scheduled = history[task.scheduled_event_id - 1]
        _require(scheduled.event_type == EventType.WORKFLOW_TASK_SCHEDULED, "task scheduled id")
        if task.started_event_id:
            started = history[task.started_event_id - 1]
            _require(started.event_type == EventType.WORKFLOW_TASK_STARTED, "task started id")
            _require(task.started_event_id == len(history), "events after a started task")
    _require(not execution.buffered or execution.task_started(), "buffer without started task")
    _require(not execution.awaiting_backoff or execution.workflow_task is None,
             "a task scheduled during the back-off")
    _require(execution.attempt >= 1, "run attempt")
    _require(len(execution.activities) <= limits.PENDING_ACTIVITIES_MAX, "pending activities")
    _require(len(execution.activity_ids) == len(execution.activities), "activity id index")
    for sid, activity in execution.activities.items():
        _require(history[sid - 1].event_type == EventType.ACTIVITY_TASK_SCHEDULED,
                 f"activity {sid} has no scheduled event")
        _require(execution.activity_ids[activity.activity_id] == sid, "activity id index")
        _require(activity.attempt >= 1, "activity attempt")
    for timer_id, started_id in execution.timers.items():
        timer = history[started_id - 1].attributes
        _require(isinstance(timer, TimerStartedEventAttributes)
                 and timer.timer_id == timer_id, f"timer {timer_id}")
    problem = update_problem(execution, history)
    _require(problem is None, str(problem))


def _check_closed(execution: Execution) -> None:
    _require(execution.workflow_task is None and not execution.activities
             and not execution.timers and not execution.buffered
             and not execution.awaiting_backoff,
             f"closed run {execution.run_id} keeps pending work")
    _require(execution.close_time_ms is not None, "closed run without close time")


def _check_timers(state: ShardState) -> None:
    for (run_id, kind, ref), fire_at_ms in state.timers.items():
        execution = state.executions.get(run_id)
        _require(execution is not None and execution.is_open,
                 f"timer {kind}/{ref} refers to run {run_id} that is not open")
        assert execution is not None
        _require(fire_at_ms >= 0, "timer instant")
        _check_timer_owner(execution, TimerKind(kind), ref)
    for run_id, execution in state.executions.items():
        _require(not execution.awaiting_backoff
                 or (run_id, TimerKind.WORKFLOW_BACKOFF, 0) in state.timers,
                 f"run {run_id} waits for a back-off timer that is not armed")


def _check_timer_owner(execution: Execution, kind: TimerKind, ref: int) -> None:
    if kind is TimerKind.USER:
        _require(ref in execution.timers.values(), f"user timer {ref} has no owner")
    elif kind is TimerKind.WORKFLOW_TASK_START_TO_CLOSE:
        task = execution.workflow_task
        _require(task is not None and task.scheduled_event_id == ref
                 and task.started_event_id > 0, f"workflow task timer {ref} has no owner")
    elif kind in (TimerKind.RUN_TIMEOUT, TimerKind.EXECUTION_TIMEOUT):
        _require(ref == 0, "run timer ref")
    elif kind is TimerKind.WORKFLOW_BACKOFF:
        _require(ref == 0 and execution.awaiting_backoff and execution.workflow_task is None,
                 f"back-off timer of run {execution.run_id} with no attempt waiting")
    else:
        activity = execution.activities.get(ref)
        _require(activity is not None, f"activity timer {kind}/{ref} has no owner")
        assert activity is not None
        expected = {
            TimerKind.ACTIVITY_SCHEDULE_TO_START: (ActivityPhase.SCHEDULED,),
            TimerKind.ACTIVITY_START_TO_CLOSE: (ActivityPhase.STARTED,),
            TimerKind.ACTIVITY_HEARTBEAT: (ActivityPhase.STARTED,),
            TimerKind.ACTIVITY_RETRY: (ActivityPhase.BACKOFF,),
        }.get(kind, tuple(ActivityPhase))
        _require(activity.phase in expected, f"activity timer {kind} in phase {activity.phase}")
