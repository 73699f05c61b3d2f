"""Goal: ResetWorkflow re-runs a workflow from one of its workflow tasks (Temporal's reset):
the new run holds the base run's history up to that task's WorkflowTaskStarted, then
WorkflowTaskFailed (cause ResetWorkflow), the base run's later signals again, and a new
workflow task; its pending work is the work that history leaves pending; the open run is
terminated; a retry answers the same new run; every refusal changes nothing and names a field.

Method: the pure core through `core_driver.Shard` (invariants checked after every command);
refusals go through `run_unchanged`, which compares state digests.
"""

from __future__ import annotations

import json

import pytest

from raftflow.protocol.commands import (
    Command,
    CompleteWorkflowExecution,
    RequestCancelWorkflow,
    ResetType,
    ResetWorkflow,
    SignalWorkflow,
    StartTimer,
)
from raftflow.protocol.effects import DispatchActivityTask, DispatchWorkflowTask
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import (
    EventType,
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
    WorkflowTaskFailedEventAttributes,
)
from raftflow.protocol.results import Result, WorkflowStartedResult, WorkflowStatus
from raftflow.shards.core import limits, run_history, snapshot
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.state import ActivityPhase, TimerKind
from tests.core.core_driver import NAMESPACE, Shard, activity
from tests.core.test_core_random_walk import STEPS, Walk


def reset(shard: Shard, *, new_run_id: str = "run-2", request_id: str = "reset-1",
          **fields: object) -> ResetWorkflow:
    given: dict[str, object] = {"reset_type": ResetType.FIRST_WORKFLOW_TASK,
                                "reason": "bad deploy", **fields}
    return ResetWorkflow(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                         new_run_id=new_run_id, request_id=request_id, **given)  # type: ignore[arg-type]


def signal(shard: Shard, request_id: str, name: str = "go") -> None:
    shard.run(SignalWorkflow(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                             signal_name=name, input=b'"x"', request_id=request_id))


def signal_ids(shard: Shard, run_id: str) -> list[str]:
    execution = shard.execution(run_id)
    return [e.attributes.request_id for e in run_history.whole(shard.state.archive, execution)
            if isinstance(e.attributes, WorkflowExecutionSignaledEventAttributes)]


def activity_then_signal(shard: Shard) -> str:
    """Task 1 schedules activity a1; it completes; task 2 waits; a signal arrives."""
    run_id = shard.start()
    shard.decide(run_id, activity("a1"))                       # events 3, 4, 5
    task = shard.poll_activity(run_id)
    shard.complete_activity(task.token)                        # 6, 7 and task 8
    shard.decide(run_id)                                       # 9, 10
    signal(shard, "sig-1")                                     # 11 and task 12
    return run_id


def test_reset_to_the_first_task_copies_history_fails_it_and_reapplies_later_signals() -> None:
    shard = Shard()
    base = activity_then_signal(shard)
    shard.now_ms += 500
    output = shard.run(reset(shard))
    assert output.result == WorkflowStartedResult(run_id="run-2", created=True)
    types = shard.event_types("run-2")
    assert types == ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted",
                     "WorkflowTaskFailed", "WorkflowExecutionSignaled", "WorkflowTaskScheduled"]
    new = shard.execution("run-2")
    assert new.history[:3] == shard.execution(base).history[:3]
    failed = new.history[3].attributes
    assert isinstance(failed, WorkflowTaskFailedEventAttributes)
    assert (failed.scheduled_event_id, failed.started_event_id, failed.cause) == (
        2, 3, "ResetWorkflow")
    assert json.loads(failed.failure) == {
        "message": "bad deploy", "type": "ResetWorkflow", "non_retryable": True,
        "details": {"base_run_id": base, "new_run_id": "run-2"}}
    assert signal_ids(shard, "run-2") == ["sig-1"]
    # The activity was scheduled by the failed task's answer: not pending in the new run.
    assert not new.activities and new.workflow_task is not None
    assert new.workflow_task.scheduled_event_id == 6
    assert new.first_execution_run_id == shard.execution(base).first_execution_run_id
    assert DispatchWorkflowTask(namespace=NAMESPACE, task_queue="q", workflow_id="wf",
                                run_id="run-2", scheduled_event_id=6) in output.effects
    # The base run is terminated, naming the reset.
    closed = shard.execution(base)
    assert closed.status is WorkflowStatus.TERMINATED
    terminated = closed.history[-1].attributes
    assert isinstance(terminated, WorkflowExecutionTerminatedEventAttributes)
    assert terminated.reason == "reset to run run-2: bad deploy"
    assert shard.state.open_runs[(NAMESPACE, "wf")] == "run-2"


