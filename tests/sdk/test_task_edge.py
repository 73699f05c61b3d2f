"""Goal: a task is decoded into the API's typed task structs once, where it enters the worker,
and a task that is not in that shape is refused there: no workflow or activity code runs, the
task is failed when its token can be read (the server retries it at once) and dropped when it
cannot (the server retries it after its timeout), a query is answered with the error.

Method: the worker's workflow-task and activity-task runners are driven with task JSON as the
transport hands it over (well-formed: the shape the gateway renders, `http_answers`; then one
field broken), through a fake exchange that records what the worker posts, and with workflow
and activity code that records whether it ran. The refusal tests read only the runners'
`handle` and the posts, so they also ran against the SDK before the edge existed: each failed
there (the code ran, or the task was dropped unanswered). Last, the golden histories are read
through both event envelopes (a task's and a history page's) and must agree.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from raftflow.api import validation
from raftflow.protocol.history_json import event_from_answer
from raftflow.protocol.http_answers import HistoryEventAnswer
from raftflow.sdk import activity, workflow
from raftflow.sdk._activity_task_runner import ActivityTaskRunner
from raftflow.sdk._http import encode_body
from raftflow.sdk._runner_cache import RunnerCache
from raftflow.sdk._task_exchange import TaskExchange
from raftflow.sdk._wire_json import decode_history
from raftflow.sdk._workflow_task_runner import WorkflowTaskRunner
from tests.sdk.history_builder import HistoryBuilder
from tests.sdk.recording_exchange import Post, RecordingExchange, no_history

HISTORIES = Path(__file__).resolve().parents[1] / "data" / "histories"
RAN: list[str] = []  # what workflow and activity code ran, in this process's tests


@workflow.defn
class Counter:
    @workflow.run
    async def run(self) -> int:
        RAN.append("workflow")
        return 1

    @workflow.query
    def count(self) -> int:
        RAN.append("query")
        return 1


@activity.defn
async def tally(n: int) -> int:
    RAN.append("activity")
    return n


SENT: list[object] = []  # every body the last `_run` posted, as built


def _run(handle: Callable[[RecordingExchange], Any]) -> list[Post]:
    RAN.clear()

    async def main() -> list[Post]:
        exchange = RecordingExchange()
        await handle(exchange)
        SENT[:] = exchange.structs
        return exchange.posts

    return asyncio.run(main())


def _handle_workflow_task(body: dict[str, Any]) -> list[Post]:
    def handle(exchange: RecordingExchange) -> Any:
        cache = RunnerCache({"Counter": Counter}, namespace="default", task_queue="q",
                            size_max=10, fetch_history=no_history)
        runner = WorkflowTaskRunner(
            cast(TaskExchange, exchange), cache, task_queue="q", activity_types=(),
            activity_slots=asyncio.Semaphore(1), start_activity=lambda address, t: None)
        return runner.handle("http://node", body)

    return _run(handle)


def _handle_activity_task(body: dict[str, Any]) -> list[Post]:
    def handle(exchange: RecordingExchange) -> Any:
        runner = ActivityTaskRunner(
            cast(TaskExchange, exchange), {"tally": activity.definition_of(tally)},
            namespace="default", task_queue="q", threads_max=1, workflow_slots=None,
            start_workflow_task=lambda address, t: None)
        return runner.handle("http://node", body)

    return _run(handle)


def _history() -> list[dict[str, Any]]:
    history = HistoryBuilder()
    history.events[0]["attributes"]["workflow_type"] = "Counter"
    history.start_task()
    return history.events


def _workflow_task(**changes: Any) -> dict[str, Any]:
    """A workflow task as the gateway renders `http_answers.WorkflowTask`."""
    history = _history()
    task = {"task_token": "token", "namespace": "default", "workflow_id": "wf-1",
            "run_id": "run-1", "workflow_type": "Counter", "task_queue": "q", "attempt": 1,
            "scheduled_event_id": len(history) - 1, "started_event_id": len(history),
            "previous_started_event_id": 0, "history": history}
    return _changed(task, changes)


def _query_task(**changes: Any) -> dict[str, Any]:
    """A query task as the gateway offers it (`http_answers.QueryTask`)."""
    task = {"query_id": "node-1:q1", "query_type": "count", "args": [], "namespace": "default",
            "workflow_id": "wf-1", "run_id": "run-1", "workflow_type": "Counter",
            "task_queue": "q", "history": _history()}
    return _changed(task, changes)


def _activity_task(**changes: Any) -> dict[str, Any]:
    """An activity task as the gateway renders `http_answers.ActivityTask`."""
    time = "2026-01-02T03:04:05.000+00:00"
    task = {"task_token": "token", "namespace": "default", "workflow_id": "wf-1",
            "run_id": "run-1", "workflow_type": "Counter", "activity_id": "1",
            "activity_type": "tally", "task_queue": "q", "input": [7], "attempt": 1,
            "heartbeat_details": None, "scheduled_time": time,
            "current_attempt_scheduled_time": time, "started_time": time,
            "schedule_to_close_timeout_ms": None, "start_to_close_timeout_ms": 5000,
            "heartbeat_timeout_ms": None}
    return _changed(task, changes)


def _changed(task: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`task` with fields replaced, and those given as `...` left out."""
    task.update(changes)
    return {key: value for key, value in task.items() if value is not ...}


# -- well-formed tasks run (the baseline the refusals below are measured against) ----------

