"""Goal: StartWorkflow opens runs correctly, deduplicates retries, and honours reuse policies;
closed runs and request ids stay for their retention time and FireTimers then deletes them, at
most EXPIRIES_PER_FIRE_MAX per command.

Method: table-driven; each case drives a fresh shard through a prefix (open run, closed run with
some status), then applies a start and compares the result; every refusal is checked to change
nothing by comparing state digests before and after. Retention cases move the clock to just
before and just after each deletion instant and read the run or request id through every query.
"""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    FireTimers,
    IdReusePolicy,
)
from raftflow.protocol.effects import ArmTimer, DispatchWorkflowTask
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import (
    Rejected,
    WorkflowDescription,
    WorkflowStartedResult,
    WorkflowStatus,
)
from raftflow.shards.core import limits, queries
from raftflow.shards.core.archive import ArchivedRun, RememberedRequest
from raftflow.shards.core.memory_archive import MemoryArchive
from tests.core.core_driver import NAMESPACE, Shard, start_command

START_KEY = ("start", NAMESPACE, "wf", "req-wf")  # the request key of `start_command()`


def test_start_writes_started_and_scheduled_and_dispatches() -> None:
    shard = Shard()
    output = shard.run(start_command(now_ms=shard.now_ms, run_timeout_ms=5_000))
    assert output.result == WorkflowStartedResult(run_id="run-wf", created=True)
    assert [e.event_type for e in output.events] == ["WorkflowExecutionStarted",
                                                     "WorkflowTaskScheduled"]
    assert output.effects == (
        DispatchWorkflowTask(namespace="default", task_queue="q", workflow_id="wf",
                             run_id="run-wf", scheduled_event_id=2),
        ArmTimer(fire_at_ms=6_000))
    assert shard.state.open_runs == {("default", "wf"): "run-wf"}


def test_retried_start_gets_the_first_answer_even_after_close() -> None:
    shard = Shard()
    first = shard.run(start_command()).result
    shard.decide("run-wf", CompleteWorkflowExecution())
    retry = shard.run(start_command(run_id="run-other"))  # same request id, new proposed run id
    assert retry.result == first and not retry.events
    assert shard.state.find_run("run-other") is None
    assert not shard.state.run_id_used("run-other")


def test_start_with_the_open_runs_request_id_answers_created_false() -> None:
    shard = Shard()
    shard.start()
    shard.advance(limits.REQUEST_IDS_RETENTION_MS)  # the request id expires, the run stays open
    assert shard.state.archive.recall(START_KEY) is None
    output = shard.run(start_command(run_id="run-2", now_ms=shard.now_ms))
    assert output.result == WorkflowStartedResult(run_id="run-wf", created=False)
    assert not output.events


def test_a_request_id_is_remembered_until_it_expires_then_forgotten() -> None:
    shard = Shard()
    first = shard.run(start_command(now_ms=shard.now_ms)).result
    shard.decide("run-wf", CompleteWorkflowExecution())
    expires_at_ms = shard.now_ms + limits.REQUEST_IDS_RETENTION_MS
    shard.advance(expires_at_ms - 1 - shard.now_ms)
    retry = shard.run(start_command(run_id="run-2", now_ms=shard.now_ms))
    assert retry.result == first and not retry.events  # still remembered: the first answer
    shard.advance(1)  # a FireTimers at the expiry instant deletes it
    assert shard.state.archive.recall(START_KEY) is None
    # Forgotten: the same request id now starts a new run (the closed one allows a duplicate).
    retry = shard.run(start_command(run_id="run-2", now_ms=shard.now_ms))
    assert retry.result == WorkflowStartedResult(run_id="run-2", created=True)
    assert shard.state.archive.recall(START_KEY) == retry.result


def _close(shard: Shard, how: str) -> None:
    if how == "completed":
        shard.decide("run-wf", CompleteWorkflowExecution())
    elif how == "failed":
        shard.decide("run-wf", FailWorkflowExecution(failure=Failure(message="x")))