def test_reset_to_the_last_task_keeps_work_scheduled_before_it_pending() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a1"), StartTimer(timer_id="t1",
                                                    start_to_fire_timeout_ms=60_000))
    signal(shard, "sig-1")                       # 7 and task 8
    shard.decide(run_id)                         # 9, 10: the last completed task
    shard.now_ms += 1_000
    output = shard.run(reset(shard, reset_type=ResetType.LAST_WORKFLOW_TASK))
    new = shard.execution("run-2")
    assert [e.event_type for e in new.history][7:] == [
        "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskFailed",
        "WorkflowTaskScheduled"]
    assert signal_ids(shard, "run-2") == ["sig-1"]  # before the point: copied, not again
    (pending,) = new.activities.values()
    assert (pending.activity_id, pending.phase, pending.attempt) == ("a1", ActivityPhase.SCHEDULED, 1)
    assert DispatchActivityTask(namespace=NAMESPACE, task_queue="q", workflow_id="wf",
                                run_id="run-2", scheduled_event_id=pending.scheduled_event_id,
                                attempt=1) in output.effects
    assert new.timers == {"t1": 6}
    # The timer keeps its original due instant.
    assert shard.state.timers[("run-2", TimerKind.USER, 6)] == 1_000 + 60_000
    assert new.previous_started_event_id == 3
    # The new run's activity runs and completes normally.
    task = shard.poll_activity("run-2")
    shard.complete_activity(task.token)
    assert shard.event_types("run-2")[-2:] == ["ActivityTaskStarted", "ActivityTaskCompleted"]


def test_event_id_names_a_task_by_any_of_its_events_and_a_closed_run_may_be_reset() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id)                          # 3 started, 4 completed
    signal(shard, "sig-1")                        # 5, task 6
    shard.decide(run_id, CompleteWorkflowExecution(result=b'"done"'))  # 7, 8, 9
    assert shard.execution(run_id).status is WorkflowStatus.COMPLETED
    output = shard.run(reset(shard, reset_type=None, event_id=4))
    assert output.result == WorkflowStartedResult(run_id="run-2", created=True)
    assert signal_ids(shard, "run-2") == ["sig-1"]
    assert shard.execution(run_id).status is WorkflowStatus.COMPLETED  # a closed base stays
    # Reset again, from the run just made, to its started event 3, by id: the open run-2 is
    # terminated.
    shard.run(reset(shard, reset_type=None, event_id=3, new_run_id="run-3",
                    request_id="reset-2", run_id="run-2"))
    assert shard.execution("run-2").status is WorkflowStatus.TERMINATED
    assert shard.state.open_runs[(NAMESPACE, "wf")] == "run-3"
    # A closed run reset while another run is open: that open run is terminated.
    shard.run(reset(shard, reset_type=None, event_id=4, new_run_id="run-4",
                    request_id="reset-3", run_id=run_id))
    assert shard.execution("run-3").status is WorkflowStatus.TERMINATED
    assert shard.state.open_runs[(NAMESPACE, "wf")] == "run-4"
    assert shard.execution("run-4").history[:3] == shard.execution(run_id).history[:3]


def test_a_cancel_request_before_the_point_stays_requested() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id)
    shard.run(RequestCancelWorkflow(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                                    request_id="cancel-1"))
    shard.decide(run_id)  # the workflow ignores it for now
    shard.run(reset(shard, reset_type=ResetType.LAST_WORKFLOW_TASK))
    assert shard.execution("run-2").cancel_requested
    assert not shard.execution("run-2").activities and not shard.execution("run-2").timers


def test_a_retry_answers_the_same_new_run_and_changes_nothing() -> None:
    shard = Shard()
    activity_then_signal(shard)
    shard.run(reset(shard))
    retry = shard.run(reset(shard, new_run_id="run-other"))
    assert retry.result == WorkflowStartedResult(run_id="run-2", created=True)
    assert not retry.events and shard.state.find_run("run-other") is None


def test_signals_buffered_under_a_running_task_are_reapplied_once() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id)                           # 3, 4
    signal(shard, "sig-1")                         # 5, task 6
    shard.poll_workflow_task(run_id)               # 7 started
    signal(shard, "sig-2")                         # buffered
    shard.run(reset(shard, reset_type=ResetType.LAST_WORKFLOW_TASK))
    assert signal_ids(shard, "run-2") == ["sig-1", "sig-2"]
    # The base run wrote its buffered signal before its close event.
    assert signal_ids(shard, run_id) == ["sig-1", "sig-2"]


