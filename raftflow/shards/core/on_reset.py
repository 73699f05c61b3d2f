"""ResetWorkflow: re-run a workflow from one of its workflow tasks, as Temporal's reset does.

Theory of operation. The reset point is a workflow task of the base run (the given run, else
the workflow id's latest run, open or closed): named by event id (its WorkflowTaskCompleted,
Started, Failed or TimedOut) or by kind (the first or last completed task). In one commit:
1. the workflow id's open run, if any (the base run itself, or a later one), is terminated with
   a reason naming the reset and the new run;
2. a new run (`new_run_id`, the proposer's) opens holding the base run's history up to and
   including the point's WorkflowTaskStarted, with the pending work that history leaves
   (reset_rebuild.py);
3. that task is closed by WorkflowTaskFailed (cause ResetWorkflow; its failure payload holds
   the reason and both run ids, `reset_failure`): whatever that task answered in the base run
   never happened in the new one;
4. the signals the base run received after the point (written, or buffered under a running
   task) are delivered again, in order and keeping their request ids, then a workflow task is
   scheduled. The worker replays the copied history and re-executes from the point.

A retry with the same request id gets the first answer (I5), the same new run. Refusals name
the field: `event_id` (not a workflow task's event), `reset_type` (no completed task, or both
or neither given), `run_id`.
"""

from __future__ import annotations

import json

from raftflow.protocol.commands import ResetType, ResetWorkflow
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import (
    EventAttributes,
    HistoryEvent,
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
    WorkflowTaskCompletedEventAttributes,
    WorkflowTaskFailedEventAttributes,
    WorkflowTaskStartedEventAttributes,
    WorkflowTaskTimedOutEventAttributes,
)
from raftflow.protocol.results import Rejected, WorkflowStartedResult, WorkflowStatus
from raftflow.shards.core import limits, run_history, validate
from raftflow.shards.core.outbox import check_outbox_room
from raftflow.shards.core.outbox_queue import entry_bytes
from raftflow.shards.core.output import Output
from raftflow.shards.core.reset_rebuild import do_open_copy, unanswered_messages
from raftflow.shards.core.state import Execution, ShardState
from raftflow.shards.core.writes import (
    Changes,
    do_append,
    do_close_run,
    do_deliver,
    do_remember,
    do_schedule_workflow_task,
)

RESET_CAUSE = "ResetWorkflow"
REASON_LENGTH_MAX = 10_000  # the gateway's bound on a reason (http_bodies.REASON_LENGTH_MAX)


def _invalid(field: str, message: str) -> Rejected:
    return Rejected(code=ErrorCode.INVALID_ARGUMENT, field=field, message=message)


def on_reset_workflow(state: ShardState, command: ResetWorkflow) -> Output:
    key = ("reset", command.namespace, command.workflow_id, command.request_id)
    previous = state.archive.recall(key)
    if previous is not None:
        return Output(result=previous)
    rejected = _check(state, command)
    if rejected is not None:
        return Output(result=rejected)
    base = _base_run(state, command)
    if isinstance(base, Rejected):
        return Output(result=base)
    history = run_history.whole(state.archive, base)
    started_id = _reset_point(history, command)
    if isinstance(started_id, Rejected):
        return Output(result=started_id)
    signals = _signals_after(base, history, started_id)
    # The copy, WorkflowTaskFailed, the signals, WorkflowTaskScheduled.
    rejected = validate.history_room(started_id, 0, 2 + len(signals))
    resent = unanswered_messages(base, list(history[:started_id]))
    rejected = rejected or check_outbox_room(state, len(resent),
                                             sum(entry_bytes(body) for _, body in resent))
    open_run = state.open_execution(command.namespace, command.workflow_id)
    if (rejected is None and open_run is None
            and len(state.open_runs) >= limits.OPEN_RUNS_PER_SHARD_MAX):
        rejected = validate.limit_exceeded("OPEN_RUNS_PER_SHARD_MAX",
                                           limits.OPEN_RUNS_PER_SHARD_MAX)
    if rejected is not None:
        return Output(result=rejected)
    copied = list(history[:started_id])  # read before the base run may close below
    started = copied[-1].attributes
    assert isinstance(started, WorkflowTaskStartedEventAttributes), started_id
    # Commit: every refusal is behind us.
    changes = Changes()
    if open_run is not None:
        do_close_run(state, open_run, changes, command.now_ms, (
            WorkflowStatus.TERMINATED, WorkflowExecutionTerminatedEventAttributes(
                reason=_terminate_reason(command),
                request_id=command.request_id)))
    execution = do_open_copy(state, changes, base, copied, command)
    do_append(execution, changes, command.now_ms, WorkflowTaskFailedEventAttributes(
        scheduled_event_id=started.scheduled_event_id, started_event_id=started_id,
        cause=RESET_CAUSE, failure=reset_failure(base.run_id, command)))
    if signals:
        do_deliver(state, execution, changes, command.now_ms, signals)
    else:
        do_schedule_workflow_task(state, execution, changes, command.now_ms, attempt=1)
    result = WorkflowStartedResult(run_id=command.new_run_id, created=True)
    do_remember(state, key, result, command.now_ms)
    assert state.open_runs[execution.key] == command.new_run_id and execution.workflow_task
    return Output.of(result, changes)


