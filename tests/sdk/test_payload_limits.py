"""Goal: a payload the server would refuse (above PAYLOAD_BYTES_MAX) never leaves a worker as a
dead-end 413: a workflow task whose commands carry one fails the workflow, naming the payload
and the limit; an activity result fails the attempt non-retryably; payloads at the limit pass.
And `workflow.info().continue_as_new_suggested` turns on at CONTINUE_AS_NEW_SUGGESTED_EVENTS.

Method: the worker's task runners over a recording exchange (tests/sdk/recording_exchange.py)
with hand-made histories (history_builder.py), as the server would hand them out.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

import pytest

from raftflow.protocol.limits import PAYLOAD_BYTES_MAX
from raftflow.sdk import activity, workflow
from raftflow.sdk import workflow as workflow_module
from raftflow.sdk._activity_task_runner import ActivityTaskRunner
from raftflow.sdk._payload_limits import PAYLOAD_TOO_LARGE, too_large
from raftflow.sdk._runner_cache import RunnerCache
from raftflow.sdk._task_exchange import TaskExchange
from raftflow.sdk._wire_payloads import NO_CODEC
from raftflow.sdk._workflow_task_runner import WorkflowTaskRunner
from tests.sdk.history_builder import HistoryBuilder
from tests.sdk.recording_exchange import Post, RecordingExchange, no_history

# A JSON string of exactly `n` bytes is n - 2 characters between its quotes.
AT_LIMIT = "x" * (PAYLOAD_BYTES_MAX - 2)
OVER_LIMIT = "x" * (PAYLOAD_BYTES_MAX - 1)


@activity.defn
async def produce(size: str) -> str:
    return OVER_LIMIT if size == "over" else "small"


@workflow.defn(name="Sized")
class Sized:
    @workflow.run
    async def run(self, what: str) -> Any:
        if what == "activity-input":
            return await workflow.execute_activity(
                produce, OVER_LIMIT, start_to_close_timeout=timedelta(seconds=5))
        if what == "suggested":
            return workflow.info().continue_as_new_suggested
        return {"at": AT_LIMIT, "over": OVER_LIMIT, "small": "ok"}[what]


def _workflow_task(what: str) -> list[Post]:
    history = HistoryBuilder(args=[what])
    history.events[0]["attributes"]["workflow_type"] = "Sized"
    history.start_task()
    events = history.events
    task = {"task_token": "token", "namespace": "default", "workflow_id": "wf-1",
            "run_id": "run-1", "workflow_type": "Sized", "task_queue": "q", "attempt": 1,
            "scheduled_event_id": len(events) - 1, "started_event_id": len(events),
            "previous_started_event_id": 0, "history": events}

    async def main() -> list[Post]:
        exchange = RecordingExchange()
        cache = RunnerCache({"Sized": Sized}, namespace="default", task_queue="q",
                            size_max=10, fetch_history=no_history)
        runner = WorkflowTaskRunner(
            cast(TaskExchange, exchange), cache, task_queue="q", activity_types=(),
            activity_slots=asyncio.Semaphore(1), start_activity=lambda address, t: None,
            payloads=NO_CODEC)
        await runner.handle("http://node", task)
        return exchange.posts

    posts: list[Post] = asyncio.run(main())
    return posts


def _only_command(posts: list[Post]) -> dict[str, Any]:
    [(path, body)] = posts
    assert path == "/api/v1/tasks/workflow/complete", (path, str(body)[:300])
    [command] = cast(list[dict[str, Any]], body["commands"])
    return command


@pytest.mark.parametrize(("what", "named"), [
    ("over", "workflow result"), ("activity-input", "input of activity produce")])
def test_an_oversized_command_payload_fails_the_workflow_naming_it(what: str,
                                                                   named: str) -> None:
    command = _only_command(_workflow_task(what))
    assert command["type"] == "FailWorkflowExecution", str(command)[:300]
    failure = command["failure"]
    assert failure["type"] == PAYLOAD_TOO_LARGE and failure["non_retryable"] is True
    assert named in failure["message"] and f"PAYLOAD_BYTES_MAX={PAYLOAD_BYTES_MAX}" in failure[
        "message"]


def test_a_result_at_the_limit_completes_the_workflow() -> None:
    command = _only_command(_workflow_task("at"))
    assert command["type"] == "CompleteWorkflowExecution"
    assert len(command["result"]) == PAYLOAD_BYTES_MAX - 2


def test_the_limit_is_measured_as_the_server_measures_it() -> None:
    assert too_large(b'"' + AT_LIMIT.encode() + b'"', "x") is None
    failure = too_large(b'"' + OVER_LIMIT.encode() + b'"', "the thing")
    assert failure is not None and failure.message.startswith(
        f"the thing is {PAYLOAD_BYTES_MAX + 1} bytes")
    # Whitespace the server would drop does not count (it re-encodes compactly).
    compact = b'["' + b"x" * (PAYLOAD_BYTES_MAX - 50_000 - 4) + b'"]'
    spaced = compact[:1] + b" " * 100_000 + compact[1:]
    assert len(spaced) > PAYLOAD_BYTES_MAX >= len(compact) and too_large(spaced, "x") is None


def _activity_task(size: str) -> dict[str, Any]:
    time = "2026-01-02T03:04:05.000+00:00"
    return {"task_token": "token", "namespace": "default", "workflow_id": "wf-1",
            "run_id": "run-1", "workflow_type": "Sized", "activity_id": "1",
            "activity_type": "produce", "task_queue": "q", "input": [size], "attempt": 1,
            "heartbeat_details": None, "scheduled_time": time,
            "current_attempt_scheduled_time": time, "started_time": time,
            "schedule_to_close_timeout_ms": None, "start_to_close_timeout_ms": 5000,
            "heartbeat_timeout_ms": None}


def _activity(size: str) -> Post:
    async def main() -> list[Post]:
        exchange = RecordingExchange()
        runner = ActivityTaskRunner(
            cast(TaskExchange, exchange), {"produce": activity.definition_of(produce)},
            namespace="default", task_queue="q", threads_max=1, workflow_slots=None,
            start_workflow_task=lambda address, t: None, payloads=NO_CODEC)
        await runner.handle("http://node", _activity_task(size))
        return exchange.posts

    [post] = asyncio.run(main())
    return post


def test_an_oversized_activity_result_fails_the_attempt_for_good() -> None:
    path, body = _activity("over")
    assert path == "/api/v1/tasks/activity/fail"
    failure = cast(dict[str, Any], body["failure"])
    assert failure["type"] == PAYLOAD_TOO_LARGE and failure["non_retryable"] is True
    assert "the activity's result" in failure["message"]
    path, body = _activity("small")
    assert path == "/api/v1/tasks/activity/complete" and body["result"] == "small"


@pytest.mark.parametrize(("threshold", "suggested"), [(3, True), (4, False)])
def test_continue_as_new_is_suggested_from_the_named_history_length(
        monkeypatch: pytest.MonkeyPatch, threshold: int, suggested: bool) -> None:
    # The first task's history: Started, TaskScheduled, TaskStarted (length 3).
    monkeypatch.setattr(workflow_module, "CONTINUE_AS_NEW_SUGGESTED_EVENTS", threshold)
    command = _only_command(_workflow_task("suggested"))
    assert command["type"] == "CompleteWorkflowExecution" and command["result"] is suggested