@pytest.mark.parametrize(("fields", "code", "field"), [
    ({"reset_type": None, "event_id": 1}, ErrorCode.INVALID_ARGUMENT, "event_id"),
    ({"reset_type": None, "event_id": 2}, ErrorCode.INVALID_ARGUMENT, "event_id"),
    ({"reset_type": None, "event_id": 99}, ErrorCode.INVALID_ARGUMENT, "event_id"),
    ({"reset_type": None}, ErrorCode.INVALID_ARGUMENT, "event_id"),
    ({"event_id": 4}, ErrorCode.INVALID_ARGUMENT, "event_id"),
    ({"new_run_id": "run-wf"}, ErrorCode.INVALID_ARGUMENT, "new_run_id"),
    ({"run_id": "nope"}, ErrorCode.NOT_FOUND, None),
    ({"reason": "x" * 10_001}, ErrorCode.INVALID_ARGUMENT, "reason"),
])
def test_refusals_name_the_field_and_change_nothing(fields: dict[str, object], code: ErrorCode,
                                                    field: str | None) -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id)
    signal(shard, "sig-1")
    rejected = shard.run_unchanged(reset(shard, **fields))
    assert (rejected.code, rejected.field) == (code, field)


def test_a_run_with_no_completed_task_cannot_be_reset_by_kind() -> None:
    shard = Shard()
    shard.start()
    rejected = shard.run_unchanged(reset(shard, reset_type=ResetType.LAST_WORKFLOW_TASK))
    assert (rejected.code, rejected.field) == (ErrorCode.INVALID_ARGUMENT, "reset_type")
    other = shard.run_unchanged(ResetWorkflow(
        now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="nope", new_run_id="r",
        request_id="x", reset_type=ResetType.FIRST_WORKFLOW_TASK))
    assert other.code is ErrorCode.NOT_FOUND


def test_long_histories_are_copied_from_and_into_spilled_chunks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounds small enough that the base run's history is mostly in the archive and the copy
    spills again: the new run holds the same events, wherever they live."""
    monkeypatch.setattr(limits, "HISTORY_CHUNK_EVENTS", 4)
    monkeypatch.setattr(limits, "HISTORY_HOT_EVENTS_MAX", 6)
    shard = Shard()
    run_id = shard.start()
    for n in range(8):
        shard.decide(run_id)
        signal(shard, f"sig-{n}")
    base = shard.execution(run_id)
    assert base.spilled_events > 0
    whole_base = list(run_history.whole(shard.state.archive, base))
    shard.run(reset(shard, reset_type=ResetType.LAST_WORKFLOW_TASK))
    new = shard.execution("run-2")
    assert new.spilled_events > 0
    copied = run_history.whole(shard.state.archive, new)
    last_started = max(e.event_id for e in whole_base
                       if e.event_type == EventType.WORKFLOW_TASK_STARTED
                       and e.event_id < len(whole_base) - 1)
    assert copied[:last_started] == whole_base[:last_started]
    assert signal_ids(shard, "run-2") == [f"sig-{n}" for n in range(8)]


class ResetWalk(Walk):
    RESET_WEIGHT = 3
    accepted = 0

    def apply(self, command: Command) -> Result:
        result = super().apply(command)
        if isinstance(command, ResetWorkflow) and isinstance(result, WorkflowStartedResult):
            self.accepted += 1
        return result


@pytest.mark.parametrize("seed", range(6))
def test_random_walks_with_resets_keep_invariants_and_replicas_agree(seed: int) -> None:
    """The seeded random walk of test_core_random_walk.py (retries, timeouts, buffering,
    continue-as-new, stale answers) with resets among its steps: invariants after every
    command, refusals change nothing, a retried reset gets its first answer, the replica fed
    the decoded log agrees, also after a snapshot round trip."""
    walk = ResetWalk(seed)
    for index in range(STEPS):
        walk.step()
        if index % 50 == 49:
            assert state_digest(walk.replica) == state_digest(walk.state), (seed, index)
            walk.replica = snapshot.from_bytes(snapshot.to_bytes(walk.replica))
    assert state_digest(walk.replica) == state_digest(walk.state)
    assert walk.accepted >= 5, walk.accepted
