"""Batch operations: one operation (terminate, cancel, signal, reset) applied to every workflow
a visibility query selects, as a durable job (issue 15 item 8; Temporal's batch operations).

Theory of operation. A job is a record in the state of the shard that owns (namespace, job id)
(shards/core/batches.py): its query, its operation, its rate and its progress — a visibility
page token (`cursor`) and counts. The leader of that shard runs it (api/batch_runner.py): it
reads the next page of the query from its cursor, applies the operation to each workflow with
a request id derived from the job and the run (`operation_request_id`), so a page done twice —
after a leader change, a crash — changes nothing twice, then commits `RecordBatchProgress`
naming the cursor it started from (a stale one, from an old leader, changes nothing). So a job
resumes where its last committed page ended, on whichever node leads its shard next.

Same wire contract as commands.py: frozen structs, fields added only with defaults.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

from raftflow.protocol.limits import ID_LENGTH_MAX
from raftflow.protocol.payload import PayloadField
from raftflow.protocol.workflow_commands import NO_PAYLOAD, Id, Message

# The visibility query's bound (raftflow.visibility.limits.QUERY_CHARS_MAX; checked equal there).
BATCH_QUERY_CHARS_MAX = 4096
# Operations per second a job may ask for; the default is Temporal's batcher default.
BATCH_RPS_MAX = 1_000
BATCH_RPS_DEFAULT = 50
# The visibility page a runner reads and commits at once: bounds the work redone after a
# leader change and the time between progress commits.
BATCH_PAGE_SIZE = 100
# Errors a job keeps (the latest), for describe.
BATCH_ERRORS_KEPT = 5


class BatchOperationType(StrEnum):
    TERMINATE = "terminate"
    CANCEL = "cancel"
    SIGNAL = "signal"
    RESET = "reset"


class BatchState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"  # every selected workflow was handled (some may have failed)
    STOPPED = "stopped"  # stopped by a caller before the end


Query = Annotated[str, msgspec.Meta(min_length=1, max_length=BATCH_QUERY_CHARS_MAX)]
Rps = Annotated[int, msgspec.Meta(ge=1, le=BATCH_RPS_MAX,
                                  description="Operations per second, at most.")]


class BatchOperation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to do to each workflow: `reason` for terminate, cancel and reset; `signal_name`
    and `input` for signal; `reset_type` (FirstWorkflowTask or LastWorkflowTask) for reset."""

    type: BatchOperationType
    reason: Message = ""
    signal_name: Annotated[str, msgspec.Meta(max_length=ID_LENGTH_MAX)] = ""
    input: PayloadField = NO_PAYLOAD
    reset_type: Annotated[str, msgspec.Meta(max_length=64)] = ""


class StartBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                 tag="StartBatch", tag_field="command"):
    now_ms: int
    namespace: str
    job_id: str
    query: str
    operation: BatchOperation
    rps: int
    request_id: str


class RecordBatchProgress(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                          tag="RecordBatchProgress", tag_field="command"):
    """A page done: the job moves from `cursor` to `next_cursor` ("" = the first page; a
    `done` page was the last)."""

    now_ms: int
    namespace: str
    job_id: str
    cursor: str
    next_cursor: str
    done: bool
    succeeded: int
    failed: int
    errors: tuple[str, ...] = ()


class StopBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                tag="StopBatch", tag_field="command"):
    now_ms: int
    namespace: str
    job_id: str
    reason: str
    request_id: str


def operation_request_id(job_id: str, workflow_id: str, run_id: str) -> str:
    """The request id of the job's operation on one run: the same on every attempt."""
    return f"batch:{job_id}:{workflow_id}:{run_id}"


# --- HTTP ---------------------------------------------------------------------------------------


class StartBatchRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST .../batches`: apply `operation` to every workflow `query` selects."""

    query: Query
    operation: BatchOperation
    rps: Rps = BATCH_RPS_DEFAULT
    job_id: Id | None = None
    request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=ID_LENGTH_MAX)] | None = None


class StopBatchRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Message = ""
    request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=ID_LENGTH_MAX)] | None = None


class BatchJobAnswer(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    namespace: str
    query: str
    operation: BatchOperation
    rps: int
    state: BatchState
    succeeded: int
    failed: int
    start_time: str
    close_time: str | None = None
    reason: str = ""  # why it stopped
    errors: list[str] = msgspec.field(default_factory=list)


class BatchJobList(msgspec.Struct, frozen=True, kw_only=True):
    jobs: list[BatchJobAnswer]
