"""Goal: signal-with-start (a StartWorkflow carrying `signal_name`) is atomic and idempotent:
the run gets the signal exactly once whether the call opens it or finds it open; an open run is
signalled, not refused (terminate_if_running still replaces it); a closed run's reuse policy
still applies; a retry, even after the request table forgot it, adds nothing; every refusal
changes nothing.

Method: the table style of test_core_start.py on the pure core (`core_driver.Shard`); refusals
go through `run_unchanged`, which compares state digests.
"""

from __future__ import annotations

import pytest

from raftflow.protocol.commands import CompleteWorkflowExecution, IdReusePolicy, StartWorkflow
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import (
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
)
from raftflow.protocol.limits import ID_LENGTH_MAX
from raftflow.protocol.results import WorkflowStartedResult, WorkflowStatus
from raftflow.shards.core import limits
from tests.core.core_driver import Shard, start_command


def with_signal(request_id: str, run_id: str, **fields: object) -> StartWorkflow:
    signal: dict[str, object] = {"signal_name": "go", "signal_input": b'{"n":1}'}
    return start_command(request_id=request_id, run_id=run_id, **{**signal, **fields})


def signals(shard: Shard, run_id: str) -> list[str]:
    """The request ids of the run's signals, in history then in its buffer."""
    execution = shard.execution(run_id)
    events = [*execution.history, *execution.buffered]
    return [e.attributes.request_id for e in events
            if isinstance(e.attributes, WorkflowExecutionSignaledEventAttributes)]


def test_with_no_run_it_starts_one_that_holds_the_signal() -> None:
    shard = Shard()
    output = shard.run(with_signal("sws-1", "run-1"))
    assert output.result == WorkflowStartedResult(run_id="run-1", created=True)
    assert shard.event_types("run-1") == ["WorkflowExecutionStarted", "WorkflowTaskScheduled",
                                          "WorkflowExecutionSignaled"]
    signaled = shard.execution("run-1").history[2].attributes
    assert signaled == WorkflowExecutionSignaledEventAttributes(
        signal_name="go", input=b'{"n":1}', request_id="sws-1")
    # One workflow task for both: the one scheduled with the start.
    assert sum(t == "WorkflowTaskScheduled" for t in shard.event_types("run-1")) == 1


def test_an_open_run_is_signalled_not_refused_and_a_retry_adds_nothing() -> None:
    shard = Shard()
    run_id = shard.start()  # request id req-wf
    output = shard.run(with_signal("sws-1", "run-new"))
    assert output.result == WorkflowStartedResult(run_id=run_id, created=False)
    assert signals(shard, run_id) == ["sws-1"]
    assert shard.state.find_run("run-new") is None and not shard.state.run_id_used("run-new")
    retry = shard.run(with_signal("sws-1", "run-other"))
    assert retry.result == output.result and not retry.events
    assert signals(shard, run_id) == ["sws-1"]


def test_a_run_whose_task_is_started_gets_the_signal_buffered() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.poll_workflow_task(run_id)
    shard.run(with_signal("sws-1", "run-new"))
    execution = shard.execution(run_id)
    assert [e.event_type for e in execution.buffered] == ["WorkflowExecutionSignaled"]
    assert signals(shard, run_id) == ["sws-1"]


def test_terminate_if_running_replaces_the_open_run_and_signals_the_new_one() -> None:
    shard = Shard()
    old = shard.start()
    output = shard.run(with_signal("sws-1", "run-new",
                                   id_reuse_policy=IdReusePolicy.TERMINATE_IF_RUNNING))
    assert output.result == WorkflowStartedResult(run_id="run-new", created=True)
    assert shard.execution(old).status is WorkflowStatus.TERMINATED
    closing = shard.execution(old).history[-1].attributes
    assert isinstance(closing, WorkflowExecutionTerminatedEventAttributes)
    assert signals(shard, old) == [] and signals(shard, "run-new") == ["sws-1"]


def test_a_closed_run_keeps_its_reuse_policy() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, CompleteWorkflowExecution())
    refused = shard.run_unchanged(with_signal(
        "sws-1", "run-new", id_reuse_policy=IdReusePolicy.REJECT_DUPLICATE))
    assert refused.code is ErrorCode.WORKFLOW_ALREADY_STARTED
    output = shard.run(with_signal("sws-2", "run-new"))
    assert output.result == WorkflowStartedResult(run_id="run-new", created=True)
    assert signals(shard, "run-new") == ["sws-2"] and signals(shard, run_id) == []


def test_a_retry_after_the_request_table_forgot_it_signals_no_second_time() -> None:
    shard = Shard()
    first = shard.run(with_signal("sws-1", "run-1")).result
    shard.advance(limits.REQUEST_IDS_RETENTION_MS + limits.EXPIRY_BATCHING_MS + 1_000)
    assert shard.state.archive.recall(("start", "default", "wf", "sws-1")) is None
    retry = shard.run(with_signal("sws-1", "run-2"))
    assert first == WorkflowStartedResult(run_id="run-1", created=True)
    assert retry.result == WorkflowStartedResult(run_id="run-1", created=False)
    assert not retry.events and signals(shard, "run-1") == ["sws-1"]


def test_refusals_name_the_field_and_change_nothing() -> None:
    shard = Shard()
    run_id = shard.start()
    cases = [
        (start_command(request_id="x1", run_id="r1", signal_input=b'"no name"'), "signal_name"),
        (with_signal("x2", "r2", signal_name="n" * (ID_LENGTH_MAX + 1)), "signal_name"),
        (with_signal("x3", "r3", signal_input=b'"' + b"x" * limits.PAYLOAD_BYTES_MAX + b'"'),
         "signal_input"),
        (with_signal("x4", "r4", workflow_id="other", eager_task_queue="q"),
         "eager_task_queue"),
    ]
    for command, field in cases:
        refused = shard.run_unchanged(command)
        assert refused.field == field, refused
    assert signals(shard, run_id) == []


def test_a_full_history_refuses_the_signal_and_changes_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    shard = Shard()
    run_id = shard.start()  # 2 events; a signal needs room for 2 more
    monkeypatch.setattr(limits, "HISTORY_EVENTS_MAX", 3)
    refused = shard.run_unchanged(with_signal("sws-1", "run-new"))
    assert refused.code is ErrorCode.LIMIT_EXCEEDED and refused.field == "HISTORY_EVENTS_MAX"
    assert signals(shard, run_id) == []
