"""Test driver for the shard core: builds commands, applies them, checks invariants each step.

Not a test module. It plays proposer, matcher and worker around one `ShardState` with a manual
clock (`now_ms` only moves when a test says so).
"""

from __future__ import annotations

from msgspec.structs import replace

from raftflow.protocol.commands import (
    Command,
    Failure,
    FireTimers,
    RecordActivityTaskStarted,
    RecordWorkflowTaskStarted,
    RespondActivityTaskCompleted,
    RespondActivityTaskFailed,
    RespondWorkflowTaskCompleted,
    ScheduleActivityTask,
    SignalWorkflow,
    StartWorkflow,
    TaskToken,
    WorkflowCommand,
)
from raftflow.protocol.results import (
    ActivityTaskInfo,
    ActivityTaskStartedResult,
    Rejected,
    WorkflowStartedResult,
    WorkflowTaskInfo,
    WorkflowTaskStartedResult,
)
from raftflow.shards.core import apply
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.invariants import check_invariants
from raftflow.shards.core.memory_archive import MemoryArchive
from raftflow.shards.core.output import Output
from raftflow.shards.core.state import Execution, ShardState

NAMESPACE = "default"
QUEUE = "q"


def start_command(workflow_id: str = "wf", *, now_ms: int = 1_000, run_id: str | None = None,
                  request_id: str | None = None, **fields: object) -> StartWorkflow:
    command = StartWorkflow(now_ms=now_ms, namespace=NAMESPACE, workflow_id=workflow_id,
                            workflow_type="Greeter", task_queue=QUEUE, input=b'"in"',
                            request_id=request_id or f"req-{workflow_id}",
                            run_id=run_id or f"run-{workflow_id}")
    return replace(command, **fields)


def activity(activity_id: str = "a1", **fields: object) -> ScheduleActivityTask:
    command = ScheduleActivityTask(activity_id=activity_id, activity_type="Charge",
                                   input=b"{}", start_to_close_timeout_ms=10_000)
    return replace(command, **fields)


def all_runs(state: ShardState) -> list[Execution]:
    """Open runs, then the retained closed ones (which live in the archive)."""
    archive = state.archive
    assert isinstance(archive, MemoryArchive), "pure states keep the reference archive"
    runs, _, _ = archive.contents()
    return [*state.executions.values(), *(run.execution for run in runs)]


def history_events(state: ShardState) -> int:
    """Events in the histories of every run the shard holds, open or closed."""
    return sum(len(execution.history) for execution in all_runs(state))


class Shard:
    def __init__(self) -> None:
        self.state = ShardState.empty(0)
        self.now_ms = 1_000
        self._request = 0
        self.log: list[Command] = []

    # --- plumbing ---------------------------------------------------------------------------

    def run(self, command: Command) -> Output:
        self.log.append(command)
        output = apply(self.state, command)
        check_invariants(self.state)
        return output

    def run_unchanged(self, command: Command) -> Rejected:
        """Apply a command that must be refused, and check it changed nothing."""
        # The only change a refusal may make is counting itself as applied.
        self.state.applied_index += 1
        expected = state_digest(self.state)
        self.state.applied_index -= 1
        output = self.run(command)
        assert isinstance(output.result, Rejected), output.result
        assert not output.events and not output.effects, output
        assert state_digest(self.state) == expected, "a refusal changed the state"
        return output.result

    def request_id(self) -> str:
        self._request += 1
        return f"r{self._request}"

    def execution(self, run_id: str) -> Execution:
        """An open run or a retained closed one (closed runs live in the archive)."""
        execution = self.state.find_run(run_id)
        assert execution is not None, f"run {run_id} neither open nor retained"
        return execution

    def event_types(self, run_id: str) -> list[str]:
        return [event.event_type for event in self.execution(run_id).history]

    def advance(self, ms: int) -> Output:
        self.now_ms += ms
        return self.run(FireTimers(now_ms=self.now_ms))

    # --- proposer / worker roles ----------------------------------------------------------------

    def start(self, workflow_id: str = "wf", **fields: object) -> str:
        command = replace(start_command(workflow_id, now_ms=self.now_ms), **fields)
        output = self.run(command)
        assert isinstance(output.result, WorkflowStartedResult), output.result
        return output.result.run_id

    def poll_workflow_task(self, run_id: str, *, request_id: str | None = None,
                           ) -> WorkflowTaskInfo:
        execution = self.execution(run_id)
        assert execution.workflow_task is not None, "no workflow task scheduled"
        output = self.run(RecordWorkflowTaskStarted(
            now_ms=self.now_ms, namespace=execution.namespace, workflow_id=execution.workflow_id,
            run_id=run_id, scheduled_event_id=execution.workflow_task.scheduled_event_id,
            identity="worker-1", request_id=request_id or self.request_id()))
        assert isinstance(output.result, WorkflowTaskStartedResult), output.result
        return output.result.task

    def complete_task(self, token: TaskToken, *commands: WorkflowCommand) -> Output:
        return self.run(RespondWorkflowTaskCompleted(now_ms=self.now_ms, token=token,
                                                     commands=commands, identity="worker-1"))

    def decide(self, run_id: str, *commands: WorkflowCommand) -> Output:
        """Poll the run's workflow task and complete it with `commands`."""
        task = self.poll_workflow_task(run_id)
        output = self.complete_task(task.token, *commands)
        assert not isinstance(output.result, Rejected), output.result
        return output

    def wake(self, run_id: str) -> Output:
        """Signal the run so that it gets a workflow task."""
        execution = self.execution(run_id)
        return self.run(SignalWorkflow(now_ms=self.now_ms, namespace=execution.namespace,
                                       workflow_id=execution.workflow_id, run_id=run_id,
                                       signal_name="wake", request_id=self.request_id()))

    def poll_activity(self, run_id: str, activity_id: str = "a1") -> ActivityTaskInfo:
        execution = self.execution(run_id)
        sid = execution.activity_ids[activity_id]
        output = self.run(RecordActivityTaskStarted(
            now_ms=self.now_ms, namespace=execution.namespace, workflow_id=execution.workflow_id,
            run_id=run_id, scheduled_event_id=sid, attempt=execution.activities[sid].attempt,
            identity="worker-2", request_id=self.request_id()))
        assert isinstance(output.result, ActivityTaskStartedResult), output.result
        return output.result.task

    def complete_activity(self, token: TaskToken, result: bytes = b'"ok"') -> Output:
        return self.run(RespondActivityTaskCompleted(now_ms=self.now_ms, token=token,
                                                     result=result, identity="worker-2"))

    def fail_activity(self, token: TaskToken, failure: Failure | None = None) -> Output:
        failure = failure or Failure(message="boom", type="IOError")
        return self.run(RespondActivityTaskFailed(now_ms=self.now_ms, token=token,
                                                  failure=failure, identity="worker-2"))

