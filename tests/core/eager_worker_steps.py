"""Worker steps shared by the shard core's eager-dispatch and sticky-history tests.

Not a test module. On top of the driver shard of `core_driver.py`: poll a workflow task (with
a sticky queue), complete workflow and activity tasks with eager requests (asserting they are
accepted), schedule an activity that touches every timer kind, and read dispatches, event ids
and event types out of outputs and tasks.
"""

from __future__ import annotations

from raftflow.protocol.commands import (
    RecordWorkflowTaskStarted,
    RespondActivityTaskCompleted,
    RespondWorkflowTaskCompleted,
    ScheduleActivityTask,
    TaskToken,
    WorkflowCommand,
)
from raftflow.protocol.effects import DispatchActivityTask, DispatchWorkflowTask
from raftflow.protocol.results import (
    Rejected,
    WorkflowTaskInfo,
    WorkflowTaskStartedResult,
)
from raftflow.shards.core import limits
from raftflow.shards.core.output import Output
from tests.core.core_driver import NAMESPACE, Shard, activity

LONG_ID = "x" * (limits.ID_LENGTH_MAX + 1)
STICKY = "sticky-worker-1"
STC_MS, STS_MS, HB_MS = 10_000, 500, 3_000


def _types(events: tuple[object, ...]) -> list[str]:
    return [e.event_type for e in events]  # type: ignore[attr-defined]


def _poll(shard: Shard, run_id: str, sticky_queue: str = "",
          request_id: str | None = None) -> WorkflowTaskInfo:
    execution = shard.execution(run_id)
    assert execution.workflow_task is not None, "no workflow task scheduled"
    output = shard.run(RecordWorkflowTaskStarted(
        now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id=execution.workflow_id,
        run_id=run_id, scheduled_event_id=execution.workflow_task.scheduled_event_id,
        identity="worker-1", request_id=request_id or shard.request_id(),
        sticky_queue=sticky_queue))
    assert isinstance(output.result, WorkflowTaskStartedResult), output.result
    return output.result.task


def _complete(shard: Shard, token: TaskToken, *commands: WorkflowCommand, eager_queue: str = "",
              eager_max: int = 0, sticky_queue: str = "") -> Output:
    output = shard.run(RespondWorkflowTaskCompleted(
        now_ms=shard.now_ms, token=token, commands=commands, identity="worker-1",
        sticky_queue=sticky_queue, eager_task_queue=eager_queue,
        eager_activities_max=eager_max))
    assert not isinstance(output.result, Rejected), output.result
    return output


def _complete_activity(shard: Shard, token: TaskToken, *, eager_queue: str = "",
                       sticky_queue: str = "") -> Output:
    output = shard.run(RespondActivityTaskCompleted(
        now_ms=shard.now_ms, token=token, result=b'"ok"', identity="worker-1",
        eager_task_queue=eager_queue, sticky_queue=sticky_queue))
    assert not isinstance(output.result, Rejected), output.result
    return output


def _act(activity_id: str, **fields: object) -> ScheduleActivityTask:
    """An activity with every timer kind a start touches: schedule-to-start (shorter than
    start-to-close, so a stray one would fire first), start-to-close and heartbeat."""
    return activity(activity_id, schedule_to_start_timeout_ms=STS_MS,
                    start_to_close_timeout_ms=STC_MS, heartbeat_timeout_ms=HB_MS, **fields)


def _activity_dispatches(output: Output) -> list[int]:
    return [e.scheduled_event_id for e in output.effects if isinstance(e, DispatchActivityTask)]


def _workflow_dispatches(output: Output) -> list[int]:
    return [e.scheduled_event_id for e in output.effects if isinstance(e, DispatchWorkflowTask)]


def _event_ids(task: WorkflowTaskInfo) -> list[int]:
    return [e.event_id for e in task.history]


def _with_activity_running(shard: Shard, *activity_ids: str) -> tuple[str, dict[str, TaskToken]]:
    """A run whose first task scheduled `activity_ids` (default queue), each polled and started;
    no workflow task is pending."""
    run_id = shard.start()
    shard.decide(run_id, *(activity(a) for a in activity_ids))
    return run_id, {a: shard.poll_activity(run_id, a).token for a in activity_ids}
