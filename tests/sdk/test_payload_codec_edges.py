"""Goal: with a payload codec, every payload the client and the worker send is encoded and every
one they receive is decoded before user code sees it: a workflow's input, result and failure
details, signal and query arguments, a query's result, an activity's input and result, the
history a workflow task replays (decoded before replay, commands encoded after). A client or
worker without a codec refuses an encoded payload with a clear error and runs no user code.

Method: the client over a fake transport that records the bodies it sends and answers with
encoded payloads; the worker's workflow-task and activity-task runners fed task JSON as the
gateway renders it, with payloads encrypted by the AES-GCM codec, through a recording exchange.
A marker string is put in every payload; no body sent may contain it in plain text, and the
values user code saw must.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any, cast

import msgspec
import pytest

from raftflow.protocol import events as ev
from raftflow.protocol import http_answers as answers
from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    ContinueAsNewWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    RecordMarker,
    ScheduleActivityTask,
    StartTimer,
    WorkflowCommand,
)
from raftflow.protocol.history_json import event_json, payload_json
from raftflow.protocol.payload import Payload, json_enc_hook
from raftflow.protocol.results import WorkflowExecutionStatus
from raftflow.sdk import ApplicationError, Client, PayloadCodecError, activity, errors, workflow
from raftflow.sdk._activity_task_runner import ActivityTaskRunner
from raftflow.sdk._history_payloads import decode_events, encode_commands
from raftflow.sdk._http import Answer, Transport
from raftflow.sdk._replay.commands import payload
from raftflow.sdk._runner_cache import RunnerCache
from raftflow.sdk._task_exchange import TaskExchange
from raftflow.sdk._wire_json import commands_json, decode_history
from raftflow.sdk._wire_payloads import NO_CODEC, PayloadShape, WirePayloads
from raftflow.sdk._workflow_execution import WorkflowHistory
from raftflow.sdk._workflow_task_runner import WorkflowTaskRunner
from raftflow.sdk.contrib.aes_gcm_codec import AesGcmCodec
from raftflow.sdk.replayer import decode_workflow_history, replay_history
from tests.sdk.history_builder import HistoryBuilder
from tests.sdk.recording_exchange import Post, RecordingExchange, no_history

MARKER = "plaintext-marker-41c9"
CODEC = AesGcmCodec({"k1": bytes(range(32))}, encrypt_with="k1")
WIRE = WirePayloads(CODEC)
SEEN: list[tuple[str, object]] = []  # what user code received, in this process's tests


@activity.defn
async def shout(text: str) -> str:
    SEEN.append(("activity", text))
    return text.upper() + "!"


@workflow.defn
class Echo:
    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self, text: str) -> str:
        SEEN.append(("workflow", text))
        loud = await workflow.execute_activity(shout, text,
                                               start_to_close_timeout=timedelta(seconds=5))
        await workflow.wait_condition(lambda: bool(self.notes))
        return f"{loud} {self.notes[0]}"

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)

    @workflow.query
    def notes_seen(self, prefix: str) -> list[str]:
        return [prefix + n for n in self.notes]


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def _sealed_args(*values: object) -> Any:
    """An arguments field as a codec client sends it: a list of envelopes."""
    return json.loads(_run(WIRE.encode(payload(list(values), "a"), PayloadShape.ARGS, "a")))


def _sealed_value(value: object) -> Any:
    return json.loads(_run(WIRE.encode(payload(value, "v"), PayloadShape.VALUE, "v")))


def _opened(value: Any) -> Any:
    return _run(WIRE.decode_json(value, "test"))


def _no_marker(posts: list[Post]) -> None:
    assert posts and MARKER not in json.dumps(posts) and MARKER.upper() not in json.dumps(posts)


# -- the worker: workflow tasks and queries ----------------------------------------------------

def _first_task_history() -> HistoryBuilder:
    history = HistoryBuilder(args=_sealed_args(MARKER))
    history.events[0]["attributes"]["workflow_type"] = "Echo"
    history.start_task()
    return history


def _second_task_history() -> HistoryBuilder:
    """The first task's answer recorded, the activity's result and a signal in, as a codec
    worker and client would have sent them."""
    history = _first_task_history()
    ids = history.complete_task([{
        "type": "ScheduleActivityTask", "activity_id": "1", "activity_type": "shout",
        "input": _sealed_args(MARKER), "start_to_close_timeout_ms": 5000}])
    history.activity_completed(ids["activity 1"], _sealed_value(MARKER.upper() + "!"))
    history.signal("note", *_sealed_args(MARKER + "-note"))
    history.start_task()
    return history


def _task(history: HistoryBuilder) -> dict[str, Any]:
    events = history.events
    return {"task_token": "token", "namespace": "default", "workflow_id": "wf-1",
            "run_id": "run-1", "workflow_type": "Echo", "task_queue": "q", "attempt": 1,
            "scheduled_event_id": len(events) - 1, "started_event_id": len(events),
            "previous_started_event_id": 0, "history": events}


def _handle_workflow_task(body: dict[str, Any], payloads: WirePayloads) -> list[Post]:
    SEEN.clear()

    async def main() -> list[Post]:
        exchange = RecordingExchange()
        cache = RunnerCache({"Echo": Echo}, namespace="default", task_queue="q", size_max=10,
                            fetch_history=no_history)
        runner = WorkflowTaskRunner(
            cast(TaskExchange, exchange), cache, task_queue="q", activity_types=(),
            activity_slots=asyncio.Semaphore(1), start_activity=lambda address, t: None,
            payloads=payloads)
        await runner.handle("http://node", body)
        return exchange.posts

    posts: list[Post] = _run(main())
    return posts


def test_a_codec_worker_decodes_the_history_and_encodes_its_commands() -> None:
    posts = _handle_workflow_task(_task(_first_task_history()), WIRE)
    [(path, body)] = posts
    assert path == "/api/v1/tasks/workflow/complete"
    _no_marker(posts)
    [command] = cast(list[dict[str, Any]], body["commands"])
    assert command["type"] == "ScheduleActivityTask" and _opened(command["input"]) == [MARKER]
    assert SEEN == [("workflow", MARKER)]


def test_a_codec_worker_replays_encrypted_results_and_signals_and_encrypts_its_result() -> None:
    posts = _handle_workflow_task(_task(_second_task_history()), WIRE)
    [(path, body)] = posts
    assert path == "/api/v1/tasks/workflow/complete"
    _no_marker(posts)
    [command] = cast(list[dict[str, Any]], body["commands"])
    assert command["type"] == "CompleteWorkflowExecution"
    assert _opened(command["result"]) == f"{MARKER.upper()}! {MARKER}-note"


def test_a_codec_worker_answers_a_query_with_encrypted_arguments_and_result() -> None:
    query = {"query_id": "node-1:q1", "query_type": "notes_seen", "args": _sealed_args("re: "),
             "namespace": "default", "workflow_id": "wf-1", "run_id": "run-1",
             "workflow_type": "Echo", "task_queue": "q",
             "history": _second_task_history().events}
    posts = _handle_workflow_task(query, WIRE)
    [(path, body)] = posts
    assert path == "/api/v1/tasks/query/respond" and body.get("error") is None
    _no_marker(posts)
    assert _opened(body["result"]) == [f"re: {MARKER}-note"]


def test_a_worker_without_a_codec_fails_an_encrypted_task_before_any_code_runs() -> None:
    [(path, body)] = _handle_workflow_task(_task(_first_task_history()), NO_CODEC)
    assert path == "/api/v1/tasks/workflow/fail"
    failure = cast(dict[str, Any], body["failure"])
    assert "was encoded by a payload codec" in failure["message"]
    assert "event 1 (WorkflowExecutionStarted) input" in failure["message"]
    assert SEEN == []


def test_a_worker_with_the_wrong_key_fails_the_task_naming_the_key() -> None:
    wrong = WirePayloads(AesGcmCodec({"k1": bytes(32)}, encrypt_with="k1"))
    [(path, body)] = _handle_workflow_task(_task(_first_task_history()), wrong)
    assert path == "/api/v1/tasks/workflow/fail"
    assert "failed authentication under key 'k1'" in cast(dict[str, Any], body["failure"])[
        "message"]
    assert SEEN == []


# -- the worker: activity tasks ----------------------------------------------------------------

def _activity_task(task_input: Any) -> dict[str, Any]:
    time = "2026-01-02T03:04:05.000+00:00"
    return {"task_token": "token", "namespace": "default", "workflow_id": "wf-1",
            "run_id": "run-1", "workflow_type": "Echo", "activity_id": "1",
            "activity_type": "shout", "task_queue": "q", "input": task_input, "attempt": 1,
            "heartbeat_details": None, "scheduled_time": time,
            "current_attempt_scheduled_time": time, "started_time": time,
            "schedule_to_close_timeout_ms": None, "start_to_close_timeout_ms": 5000,
            "heartbeat_timeout_ms": None}


def _handle_activity_task(body: dict[str, Any], payloads: WirePayloads) -> list[Post]:
    SEEN.clear()

    async def main() -> list[Post]:
        exchange = RecordingExchange()
        runner = ActivityTaskRunner(
            cast(TaskExchange, exchange), {"shout": activity.definition_of(shout)},
            namespace="default", task_queue="q", threads_max=1, workflow_slots=None,
            start_workflow_task=lambda address, t: None, payloads=payloads)
        await runner.handle("http://node", body)
        return exchange.posts

    posts: list[Post] = _run(main())
    return posts


def test_a_codec_worker_decrypts_an_activity_input_and_encrypts_its_result() -> None:
    posts = _handle_activity_task(_activity_task(_sealed_args(MARKER)), WIRE)
    [(path, body)] = posts
    assert path == "/api/v1/tasks/activity/complete"
    _no_marker(posts)
    assert _opened(body["result"]) == MARKER.upper() + "!"
    assert SEEN == [("activity", MARKER)]


def test_a_worker_without_a_codec_fails_an_encrypted_activity_before_it_runs() -> None:
    [(path, body)] = _handle_activity_task(_activity_task(_sealed_args(MARKER)), NO_CODEC)
    assert path == "/api/v1/tasks/activity/fail"
    failure = cast(dict[str, Any], body["failure"])
    assert failure["type"] == "PayloadCodecError"
    assert "input of activity shout (1) was encoded by a payload codec" in failure["message"]
    assert SEEN == []


def test_a_plain_activity_input_still_runs_on_a_codec_worker() -> None:
    [(path, body)] = _handle_activity_task(_activity_task(["plain"]), WIRE)
    assert path == "/api/v1/tasks/activity/complete" and _opened(body["result"]) == "PLAIN!"


# -- the client --------------------------------------------------------------------------------

WORKFLOWS = "/api/v1/namespaces/default/workflows"


def _described(**changes: Any) -> Any:
    description = answers.WorkflowDescription(
        workflow_id="w", run_id="r-1", workflow_type="Echo", task_queue="q",
        history_length=5, start_time="2026-01-02T03:04:05.678+00:00",
        close_time="2026-01-02T03:04:06.678+00:00", pending_activity_count=0,
        pending_timer_count=0, workflow_task_pending=False, continued_execution_run_id=None,
        **changes)
    return json.loads(msgspec.json.encode(description, enc_hook=json_enc_hook))


class _Server:
    """Stands in for the transport: records each body sent, answers from a table."""

    addresses = ("http://node",)

    def __init__(self, table: dict[tuple[str, str], Any]) -> None:
        self.table = table
        self.sent: list[Any] = []

    async def call(self, method: str, path: str, *, body: object = None, **_: Any) -> Answer:
        if body is not None:
            self.sent.append(msgspec.to_builtins(body, enc_hook=lambda p: payload_json(p)))
        return Answer(status=200, body=self.table[(method, path)], address="http://node")


def _client(server: _Server, codec: AesGcmCodec | None = CODEC) -> Client:
    return Client(cast(Transport, server), "default", payload_codec=codec)


def test_a_codec_client_sends_only_ciphertext_and_reads_results_in_plain() -> None:
    server = _Server({
        ("POST", WORKFLOWS): {"workflow_id": "w", "run_id": "r-1"},
        ("POST", WORKFLOWS + "/w/signal"): {},
        ("POST", WORKFLOWS + "/w/query"): {"result": _sealed_value([MARKER])},
        ("GET", WORKFLOWS + "/w/result"): _described(
            status=WorkflowExecutionStatus.COMPLETED,
            result=Payload(json.dumps(_sealed_value({"out": MARKER})).encode()))})

    async def act(client: Client) -> tuple[Any, Any]:
        handle = await client.start_workflow(Echo.run, MARKER, id="w", task_queue="q")
        await handle.signal(Echo.note, MARKER)
        return await handle.query(Echo.notes_seen, MARKER), await handle.result()

    queried, result = _run(act(_client(server)))
    assert queried == [MARKER] and result == {"out": MARKER}
    assert len(server.sent) == 3 and MARKER not in json.dumps(server.sent)
    start, signal, query = server.sent
    assert _opened(start["input"]) == [MARKER] and _opened(signal["input"]) == [MARKER]
    assert _opened(query["args"]) == [MARKER]


def test_a_codec_client_decodes_the_details_of_a_workflow_failure() -> None:
    failure = Failure(message="no stock", type="OutOfStock",
                      details=Payload(json.dumps(_sealed_args(MARKER, 2)).encode()))
    # result() reads the close event too: a retried failure would name the next attempt.
    close = ev.HistoryEvent(event_id=5, time_ms=0,
                            attributes=ev.WorkflowExecutionFailedEventAttributes(failure=failure))
    server = _Server({("GET", WORKFLOWS + "/w/result"): _described(
        status=WorkflowExecutionStatus.FAILED, failure=failure),
        ("GET", WORKFLOWS + "/w/history"): {"events": [event_json(close)],
                                            "next_page_token": None}})
    with pytest.raises(errors.WorkflowFailureError) as raised:
        _run(_client(server).get_workflow_handle("w").result())
    cause = raised.value.cause
    assert isinstance(cause, ApplicationError) and cause.details == (MARKER, 2)


def test_a_client_without_a_codec_refuses_an_encrypted_result() -> None:
    server = _Server({("GET", WORKFLOWS + "/w/result"): _described(
        status=WorkflowExecutionStatus.COMPLETED,
        result=Payload(json.dumps(_sealed_value(MARKER)).encode()))})
    with pytest.raises(PayloadCodecError, match="result of workflow 'w' was encoded"):
        _run(_client(server, codec=None).get_workflow_handle("w").result())


# -- the passes over a task's events and commands; the replayer --------------------------------

def test_every_command_payload_is_encoded_and_nothing_else_changes() -> None:
    sealed = payload([MARKER], "m")
    commands: list[WorkflowCommand] = [
        ScheduleActivityTask(activity_id="1", activity_type="shout", input=sealed,
                             start_to_close_timeout_ms=5),
        StartTimer(timer_id="t", start_to_fire_timeout_ms=5),
        RecordMarker(marker_name="m", details=sealed),
        ContinueAsNewWorkflowExecution(input=sealed),
        FailWorkflowExecution(failure=Failure(message="m", details=sealed)),
        CompleteWorkflowExecution(result=sealed)]
    encoded = _run(encode_commands(WIRE, commands))
    assert MARKER not in json.dumps(commands_json(encoded))
    assert encoded[1] is commands[1]
    assert _run(encode_commands(NO_CODEC, commands)) == commands


def test_every_event_payload_is_decoded() -> None:
    args = payload(_sealed_args(MARKER), "a")
    value = payload(_sealed_value(MARKER), "v")
    failure = Failure(message="m", details=args)
    attributes: list[ev.EventAttributes] = [
        ev.WorkflowExecutionStartedEventAttributes(input=args),
        ev.ActivityTaskCompletedEventAttributes(result=value),
        ev.ActivityTaskFailedEventAttributes(failure=failure, retry_state=ev.RetryState.TIMEOUT),
        ev.ActivityTaskTimedOutEventAttributes(last_failure=failure,
                                               timeout_type=ev.TimeoutType.HEARTBEAT,
                                               retry_state=ev.RetryState.TIMEOUT),
        ev.WorkflowExecutionSignaledEventAttributes(input=args),
        ev.MarkerRecordedEventAttributes(details=value),
        ev.WorkflowExecutionCompletedEventAttributes(result=value)]
    events = [ev.HistoryEvent(event_id=i + 1, time_ms=0, attributes=a)
              for i, a in enumerate(attributes)]
    decoded = _run(decode_events(WIRE, events, "test"))
    text = json.dumps(msgspec.to_builtins(decoded, enc_hook=payload_json))
    assert MARKER in text and "_raftflow_payload" not in text


def test_the_replayer_refuses_an_encrypted_history_until_it_is_decoded() -> None:
    history = WorkflowHistory(workflow_id="wf-1", run_id="run-1", events=decode_history(
        _second_task_history().events, "test"))
    with pytest.raises(PayloadCodecError, match="decode the history first"):
        replay_history(history, [Echo])
    SEEN.clear()
    result = replay_history(_run(decode_workflow_history(history, CODEC)), [Echo])
    assert SEEN == [("workflow", MARKER)]
    assert isinstance(result.next_commands[0], CompleteWorkflowExecution)
