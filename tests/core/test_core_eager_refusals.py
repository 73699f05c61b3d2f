"""Goal: eager and sticky inputs out of bounds (eager maximum, over-long queue names on a
completion or a poll) are refused with the field named and change nothing; the longest legal
ids are accepted; a completion without an eager request still fits exactly at the history
limit, as before eager dispatch existed.

Method: refusals go through the driver's `run_unchanged` (state digest before and after), then
the same command with valid fields is accepted, showing the refusal left the task open.
"""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from raftflow.protocol.commands import (
    RecordWorkflowTaskStarted,
    RespondActivityTaskCompleted,
    RespondWorkflowTaskCompleted,
    StartTimer,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import (
    Ack,
    ActivityTaskCompletedResult,
    WorkflowTaskCompletedResult,
    WorkflowTaskStartedResult,
)
from raftflow.shards.core import limits
from tests.core.core_driver import NAMESPACE, QUEUE, Shard
from tests.core.eager_worker_steps import (
    LONG_ID,
    STICKY,
    _act,
    _complete,
    _poll,
    _with_activity_running,
)

COMPLETION_REFUSALS: list[tuple[str, dict[str, object], str]] = [
    ("max_negative", {"eager_activities_max": -1}, "eager_activities_max"),
    ("max_above_limit", {"eager_activities_max": limits.EAGER_ACTIVITIES_MAX + 1},
     "eager_activities_max"),
    ("max_huge", {"eager_activities_max": 2**40}, "eager_activities_max"),
    ("max_above_limit_without_queue", {"eager_task_queue": "",
                                       "eager_activities_max": limits.EAGER_ACTIVITIES_MAX + 1},
     "eager_activities_max"),
    ("long_sticky_queue", {"sticky_queue": LONG_ID}, "sticky_queue"),
    ("long_eager_task_queue", {"eager_task_queue": LONG_ID}, "eager_task_queue"),
]


@pytest.mark.parametrize(("name", "fields", "field"), COMPLETION_REFUSALS,
                         ids=[c[0] for c in COMPLETION_REFUSALS])
def test_invalid_eager_completion_is_refused_and_changes_nothing(
        name: str, fields: dict[str, object], field: str) -> None:
    shard = Shard()
    run_id = shard.start()
    first = _poll(shard, run_id)
    _complete(shard, first.token, StartTimer(timer_id="t", start_to_fire_timeout_ms=5),
              sticky_queue=STICKY)
    shard.advance(5)
    task = _poll(shard, run_id, STICKY)
    command = RespondWorkflowTaskCompleted(
        now_ms=shard.now_ms, token=task.token, commands=(_act("a1"), _act("a2")),
        identity="worker-1", sticky_queue="new-sticky", eager_task_queue=QUEUE,
        eager_activities_max=2)
    rejected = shard.run_unchanged(replace(command, **fields))  # type: ignore[arg-type]
    assert rejected.code is ErrorCode.INVALID_ARGUMENT and rejected.field == field
    assert shard.execution(run_id).sticky_queue == STICKY
    # The task is still the running one: a valid answer is accepted afterwards.
    output = shard.run(command)
    assert isinstance(output.result, WorkflowTaskCompletedResult)
    assert len(output.result.activity_tasks) == 2
    assert shard.execution(run_id).sticky_queue == "new-sticky"


def test_longest_ids_are_accepted() -> None:
    shard = Shard()
    run_id = shard.start()
    longest = "q" * limits.ID_LENGTH_MAX
    task = _poll(shard, run_id)
    output = _complete(shard, task.token, _act("a1", task_queue=longest), eager_queue=longest,
                       eager_max=limits.EAGER_ACTIVITIES_MAX, sticky_queue=longest)
    assert isinstance(output.result, WorkflowTaskCompletedResult)
    assert shard.execution(run_id).sticky_queue == longest


ACTIVITY_REFUSALS: list[tuple[str, dict[str, object], str]] = [
    ("long_eager_task_queue", {"eager_task_queue": LONG_ID}, "eager_task_queue"),
    ("long_sticky_queue", {"sticky_queue": LONG_ID}, "sticky_queue"),
]


@pytest.mark.parametrize(("name", "fields", "field"), ACTIVITY_REFUSALS,
                         ids=[c[0] for c in ACTIVITY_REFUSALS])
def test_invalid_eager_activity_completion_is_refused_and_changes_nothing(
        name: str, fields: dict[str, object], field: str) -> None:
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a")
    command = RespondActivityTaskCompleted(now_ms=shard.now_ms, token=tokens["a"],
                                           eager_task_queue=QUEUE, sticky_queue="s")
    rejected = shard.run_unchanged(replace(command, **fields))  # type: ignore[arg-type]
    assert rejected.code is ErrorCode.INVALID_ARGUMENT and rejected.field == field
    assert isinstance(shard.run(command).result, ActivityTaskCompletedResult)


def test_invalid_sticky_queue_on_poll_is_refused_and_changes_nothing() -> None:
    shard = Shard()
    run_id = shard.start()
    command = RecordWorkflowTaskStarted(now_ms=shard.now_ms, namespace=NAMESPACE,
                                        workflow_id="wf", run_id=run_id, scheduled_event_id=2,
                                        request_id="p1", sticky_queue=LONG_ID)
    rejected = shard.run_unchanged(command)
    assert rejected.code is ErrorCode.INVALID_ARGUMENT and rejected.field == "sticky_queue"
    assert isinstance(shard.run(replace(command, sticky_queue="s")).result,
                      WorkflowTaskStartedResult)


def test_non_eager_activity_completion_fits_exactly_at_the_history_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an eager request the completion writes 3 events (ActivityTaskStarted,
    ActivityTaskCompleted, WorkflowTaskScheduled): it must be accepted when exactly 3 fit,
    as before eager dispatch existed; the extra WorkflowTaskStarted is only for eager."""
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a")
    assert len(shard.execution(run_id).history) == 5
    monkeypatch.setattr(limits, "HISTORY_EVENTS_MAX", 8)
    output = shard.run(RespondActivityTaskCompleted(now_ms=shard.now_ms, token=tokens["a"]))
    assert output.result == Ack(), output.result
    assert len(shard.execution(run_id).history) == 8
