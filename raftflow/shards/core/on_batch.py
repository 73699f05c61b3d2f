"""Batch jobs in the shard core: start, record a page's progress, stop (protocol/batches.py
tells the whole story; api/batch_runner.py runs the jobs a leader holds).

A job's record changes only by these commands, so every replica holds the same progress and a
new leader resumes from the last committed page. `RecordBatchProgress` names the cursor it
started from: one that is not the job's (an old leader's page, a repeat) is refused as stale
and changes nothing, so no page is counted twice.
"""

from __future__ import annotations

from raftflow.protocol.batches import (
    BATCH_ERRORS_KEPT,
    BATCH_QUERY_CHARS_MAX,
    BATCH_RPS_MAX,
    BatchOperationType,
    BatchState,
    RecordBatchProgress,
    StartBatch,
    StopBatch,
)
from raftflow.protocol.effects import BatchActive
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import Ack, Rejected
from raftflow.shards.core import limits, validate
from raftflow.shards.core.batch_jobs import BatchJob
from raftflow.shards.core.output import Output
from raftflow.shards.core.state import ShardState
from raftflow.shards.core.writes import Changes, do_remember

_RESET_TYPES = frozenset({"FirstWorkflowTask", "LastWorkflowTask"})


def _invalid(field: str, message: str) -> Rejected:
    return Rejected(code=ErrorCode.INVALID_ARGUMENT, field=field, message=message)


def _check_start(command: StartBatch) -> Rejected | None:
    rejected = validate.check_ids(namespace=command.namespace, job_id=command.job_id,
                                  request_id=command.request_id)
    if rejected is not None:
        return rejected
    if not command.query or len(command.query) > BATCH_QUERY_CHARS_MAX:
        return _invalid("query", f"query must have 1 to {BATCH_QUERY_CHARS_MAX} characters")
    if not 1 <= command.rps <= BATCH_RPS_MAX:
        return _invalid("rps", f"rps must be in [1, {BATCH_RPS_MAX}]")
    operation = command.operation
    if operation.type is BatchOperationType.SIGNAL:
        return (validate.check_id("operation.signal_name", operation.signal_name)
                or validate.check_payload("operation.input", operation.input))
    if operation.type is BatchOperationType.RESET and operation.reset_type not in _RESET_TYPES:
        return _invalid("operation.reset_type", f"reset_type must be one of {sorted(_RESET_TYPES)}")
    return None


def on_start_batch(state: ShardState, command: StartBatch) -> Output:
    request_key = ("batch", command.namespace, command.job_id, command.request_id)
    previous = state.archive.recall(request_key)
    if previous is not None:
        return Output(result=previous)
    rejected = _check_start(command)
    if rejected is not None:
        return Output(result=rejected)
    key = (command.namespace, command.job_id)
    if key in state.batches:
        return Output(result=Rejected(code=ErrorCode.FAILED_PRECONDITION, field="job_id",
                                      message=f"batch job {command.job_id} exists"))
    evicted = None
    if len(state.batches) >= limits.BATCH_JOBS_PER_SHARD_MAX:
        # The oldest finished job makes room (finished jobs are kept for describe only).
        evicted = next((k for k, job in state.batches.items()
                        if job.state is not BatchState.RUNNING), None)
        if evicted is None:
            return Output(result=validate.limit_exceeded("BATCH_JOBS_PER_SHARD_MAX",
                                                         limits.BATCH_JOBS_PER_SHARD_MAX))
    # Commit.
    if evicted is not None:
        del state.batches[evicted]
    state.batches[key] = BatchJob(namespace=command.namespace, job_id=command.job_id,
                                  query=command.query, operation=command.operation,
                                  rps=command.rps, start_ms=command.now_ms)
    changes = Changes()
    changes.effects.append(BatchActive(namespace=command.namespace, job_id=command.job_id))
    do_remember(state, request_key, Ack(), command.now_ms)
    assert len(state.batches) <= limits.BATCH_JOBS_PER_SHARD_MAX
    return Output.of(Ack(), changes)


def on_record_batch_progress(state: ShardState, command: RecordBatchProgress) -> Output:
    job = state.batches.get((command.namespace, command.job_id))
    if job is None:
        return Output(result=validate.not_found(f"batch job {command.job_id} not found"))
    if job.state is not BatchState.RUNNING or job.cursor != command.cursor:
        return Output(result=validate.stale(
            f"batch job {command.job_id} is {job.state.value} at another page"))
    if command.succeeded < 0 or command.failed < 0:
        return Output(result=_invalid("succeeded", "counts are not negative"))
    job.cursor = command.next_cursor
    job.succeeded += command.succeeded
    job.failed += command.failed
    job.errors = [*job.errors, *command.errors][-BATCH_ERRORS_KEPT:]
    if command.done:
        job.state = BatchState.COMPLETED
        job.close_ms = command.now_ms
    return Output(result=Ack())


def on_stop_batch(state: ShardState, command: StopBatch) -> Output:
    request_key = ("batch-stop", command.namespace, command.job_id, command.request_id)
    previous = state.archive.recall(request_key)
    if previous is not None:
        return Output(result=previous)
    job = state.batches.get((command.namespace, command.job_id))
    if job is None:
        return Output(result=validate.not_found(f"batch job {command.job_id} not found"))
    if job.state is BatchState.RUNNING:
        job.state = BatchState.STOPPED
        job.close_ms = command.now_ms
        job.reason = command.reason
    do_remember(state, request_key, Ack(), command.now_ms)
    return Output(result=Ack())


def running_jobs(state: ShardState) -> list[BatchActive]:
    """One order per running job: what a new leader's batch runner must resume."""
    return [BatchActive(namespace=job.namespace, job_id=job.job_id)
            for job in state.batches.values() if job.state is BatchState.RUNNING]
