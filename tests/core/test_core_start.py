"""Goal: StartWorkflow opens runs correctly, deduplicates retries, and honours reuse policies.

Method: table-driven; each case drives a fresh shard through a prefix (open run, closed run with
some status), then applies a start and compares the result; every refusal is checked to change
nothing by comparing state digests before and after.
"""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    IdReusePolicy,
)
from raftflow.protocol.effects import ArmTimer, DispatchWorkflowTask
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import WorkflowStartedResult, WorkflowStatus
from raftflow.shards.core import limits
from tests.core.core_driver import Shard, start_command


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
    assert "run-other" not in shard.state.executions


def test_start_with_the_open_runs_request_id_answers_created_false() -> None:
    shard = Shard()
    shard.start()
    shard.state.request_results.clear()  # as if evicted from the bounded table
    output = shard.run(start_command(run_id="run-2"))
    assert output.result == WorkflowStartedResult(run_id="run-wf", created=False)
    assert not output.events


def test_request_table_is_bounded_and_evicts_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "REQUEST_IDS_PER_SHARD_MAX", 3)
    shard = Shard()
    for index in range(5):
        shard.start(f"wf{index}")
    keys = list(shard.state.request_results)
    assert [key[2] for key in keys] == ["wf2", "wf3", "wf4"]


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


def test_closed_runs_are_retained_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "CLOSED_RUNS_PER_SHARD_MAX", 2)
    shard = Shard()
    for name in ("a", "b", "c"):
        run_id = shard.start(name)
        shard.decide(run_id, CompleteWorkflowExecution())
    assert list(shard.state.closed_runs) == ["run-b", "run-c"]
    assert "run-a" not in shard.state.executions
    assert ("default", "a") not in shard.state.latest_runs