REUSE_CASES = [
    # (policy, previous run state, expected: run id or error code)
    (IdReusePolicy.ALLOW_DUPLICATE, "completed", "run-2"),
    (IdReusePolicy.ALLOW_DUPLICATE, "failed", "run-2"),
    (IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY, "completed", ErrorCode.WORKFLOW_ALREADY_STARTED),
    (IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY, "failed", "run-2"),
    (IdReusePolicy.REJECT_DUPLICATE, "completed", ErrorCode.WORKFLOW_ALREADY_STARTED),
    (IdReusePolicy.REJECT_DUPLICATE, "failed", ErrorCode.WORKFLOW_ALREADY_STARTED),
    (IdReusePolicy.ALLOW_DUPLICATE, "open", ErrorCode.WORKFLOW_ALREADY_STARTED),
    (IdReusePolicy.REJECT_DUPLICATE, "open", ErrorCode.WORKFLOW_ALREADY_STARTED),
    (IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY, "open", ErrorCode.WORKFLOW_ALREADY_STARTED),
    (IdReusePolicy.TERMINATE_IF_RUNNING, "open", "run-2"),
    (IdReusePolicy.TERMINATE_IF_RUNNING, "completed", "run-2"),
    (IdReusePolicy.REJECT_DUPLICATE, "none", "run-2"),
]


@pytest.mark.parametrize(("policy", "previous", "expected"), REUSE_CASES)
def test_reuse_policies(policy: IdReusePolicy, previous: str, expected: object) -> None:
    shard = Shard()
    if previous != "none":
        shard.start()
        _close(shard, previous)
    command = start_command(run_id="run-2", request_id="req-2", id_reuse_policy=policy)
    if isinstance(expected, ErrorCode):
        assert shard.run_unchanged(command).code is expected
        return
    output = shard.run(command)
    assert output.result == WorkflowStartedResult(run_id=str(expected), created=True)
    assert shard.state.open_runs[("default", "wf")] == expected
    if previous == "open":
        old = shard.execution("run-wf")
        assert old.status is WorkflowStatus.TERMINATED
        assert old.history[-1].attributes.reason == "terminate_if_running"


INVALID_STARTS = [
    ("workflow_id", {"workflow_id": ""}, ErrorCode.INVALID_ARGUMENT),
    ("workflow_type", {"workflow_type": ""}, ErrorCode.INVALID_ARGUMENT),
    ("task_queue", {"task_queue": "x" * (limits.ID_LENGTH_MAX + 1)}, ErrorCode.INVALID_ARGUMENT),
    ("input", {"input": b"x" * (limits.PAYLOAD_BYTES_MAX + 1)}, ErrorCode.PAYLOAD_TOO_LARGE),
    ("run_timeout_ms", {"run_timeout_ms": 0}, ErrorCode.INVALID_ARGUMENT),
    ("execution_timeout_ms", {"execution_timeout_ms": -5}, ErrorCode.INVALID_ARGUMENT),
    ("task_timeout_ms", {"task_timeout_ms": limits.WORKFLOW_TASK_TIMEOUT_MS_MAX + 1},
     ErrorCode.INVALID_ARGUMENT),
]


@pytest.mark.parametrize(("field", "fields", "code"), INVALID_STARTS,
                         ids=[case[0] for case in INVALID_STARTS])
def test_invalid_start_is_refused_and_changes_nothing(field: str, fields: dict[str, object],
                                                      code: ErrorCode) -> None:
    shard = Shard()
    shard.start("other")
    rejected = shard.run_unchanged(replace(start_command(), **fields))  # type: ignore[arg-type]
    assert rejected.code is code
    assert rejected.field == field


def test_reused_run_id_is_refused() -> None:
    shard = Shard()
    shard.start("a", run_id="same")
    rejected = shard.run_unchanged(start_command("b", run_id="same"))
    assert rejected.code is ErrorCode.INVALID_ARGUMENT and rejected.field == "run_id"