def test_a_well_formed_workflow_task_runs_its_code_and_completes() -> None:
    [(path, body)] = _handle_workflow_task(_workflow_task())
    assert path == "/api/v1/tasks/workflow/complete" and body["task_token"] == "token"
    assert RAN == ["workflow"]


def test_a_well_formed_query_task_is_answered_by_its_query_handler() -> None:
    [(path, body)] = _handle_workflow_task(_query_task())
    assert path == "/api/v1/tasks/query/respond"
    assert body["query_id"] == "node-1:q1" and body["result"] == 1
    assert body.get("error") is None
    assert "query" in RAN


def test_a_well_formed_activity_task_runs_its_code_and_completes() -> None:
    [(path, body)] = _handle_activity_task(_activity_task())
    assert path == "/api/v1/tasks/activity/complete" and body["result"] == 7
    assert RAN == ["activity"]


# -- malformed tasks are refused at the edge ------------------------------------------------

@pytest.mark.parametrize(("changes", "named"), [
    ({"attempt": "2"}, "$.attempt"),
    ({"started_event_id": None}, "$.started_event_id"),
    ({"run_id": ...}, "run_id"),
    ({"history": {"events": []}}, "$.history"),
], ids=["attempt-a-string", "started-event-id-null", "no-run-id", "history-not-a-list"])
def test_a_malformed_workflow_task_with_a_token_is_failed_before_any_code_runs(
        changes: dict[str, Any], named: str) -> None:
    [(path, body)] = _handle_workflow_task(_workflow_task(**changes))
    assert path == "/api/v1/tasks/workflow/fail"
    assert body["task_token"] == "token"
    failure = cast(dict[str, object], body["failure"])
    assert failure["type"] == "MalformedTaskError"
    assert named in str(failure["message"])
    assert RAN == []


@pytest.mark.parametrize("changes", [{"task_token": ...}, {"task_token": 7}],
                         ids=["no-token", "token-a-number"])
def test_a_malformed_workflow_task_without_a_readable_token_is_dropped(
        changes: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    assert _handle_workflow_task(_workflow_task(**changes)) == []
    assert RAN == []
    assert "malformed" in caplog.text and "task_token" in caplog.text


def test_a_malformed_query_task_is_answered_with_the_error_before_any_code_runs() -> None:
    [(path, body)] = _handle_workflow_task(_query_task(args="count"))
    assert path == "/api/v1/tasks/query/respond" and body["query_id"] == "node-1:q1"
    error = cast(dict[str, object], body["error"])
    assert error["type"] == "MalformedTaskError" and "$.args" in str(error["message"])
    assert RAN == []


@pytest.mark.parametrize(("changes", "named"), [
    ({"attempt": "1"}, "$.attempt"),
    ({"attempt": 0}, "$.attempt"),
    ({"activity_type": ...}, "activity_type"),
    ({"input": {"n": 7}}, "input"),
    ({"started_time": "yesterday"}, "started_time"),
], ids=["attempt-a-string", "attempt-zero", "no-activity-type", "input-not-a-list",
        "started-time-not-iso"])
def test_a_malformed_activity_task_with_a_token_is_failed_before_any_code_runs(
        changes: dict[str, Any], named: str) -> None:
    [(path, body)] = _handle_activity_task(_activity_task(**changes))
    assert path == "/api/v1/tasks/activity/fail" and body["task_token"] == "token"
    failure = cast(dict[str, object], body["failure"])
    assert failure["type"] == "MalformedTaskError" and named in str(failure["message"])
    assert RAN == []


def test_a_malformed_activity_task_without_a_token_is_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    assert _handle_activity_task(_activity_task(task_token=...)) == []
    assert RAN == []
    assert "malformed" in caplog.text


# -- one reading of an event, whichever envelope it came in ----------------------------------

@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
def test_an_event_in_a_task_reads_as_the_same_event_in_a_history_page(path: Path) -> None:
    """A task's events go through the answer struct (`event_from_answer`), a `/history` page's
    through `event_from_json`: the same JSON must give the same typed events."""
    bodies = json.loads(path.read_text())["events"]
    from_answers = [event_from_answer(msgspec.convert(b, HistoryEventAnswer)) for b in bodies]
    assert from_answers == decode_history(bodies, path.stem)


# -- what the worker answers is what the gateway reads ---------------------------------------

@pytest.mark.parametrize("scenario", [
    lambda: _handle_workflow_task(_workflow_task()),
    lambda: _handle_workflow_task(_workflow_task(attempt="2")),
    lambda: _handle_workflow_task(_query_task()),
    lambda: _handle_workflow_task(_query_task(args="count")),
    lambda: _handle_activity_task(_activity_task()),
    lambda: _handle_activity_task(_activity_task(activity_type="unknown")),
    lambda: _handle_activity_task(_activity_task(attempt=0)),
], ids=["complete-workflow-task", "fail-workflow-task", "query-result", "query-error",
        "complete-activity", "fail-activity-unknown-type", "fail-activity-malformed"])
def test_every_answer_decodes_as_the_gateway_decodes_it(scenario: Callable[[], Any]) -> None:
    """The worker builds the gateway's request structs; encoded by the transport, each
    decodes back (`api/validation.decode_body`, strict, unknown fields refused) into the same
    struct."""
    scenario()
    assert SENT
    for body in SENT:
        assert isinstance(body, msgspec.Struct)
        assert validation.decode_body(encode_body(body), type(body)) == body
