"""A batch job as its shard holds it (protocol/batches.py tells the whole story)."""

from __future__ import annotations

import msgspec

from raftflow.protocol.batches import BatchOperation, BatchState

BatchKey = tuple[str, str]  # (namespace, job id)


class BatchJob(msgspec.Struct, kw_only=True):
    namespace: str
    job_id: str
    query: str
    operation: BatchOperation
    rps: int
    start_ms: int
    state: BatchState = BatchState.RUNNING
    cursor: str = ""  # visibility page token of the next page; "" = the first
    succeeded: int = 0
    failed: int = 0
    errors: list[str] = msgspec.field(default_factory=list)  # the latest BATCH_ERRORS_KEPT
    close_ms: int | None = None
    reason: str = ""