def reset_failure(base_run_id: str, command: ResetWorkflow) -> bytes:
    """The reset task's `failure` payload: a `Failure` as JSON (the shape a worker's failure
    payload has) with the reason as message and both runs in its details, as Temporal's
    WorkflowTaskFailed of a reset carries them. Built with a fixed key order: every replica
    writes the same bytes (I2)."""
    failure = {"message": command.reason, "type": RESET_CAUSE, "non_retryable": True,
               "details": {"base_run_id": base_run_id, "new_run_id": command.new_run_id}}
    return json.dumps(failure, separators=(",", ":"), ensure_ascii=False).encode()


def _terminate_reason(command: ResetWorkflow) -> str:
    said = f"reset to run {command.new_run_id}"
    return f"{said}: {command.reason}" if command.reason else said


def _check(state: ShardState, command: ResetWorkflow) -> Rejected | None:
    rejected = validate.check_ids(namespace=command.namespace, workflow_id=command.workflow_id,
                                  request_id=command.request_id, new_run_id=command.new_run_id)
    if rejected is None and command.run_id is not None:
        rejected = validate.check_id("run_id", command.run_id)
    if rejected is not None:
        return rejected
    if len(command.reason) > REASON_LENGTH_MAX:
        return _invalid("reason", f"reason must be at most {REASON_LENGTH_MAX} characters")
    if (command.event_id > 0) == (command.reset_type is not None):
        return _invalid("event_id", "give exactly one of event_id and reset_type")
    if command.event_id < 0:
        return _invalid("event_id", "event_id must be a positive event id")
    if state.run_id_used(command.new_run_id):
        return _invalid("new_run_id", f"run id {command.new_run_id} already used in this shard")
    return None


def _base_run(state: ShardState, command: ResetWorkflow) -> Execution | Rejected:
    key = (command.namespace, command.workflow_id)
    run_id = command.run_id or state.latest_run_id(key)
    base = None if run_id is None else state.find_run(run_id)
    if base is None or base.key != key:
        what = f"run {command.run_id} of workflow" if command.run_id else "workflow"
        return validate.not_found(f"{what} {command.workflow_id} not found")
    return base


def _reset_point(history: list[HistoryEvent], command: ResetWorkflow) -> int | Rejected:
    """The WorkflowTaskStarted event id of the task the reset names."""
    if command.reset_type is not None:
        completed = [e.attributes.started_event_id for e in history
                     if isinstance(e.attributes, WorkflowTaskCompletedEventAttributes)]
        if not completed:
            return _invalid("reset_type", "the run has no completed workflow task")
        first = command.reset_type is ResetType.FIRST_WORKFLOW_TASK
        return completed[0] if first else completed[-1]
    event_id = command.event_id
    refused = _invalid("event_id", f"event {event_id} is not a started workflow task's "
                       "WorkflowTaskStarted, Completed, Failed or TimedOut event")
    if not 1 <= event_id <= len(history):
        return refused
    attributes = history[event_id - 1].attributes
    if isinstance(attributes, WorkflowTaskStartedEventAttributes):
        return event_id
    if isinstance(attributes, WorkflowTaskCompletedEventAttributes
                  | WorkflowTaskFailedEventAttributes | WorkflowTaskTimedOutEventAttributes):
        started_id = attributes.started_event_id
        if 1 <= started_id < event_id and isinstance(history[started_id - 1].attributes,
                                                     WorkflowTaskStartedEventAttributes):
            return started_id
    return refused


def _signals_after(base: Execution, history: list[HistoryEvent],
                   started_id: int) -> tuple[EventAttributes, ...]:
    """The base run's signals after the reset point: written ones, then buffered ones."""
    written = [e.attributes for e in history[started_id:]]
    buffered = [b.attributes for b in base.buffered]
    return tuple(a for a in (*written, *buffered)
                 if isinstance(a, WorkflowExecutionSignaledEventAttributes))