def test_open_runs_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "OPEN_RUNS_PER_SHARD_MAX", 2)
    shard = Shard()
    shard.start("a")
    shard.start("b")
    rejected = shard.run_unchanged(start_command("c"))
    assert rejected.code is ErrorCode.LIMIT_EXCEEDED
    assert "OPEN_RUNS_PER_SHARD_MAX" in rejected.message


def _retained(shard: Shard, workflow_id: str, run_id: str) -> bool:
    """Whether every read agrees that the closed run is still retained."""
    found = shard.state.find_run(run_id)
    latest = shard.state.archive.latest_closed((NAMESPACE, workflow_id))
    described = queries.describe(shard.state, NAMESPACE, workflow_id)
    if found is None:
        assert latest is None and not shard.state.run_id_used(run_id)
        assert isinstance(described, Rejected) and described.code is ErrorCode.NOT_FOUND
        return False
    assert latest == run_id and shard.state.run_id_used(run_id)
    assert isinstance(described, WorkflowDescription) and described.run_id == run_id
    assert described.status is WorkflowStatus.COMPLETED
    return True


def test_closed_runs_are_retained_for_the_retention_time() -> None:
    shard = Shard()
    run_id = shard.start("a")
    shard.decide(run_id, CompleteWorkflowExecution())
    delete_at_ms = shard.now_ms + limits.DEFAULT_RETENTION_MS
    wakeup_ms = delete_at_ms + limits.EXPIRY_BATCHING_MS
    output = shard.advance(delete_at_ms - 1 - shard.now_ms)  # the request id is gone by now
    assert _retained(shard, "a", run_id)
    assert output.effects == (ArmTimer(fire_at_ms=wakeup_ms),)
    assert shard.state.next_wakeup_ms() == wakeup_ms
    shard.now_ms = wakeup_ms - 1  # no FireTimers before the leader's wake-up: still there
    assert _retained(shard, "a", run_id)
    output = shard.advance(1)
    assert not _retained(shard, "a", run_id)
    assert shard.state.archive.closed_count() == 0 and shard.state.next_wakeup_ms() is None
    assert output.effects == ()
    # Reuse policies only see retained runs: the workflow id is free again.
    started = shard.run(start_command("a", run_id="run-a2", request_id="req-a2",
                                      now_ms=shard.now_ms,
                                      id_reuse_policy=IdReusePolicy.REJECT_DUPLICATE))
    assert started.result == WorkflowStartedResult(run_id="run-a2", created=True)


def test_expiry_deletes_at_most_the_limit_per_fire_timers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "EXPIRIES_PER_FIRE_MAX", 2)
    shard = Shard()
    for name in ("c", "a", "b"):
        run_id = shard.start(name)
        shard.decide(run_id, CompleteWorkflowExecution())
    now_ms = shard.now_ms + limits.DEFAULT_RETENTION_MS  # every row is due
    deleted: list[tuple[list[str], int]] = []
    for _ in range(3):
        output = shard.run(FireTimers(now_ms=now_ms))
        runs, _, requests = _contents(shard)
        deleted.append(([run.execution.run_id for run in runs], len(requests)))
        wakeup_ms = shard.state.next_wakeup_ms()
        assert output.effects == (() if wakeup_ms is None else (ArmTimer(fire_at_ms=wakeup_ms),))
        # Rows left due: the leader wakes up at once (their due instant + batching is past).
        assert (wakeup_ms is None) == (not runs and not requests)
        assert wakeup_ms is None or wakeup_ms <= now_ms
    # Closed runs go first, in (delete_at_ms, run_id) order, then the request ids.
    assert deleted == [(["run-c"], 3), ([], 2), ([], 0)]


def _contents(shard: Shard) -> tuple[list[ArchivedRun], list[tuple[tuple[str, str], str]],
                                     list[RememberedRequest]]:
    archive = shard.state.archive
    assert isinstance(archive, MemoryArchive)
    return archive.contents()
