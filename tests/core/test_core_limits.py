"""Goal: every payload-carrying command refuses an oversized payload with payload_too_large
naming the field, and changes nothing; limits are named and consistent; no-op commands are
harmless.

Method: table of (command builder, field); each builder gets a live shard with a started
workflow task and a started activity so the command would otherwise be accepted.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from raftflow.protocol.commands import (
    Barrier,
    Command,
    Failure,
    FireTimers,
    RecordActivityTaskHeartbeat,
    RespondActivityTaskCanceled,
    RespondActivityTaskCompleted,
    RespondActivityTaskFailed,
    RespondWorkflowTaskFailed,
    SignalWorkflow,
    TaskToken,
)
from raftflow.protocol.effects import ArmTimer
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import Ack
from raftflow.shards.core import limits, pending_effects
from tests.core.core_driver import NAMESPACE, Shard, activity, start_command

BIG = b"x" * (limits.PAYLOAD_BYTES_MAX + 1)
Builder = Callable[[Shard, TaskToken, TaskToken], Command]

OVERSIZED: list[tuple[str, Builder, str]] = [
    ("signal", lambda s, w, a: SignalWorkflow(now_ms=s.now_ms, namespace=NAMESPACE,
                                              workflow_id="wf", signal_name="x", input=BIG,
                                              request_id="big"), "input"),
    ("start", lambda s, w, a: start_command("other", input=BIG), "input"),
    ("workflow_task_failed", lambda s, w, a: RespondWorkflowTaskFailed(
        now_ms=s.now_ms, token=w, failure=BIG), "failure"),
    ("activity_completed", lambda s, w, a: RespondActivityTaskCompleted(
        now_ms=s.now_ms, token=a, result=BIG), "result"),
    ("activity_failed", lambda s, w, a: RespondActivityTaskFailed(
        now_ms=s.now_ms, token=a, failure=Failure(message="m", details=BIG)), "failure"),
    ("activity_canceled", lambda s, w, a: RespondActivityTaskCanceled(
        now_ms=s.now_ms, token=a, details=BIG), "details"),
    ("heartbeat", lambda s, w, a: RecordActivityTaskHeartbeat(
        now_ms=s.now_ms, token=a, details=BIG), "details"),
]


def _live() -> tuple[Shard, TaskToken, TaskToken]:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a"))
    activity_token = shard.poll_activity(run_id, "a").token
    shard.wake(run_id)
    return shard, shard.poll_workflow_task(run_id).token, activity_token


@pytest.mark.parametrize(("name", "build", "field"), OVERSIZED,
                         ids=[case[0] for case in OVERSIZED])
def test_oversized_payloads_are_refused(name: str, build: Builder, field: str) -> None:
    shard, workflow_token, activity_token = _live()
    rejected = shard.run_unchanged(build(shard, workflow_token, activity_token))
    assert rejected.code is ErrorCode.PAYLOAD_TOO_LARGE
    assert rejected.field == field


def test_payload_at_the_limit_is_accepted() -> None:
    shard, _, activity_token = _live()
    exact = b"x" * limits.PAYLOAD_BYTES_MAX
    output = shard.run(RespondActivityTaskCompleted(now_ms=shard.now_ms, token=activity_token,
                                                    result=exact))
    assert output.result == Ack()


def test_signal_refused_at_history_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    shard = Shard()
    shard.start()
    monkeypatch.setattr(limits, "HISTORY_EVENTS_MAX", 3)
    signal = SignalWorkflow(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                            signal_name="s", request_id="s1")
    rejected = shard.run_unchanged(signal)
    assert rejected.code is ErrorCode.LIMIT_EXCEEDED and rejected.field == "HISTORY_EVENTS_MAX"


def test_barrier_and_idle_fire_timers_change_only_the_applied_index() -> None:
    shard = Shard()
    shard.start()
    effects = pending_effects(shard.state)
    for command in (Barrier(now_ms=1, leader_node="n1", term=2), FireTimers(now_ms=2)):
        output = shard.run(command)
        assert output.result == Ack() and not output.events
    assert pending_effects(shard.state) == effects
    assert shard.state.applied_index == 3


def test_limits_are_consistent() -> None:
    assert limits.HISTORY_EVENTS_MAX == 51_200
    assert limits.PENDING_ACTIVITIES_MAX == 2_000
    assert limits.PAYLOAD_BYTES_MAX == 2 * 1024 * 1024
    assert limits.HISTORY_EVENTS_SERVER_SLACK >= 2 * limits.PENDING_ACTIVITIES_MAX


def test_fire_timers_fires_at_most_the_limit_and_points_at_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Five runs whose run timeouts are all due; a FireTimers may close only three of them, and
    # must leave the shell a wake-up that is already due, so the next one closes the others.
    monkeypatch.setattr(limits, "TIMERS_PER_FIRE_MAX", 3)
    shard = Shard()
    runs = [shard.start(f"wf-{i}", run_timeout_ms=1_000 + i) for i in range(5)]
    first = shard.run(FireTimers(now_ms=shard.now_ms + 10_000))
    timed_out = [r for r in runs if "WorkflowExecutionTimedOut" in shard.event_types(r)]
    assert timed_out == runs[:3]  # oldest deadlines first
    wake_ups = [e for e in first.effects if isinstance(e, ArmTimer)]
    assert wake_ups == [ArmTimer(fire_at_ms=1_000 + shard.now_ms + 3)]  # already due
    shard.run(FireTimers(now_ms=shard.now_ms + 10_000))
    assert all("WorkflowExecutionTimedOut" in shard.event_types(r) for r in runs)
    assert shard.state.earliest_timer() is None


def test_timer_limit_is_named_and_bounded() -> None:
    assert 0 < limits.TIMERS_PER_FIRE_MAX <= limits.PENDING_TIMERS_MAX
