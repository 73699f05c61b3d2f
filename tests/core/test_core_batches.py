"""Goal: a batch job's record changes only by its commands: a start is idempotent by request
id, progress moves the cursor only from the cursor it names (a stale page changes nothing), a
done page completes the job, a stop ends a running one, a full shard makes room by dropping the
oldest finished job, and every refusal changes nothing.

Method: one pure shard (core_driver); refusals checked by digest (`run_unchanged`).
"""

from __future__ import annotations

import pytest

from raftflow.protocol.batches import (
    BatchOperation,
    BatchOperationType,
    BatchState,
    RecordBatchProgress,
    StartBatch,
    StopBatch,
)
from raftflow.protocol.effects import BatchActive
from raftflow.protocol.results import Ack
from raftflow.shards.core import limits, pending_effects
from tests.core.core_driver import Shard

TERMINATE = BatchOperation(type=BatchOperationType.TERMINATE, reason="cleanup")


def _start(shard: Shard, job_id: str = "j1", **fields: object) -> StartBatch:
    values: dict[str, object] = {"now_ms": shard.now_ms, "namespace": "default",
                                 "job_id": job_id, "query": "TaskQueue = 'q'",
                                 "operation": TERMINATE, "rps": 10, "request_id": f"r-{job_id}"}
    values.update(fields)
    return StartBatch(**values)  # type: ignore[arg-type]


def _progress(shard: Shard, cursor: str, next_cursor: str, *, done: bool = False,
              job_id: str = "j1") -> RecordBatchProgress:
    return RecordBatchProgress(now_ms=shard.now_ms, namespace="default", job_id=job_id,
                               cursor=cursor, next_cursor=next_cursor, done=done,
                               succeeded=3, failed=1, errors=("w9: 409",))


def test_a_job_runs_page_by_page_to_completion() -> None:
    shard = Shard()
    output = shard.run(_start(shard))
    assert output.result == Ack() and BatchActive(namespace="default",
                                                 job_id="j1") in output.effects
    assert shard.run(_start(shard)).result == Ack()  # a retry: same answer, one job
    assert len(shard.state.batches) == 1
    assert BatchActive(namespace="default", job_id="j1") in pending_effects(shard.state)
    shard.run(_progress(shard, "", "t1"))
    shard.run_unchanged(_progress(shard, "", "t1"))  # the same page again: stale
    shard.run(_progress(shard, "t1", "", done=True))
    job = shard.state.batches[("default", "j1")]
    assert (job.state, job.succeeded, job.failed, job.errors) == (
        BatchState.COMPLETED, 6, 2, ["w9: 409", "w9: 409"])
    assert not [e for e in pending_effects(shard.state) if isinstance(e, BatchActive)]
    shard.run_unchanged(_progress(shard, "", "t9"))  # a completed job takes no more


def test_a_stopped_job_takes_no_more_progress() -> None:
    shard = Shard()
    shard.run(_start(shard))
    shard.run(StopBatch(now_ms=shard.now_ms, namespace="default", job_id="j1", reason="enough",
                        request_id="s1"))
    job = shard.state.batches[("default", "j1")]
    assert job.state is BatchState.STOPPED and job.reason == "enough"
    shard.run_unchanged(_progress(shard, "", "t1"))


@pytest.mark.parametrize(("fields", "field"), [
    ({"query": ""}, "query"),
    ({"rps": 0}, "rps"),
    ({"operation": BatchOperation(type=BatchOperationType.SIGNAL)}, "operation.signal_name"),
    ({"operation": BatchOperation(type=BatchOperationType.RESET, reset_type="Middle")},
     "operation.reset_type"),
    ({"job_id": ""}, "job_id"),
])
def test_a_bad_start_is_refused_and_changes_nothing(fields: dict[str, object],
                                                    field: str) -> None:
    shard = Shard()
    assert shard.run_unchanged(_start(shard, **fields)).field == field  # type: ignore[arg-type]


def test_a_taken_job_id_is_refused() -> None:
    shard = Shard()
    shard.run(_start(shard))
    assert shard.run_unchanged(_start(shard, request_id="other")).field == "job_id"


def test_a_full_shard_drops_its_oldest_finished_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "BATCH_JOBS_PER_SHARD_MAX", 2)
    shard = Shard()
    shard.run(_start(shard, "a"))
    shard.run(_start(shard, "b"))
    assert shard.run_unchanged(_start(shard, "c")).field == "BATCH_JOBS_PER_SHARD_MAX"
    shard.run(_progress(shard, "", "", done=True, job_id="a"))
    shard.run(_start(shard, "c"))
    assert [k[1] for k in shard.state.batches] == ["b", "c"]
