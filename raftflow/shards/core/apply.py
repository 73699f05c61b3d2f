"""Theory of operation: a shard is a deterministic function of its log.

Every replica applies the same committed commands in the same order and must end with
byte-identical state (DESIGN §4 I2). So nothing here reads a clock, draws a random number or does
IO: the proposer puts `now_ms` and new ids into the command. `apply` routes one command to its
`on_<command>` handler; handlers decide first and write after (a refusal changes nothing).
`pending_effects` re-derives, from state alone, every order a new leader's shell needs.
"""

from __future__ import annotations

import dataclasses
from typing import assert_never

from raftflow.protocol.commands import (
    AckMessages,
    Barrier,
    Command,
    ConfigureNamespace,
    DeliverMessages,
    FireTimers,
    RecordActivityTaskHeartbeat,
    RecordActivityTaskStarted,
    RecordBatchProgress,
    RecordWorkflowTaskStarted,
    RequestCancelWorkflow,
    RequestWorkflowUpdate,
    ResetWorkflow,
    RespondActivityTaskCanceled,
    RespondActivityTaskCompleted,
    RespondActivityTaskFailed,
    RespondWorkflowTaskCompleted,
    RespondWorkflowTaskFailed,
    SignalWorkflow,
    StartBatch,
    StartWorkflow,
    StopBatch,
    TerminateWorkflow,
)
from raftflow.protocol.effects import ArmTimer, Effect
from raftflow.protocol.results import Ack
from raftflow.protocol.schedule_commands import (
    CreateSchedule,
    DeleteSchedule,
    PatchSchedule,
    ScheduleTick,
    UpdateSchedule,
)
from raftflow.shards.core import (
    on_activity,
    on_requests,
    on_schedules,
    on_update,
    on_workflow_task,
    run_history,
)
from raftflow.shards.core.on_batch import (
    on_record_batch_progress,
    on_start_batch,
    on_stop_batch,
    running_jobs,
)
from raftflow.shards.core.on_deliver import on_deliver_messages
from raftflow.shards.core.on_namespace import on_configure_namespace
from raftflow.shards.core.on_reset import on_reset_workflow
from raftflow.shards.core.on_start import on_start_workflow
from raftflow.shards.core.on_task_completed import on_respond_workflow_task_completed
from raftflow.shards.core.on_timers import on_fire_timers
from raftflow.shards.core.outbox import on_ack_messages
from raftflow.shards.core.outbox_queue import queued_effects
from raftflow.shards.core.output import Output
from raftflow.shards.core.state import ActivityPhase, ShardState
from raftflow.shards.core.writes import dispatch_activity_task, dispatch_workflow_task

__all__ = ["Output", "apply", "pending_effects"]


def apply(state: ShardState, command: Command) -> Output:
    """Apply one committed command. Raises only on a broken invariant (a bug): the shell then
    crashes the shard actor, which is rebuilt from snapshot + log."""
    applied_index = state.applied_index
    assert command.now_ms >= 0, command
    output = _route(state, command)
    if output.grown:
        for execution in output.grown:
            if execution.is_open:  # a run that closed went to the archive whole
                run_history.spill(state.archive, execution)
        output = dataclasses.replace(output, grown=())
    state.applied_index = applied_index + 1
    assert all(e.event_id >= 1 for e in output.events)
    return output


def _route(state: ShardState, command: Command) -> Output:
    """One `on_<command>` handler per command type; assert_never keeps the match total."""
    match command:
        case StartWorkflow():
            return on_start_workflow(state, command)
        case SignalWorkflow():
            return on_requests.on_signal_workflow(state, command)
        case RequestCancelWorkflow():
            return on_requests.on_request_cancel_workflow(state, command)
        case TerminateWorkflow():
            return on_requests.on_terminate_workflow(state, command)
        case RecordWorkflowTaskStarted():
            return on_workflow_task.on_record_workflow_task_started(state, command)
        case RespondWorkflowTaskCompleted():
            return on_respond_workflow_task_completed(state, command)
        case RespondWorkflowTaskFailed():
            return on_workflow_task.on_respond_workflow_task_failed(state, command)
        case RecordActivityTaskStarted():
            return on_activity.on_record_activity_task_started(state, command)
        case RespondActivityTaskCompleted():
            return on_activity.on_respond_activity_task_completed(state, command)
        case RespondActivityTaskFailed():
            return on_activity.on_respond_activity_task_failed(state, command)
        case RespondActivityTaskCanceled():
            return on_activity.on_respond_activity_task_canceled(state, command)
        case RecordActivityTaskHeartbeat():
            return on_activity.on_record_activity_task_heartbeat(state, command)
        case FireTimers():
            return on_fire_timers(state, command)
        case Barrier():
            return Output(result=Ack())
        case ConfigureNamespace():
            return on_configure_namespace(state, command)
        case DeliverMessages():
            return on_deliver_messages(state, command)
        case AckMessages():
            return on_ack_messages(state, command)
        case StartBatch():
            return on_start_batch(state, command)
        case RecordBatchProgress():
            return on_record_batch_progress(state, command)
        case StopBatch():
            return on_stop_batch(state, command)
        case ResetWorkflow():
            return on_reset_workflow(state, command)
        case RequestWorkflowUpdate():
            return on_update.on_request_workflow_update(state, command)
        case CreateSchedule():
            return on_schedules.on_create_schedule(state, command)
        case UpdateSchedule():
            return on_schedules.on_update_schedule(state, command)
        case PatchSchedule():
            return on_schedules.on_patch_schedule(state, command)
        case DeleteSchedule():
            return on_schedules.on_delete_schedule(state, command)
        case ScheduleTick():
            return on_schedules.on_schedule_tick(state, command)
        case _:
            assert_never(command)


def pending_effects(state: ShardState) -> list[Effect]:
    """Every order the leader's shell must hold, rebuilt from state (effects are hints).

    One dispatch per scheduled-not-started workflow task and activity attempt, in the order
    the runs opened, then one `MessageQueued` per outbox entry, then one `ArmTimer` for the next wake-up (durable timer or archive
    expiry), if any.
    """
    effects: list[Effect] = []
    for execution in state.runs_to_dispatch():  # a store-backed replica skips idle rows
        assert execution.is_open, execution.run_id
        task = execution.workflow_task
        if task is not None and task.started_event_id == 0:
            effects.append(dispatch_workflow_task(execution))
        for activity in execution.activities.values():
            if activity.phase is ActivityPhase.SCHEDULED:
                effects.append(dispatch_activity_task(execution, activity))
    effects.extend(queued_effects(state))  # the courier re-sends the whole outbox
    effects.extend(running_jobs(state))  # the batch runner resumes every running job
    wakeup_ms = state.next_wakeup_ms()
    if wakeup_ms is not None:
        effects.append(ArmTimer(fire_at_ms=wakeup_ms))
    assert sum(isinstance(e, ArmTimer) for e in effects) <= 1
    return effects
