"""StartWorkflow: open a new run, honouring request-id dedupe and workflow-id reuse policies.

Theory of operation. At most one run per (namespace, workflow_id) is open (DESIGN §4 I5). A
start retried with the same request id gets the first answer back; a start whose request id is
the one that opened the current run answers that run with `created=False` even after the
request table evicted it. Otherwise the reuse policy decides, from the open run (only
terminate_if_running may replace it) or from the latest closed run.

Signal-with-start is a start carrying a signal (`signal_name`): where a plain start would be
refused because a run is open, the open run is signalled instead (`created=False`); where it
opens a run, the signal follows WorkflowExecutionStarted in the same commit. Either way the
signal is in the history exactly once per request id, atomically with the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from raftflow.protocol.commands import IdReusePolicy, RetryPolicy, StartWorkflow
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import (
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
)
from raftflow.protocol.results import Rejected, Result, WorkflowStartedResult, WorkflowStatus
from raftflow.protocol.search_attributes import SearchAttribute
from raftflow.shards.core import limits, run_history, validate
from raftflow.shards.core.on_workflow_task import do_start_workflow_task
from raftflow.shards.core.output import Output
from raftflow.shards.core.retried_completions import (
    eager_start_request_id,
    workflow_task_of_retried_eager_start,
)
from raftflow.shards.core.run_attributes import typed_or_rejected
from raftflow.shards.core.state import Execution, RequestKey, ShardState, TimerKind
from raftflow.shards.core.writes import (
    Changes,
    do_append,
    do_arm,
    do_close_run,
    do_deliver,
    do_remember,
    do_schedule_workflow_task,
)

_FAILED_STATUSES = frozenset({WorkflowStatus.FAILED, WorkflowStatus.CANCELED,
                              WorkflowStatus.TERMINATED, WorkflowStatus.TIMED_OUT})


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    """Everything needed to open a run (from StartWorkflow or ContinueAsNew)."""

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    input: bytes
    request_id: str
    task_timeout_ms: int
    run_timeout_ms: int | None
    execution_timeout_ms: int | None
    execution_expire_ms: int | None
    first_execution_run_id: str
    continued_execution_run_id: str | None
    search_attributes: tuple[SearchAttribute, ...] = ()  # typed, sorted by name
    retry_policy: RetryPolicy | None = None
    attempt: int = 1
    # > 0: the first workflow task waits this long (a retried attempt's back-off).
    first_task_backoff_ms: int = 0
    traceparent: str = ""  # the starter's W3C traceparent, copied opaque ("": none)


def on_start_workflow(state: ShardState, command: StartWorkflow) -> Output:
    request_key = ("start", command.namespace, command.workflow_id, command.request_id)
    previous = state.archive.recall(request_key)
    if previous is not None:
        return Output(result=_with_eager_task(state, command, previous))
    rejected = _check_start(state, command)
    if rejected is not None:
        return Output(result=rejected)
    attributes = typed_or_rejected(state, command.namespace, command.search_attributes)
    if isinstance(attributes, Rejected):
        return Output(result=attributes)
    open_run = state.open_execution(command.namespace, command.workflow_id)
    if open_run is not None:
        started = run_history.event(state.archive, open_run, 1).attributes
        assert isinstance(started, WorkflowExecutionStartedEventAttributes), started
        if started.request_id == command.request_id:
            return Output(result=_with_eager_task(state, command, WorkflowStartedResult(
                run_id=open_run.run_id, created=False)))
        if (command.signal_name
                and command.id_reuse_policy is not IdReusePolicy.TERMINATE_IF_RUNNING):
            return _signal_open_run(state, command, open_run, request_key)
        if command.id_reuse_policy is not IdReusePolicy.TERMINATE_IF_RUNNING:
            return Output(result=Rejected(code=ErrorCode.WORKFLOW_ALREADY_STARTED,
                                          message=f"run {open_run.run_id} is open"))
    elif (rejected := _check_reuse(state, command)) is not None:
        return Output(result=rejected)
    if open_run is None and len(state.open_runs) >= limits.OPEN_RUNS_PER_SHARD_MAX:
        return Output(result=validate.limit_exceeded("OPEN_RUNS_PER_SHARD_MAX",
                                                     limits.OPEN_RUNS_PER_SHARD_MAX))
    spec = _spec_from(command, attributes)
    result = WorkflowStartedResult(run_id=command.run_id, created=True)
    # Commit: every refusal is behind us.
    assert open_run is None or open_run.is_open
    changes = Changes()
    if open_run is not None:
        do_close_run(state, open_run, changes, command.now_ms, (
            WorkflowStatus.TERMINATED, WorkflowExecutionTerminatedEventAttributes(
                reason="terminate_if_running", request_id=command.request_id)))
    execution = do_start_run(state, changes, spec, command.now_ms)
    if command.signal_name:  # after WorkflowTaskScheduled: it needs no task of its own
        do_deliver(state, execution, changes, command.now_ms, (_signaled(command),))
    do_remember(state, request_key, result, command.now_ms)
    assert state.open_runs[(command.namespace, command.workflow_id)] == command.run_id
    if command.eager_task_queue and command.eager_task_queue == command.task_queue:
        return Output.of(_do_start_eager(state, execution, changes, command, result), changes)
    return Output.of(result, changes)


def _signaled(command: StartWorkflow) -> WorkflowExecutionSignaledEventAttributes:
    return WorkflowExecutionSignaledEventAttributes(
        signal_name=command.signal_name, input=command.signal_input,
        request_id=command.request_id)


def _signal_open_run(state: ShardState, command: StartWorkflow, open_run: Execution,
                     request_key: RequestKey) -> Output:
    """Signal-with-start that finds a run open: signal it, as a SignalWorkflow would."""
    rejected = validate.history_room(open_run.history_length, len(open_run.buffered), 2)
    if rejected is not None:
        return Output(result=rejected)
    assert open_run.is_open and command.signal_name
    changes = Changes()
    do_deliver(state, open_run, changes, command.now_ms, (_signaled(command),))
    result = WorkflowStartedResult(run_id=open_run.run_id, created=False)
    do_remember(state, request_key, result, command.now_ms)
    return Output.of(result, changes)


def _with_eager_task(state: ShardState, command: StartWorkflow, answer: Result) -> Result:
    """A retried eager start's answer carries the task its first attempt started, as the
    first answer did (retried_completions.py); nothing changes."""
    if not isinstance(answer, WorkflowStartedResult) or answer.workflow_task is not None:
        return answer
    task = workflow_task_of_retried_eager_start(state, command, answer.run_id)
    return answer if task is None else msgspec.structs.replace(answer, workflow_task=task)


def _do_start_eager(state: ShardState, execution: Execution, changes: Changes,
                    command: StartWorkflow, result: WorkflowStartedResult,
                    ) -> WorkflowStartedResult:
    """Start the run's first workflow task for the caller's own worker (eager start; the
    start drops its own dispatch to pollers). The remembered answer (I5) stays without it."""
    task = do_start_workflow_task(state, execution, changes, command.now_ms, (
        eager_start_request_id(command.request_id), command.eager_identity, ""))
    assert task.history[0].event_id == 1 and task.started_event_id == 3
    return WorkflowStartedResult(run_id=result.run_id, created=True, workflow_task=task)


def _check_start(state: ShardState, command: StartWorkflow) -> Rejected | None:
    rejected = validate.check_ids(namespace=command.namespace, workflow_id=command.workflow_id,
                                  workflow_type=command.workflow_type,
                                  task_queue=command.task_queue, request_id=command.request_id,
                                  run_id=command.run_id)
    rejected = rejected or validate.check_payload("input", command.input)
    rejected = rejected or validate.check_optional_id("eager_task_queue", command.eager_task_queue)
    rejected = rejected or validate.check_optional_id("eager_identity", command.eager_identity)
    rejected = rejected or validate.check_duration("execution_timeout_ms",
                                                   command.execution_timeout_ms)
    rejected = rejected or validate.check_duration("run_timeout_ms", command.run_timeout_ms)
    if command.retry_policy is not None:
        rejected = rejected or validate.check_retry_policy("retry_policy", command.retry_policy)
    if command.signal_name or command.signal_input:
        rejected = (rejected or validate.check_id("signal_name", command.signal_name)
                    or validate.check_payload("signal_input", command.signal_input))
        if rejected is None and command.eager_task_queue:
            # The eager task would have to carry the signal too; Temporal refuses it as well.
            rejected = Rejected(code=ErrorCode.INVALID_ARGUMENT, field="eager_task_queue",
                                message="an eager start cannot carry a signal")
    if rejected is not None:
        return rejected
    if not 1 <= command.task_timeout_ms <= limits.WORKFLOW_TASK_TIMEOUT_MS_MAX:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, field="task_timeout_ms",
                        message=f"task_timeout_ms must be in [1, WORKFLOW_TASK_TIMEOUT_MS_MAX="
                                f"{limits.WORKFLOW_TASK_TIMEOUT_MS_MAX}]")
    if state.run_id_used(command.run_id):
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, field="run_id",
                        message=f"run id {command.run_id} already used in this shard")
    assert command.now_ms >= 0 and command.task_timeout_ms >= 1
    return None


def _check_reuse(state: ShardState, command: StartWorkflow) -> Rejected | None:
    """Reuse policy against the latest closed run of this workflow id (none open)."""
    latest_run_id = state.archive.latest_closed((command.namespace, command.workflow_id))
    if latest_run_id is None:
        return None
    head = state.archive.closed_head(latest_run_id)  # its status, without reading its history
    assert head is not None and not head.execution.is_open, latest_run_id
    latest = head.execution
    assert latest.key == (command.namespace, command.workflow_id), latest_run_id
    policy = command.id_reuse_policy
    refused = (policy is IdReusePolicy.REJECT_DUPLICATE
               or (policy is IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
                   and latest.status not in _FAILED_STATUSES))
    if refused:
        return Rejected(code=ErrorCode.WORKFLOW_ALREADY_STARTED,
                        message=f"reuse policy {policy.value} refuses after run "
                                f"{latest_run_id} ({latest.status.value})")
    return None


def _spec_from(command: StartWorkflow, attributes: tuple[SearchAttribute, ...]) -> RunSpec:
    execution_expire_ms = None
    if command.execution_timeout_ms is not None:
        execution_expire_ms = command.now_ms + command.execution_timeout_ms
    return RunSpec(namespace=command.namespace, workflow_id=command.workflow_id,
                   run_id=command.run_id, workflow_type=command.workflow_type,
                   task_queue=command.task_queue, input=command.input,
                   request_id=command.request_id, task_timeout_ms=command.task_timeout_ms,
                   run_timeout_ms=command.run_timeout_ms,
                   execution_timeout_ms=command.execution_timeout_ms,
                   execution_expire_ms=execution_expire_ms,
                   first_execution_run_id=command.run_id, continued_execution_run_id=None,
                   search_attributes=attributes, retry_policy=command.retry_policy,
                   traceparent=command.traceparent)


def do_start_run(state: ShardState, changes: Changes, spec: RunSpec, now_ms: int) -> Execution:
    """Open a run: WorkflowExecutionStarted, first WorkflowTaskScheduled (or, for a retried
    attempt, the back-off timer that schedules it), run timers."""
    key = (spec.namespace, spec.workflow_id)
    # Run ids are unique in a shard: a start checked it (`_check_start`), a continue-as-new
    # derives a fresh one and checks it too (on_task_completed.py).
    assert key not in state.open_runs and spec.run_id not in state.executions, spec.run_id
    execution = Execution(
        namespace=spec.namespace, workflow_id=spec.workflow_id, run_id=spec.run_id,
        workflow_type=spec.workflow_type, task_queue=spec.task_queue, start_time_ms=now_ms,
        task_timeout_ms=spec.task_timeout_ms, run_timeout_ms=spec.run_timeout_ms,
        execution_timeout_ms=spec.execution_timeout_ms,
        execution_expire_ms=spec.execution_expire_ms,
        first_execution_run_id=spec.first_execution_run_id,
        continued_execution_run_id=spec.continued_execution_run_id,
        search_attributes=spec.search_attributes, retry_policy=spec.retry_policy,
        attempt=spec.attempt)
    state.executions[spec.run_id] = execution
    state.touch(spec.run_id)
    state.open_runs[key] = spec.run_id
    do_append(execution, changes, now_ms, WorkflowExecutionStartedEventAttributes(
        workflow_type=spec.workflow_type, task_queue=spec.task_queue, input=spec.input,
        workflow_id=spec.workflow_id, namespace=spec.namespace, request_id=spec.request_id,
        execution_timeout_ms=spec.execution_timeout_ms, run_timeout_ms=spec.run_timeout_ms,
        task_timeout_ms=spec.task_timeout_ms,
        continued_execution_run_id=spec.continued_execution_run_id,
        first_execution_run_id=spec.first_execution_run_id, attempt=spec.attempt,
        retry_policy=spec.retry_policy, first_workflow_task_backoff_ms=spec.first_task_backoff_ms,
        traceparent=spec.traceparent))
    backoff_ms = spec.first_task_backoff_ms
    if backoff_ms:
        execution.awaiting_backoff = True
        do_arm(state, changes, (spec.run_id, TimerKind.WORKFLOW_BACKOFF, 0), now_ms + backoff_ms)
    else:
        do_schedule_workflow_task(state, execution, changes, now_ms, attempt=1)
    if spec.run_timeout_ms is not None:  # the run's time starts when its first task may
        do_arm(state, changes, (spec.run_id, TimerKind.RUN_TIMEOUT, 0),
               now_ms + backoff_ms + spec.run_timeout_ms)
    if spec.execution_expire_ms is not None:
        do_arm(state, changes, (spec.run_id, TimerKind.EXECUTION_TIMEOUT, 0),
               spec.execution_expire_ms)
    assert execution.history[-1].event_id == len(execution.history) == (1 if backoff_ms else 2)
    return execution
