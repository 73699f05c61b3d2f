"""Goal: `Client.start_workflow(..., start_signal=...)` is one signal-with-start call: the
documented body on the documented path, the signal's arguments through the payload codec like
every signal's (the server sees ciphertext only), the handle on the run the server names, and
refusals (an eager start with a signal, a 409) as for a start.

Method: the client over a stand-in transport that records bodies (test_payload_codec_edges.py).
"""

from __future__ import annotations

import json

import pytest

from raftflow.sdk import errors
from raftflow.sdk.errors import RPCError
from tests.sdk.test_payload_codec_edges import (
    MARKER,
    WORKFLOWS,
    Echo,
    _client,
    _opened,
    _run,
    _Server,
)


def test_the_call_carries_start_and_signal_and_the_codec_hides_both() -> None:
    server = _Server({("POST", WORKFLOWS + "/w/signal-with-start"): {
        "workflow_id": "w", "run_id": "r-1"}})
    handle = _run(_client(server).start_workflow(
        Echo.run, MARKER, id="w", task_queue="q", request_id="rq-1", start_signal=Echo.note,
        start_signal_args=[MARKER, 2]))
    assert handle.result_run_id == "r-1" and handle.id == "w"
    assert handle.first_execution_run_id is None  # a 200: an open run was signalled
    [body] = server.sent
    assert MARKER not in json.dumps(body)
    assert _opened(body["input"]) == [MARKER] and _opened(body["signal_input"]) == [MARKER, 2]
    assert body["signal_name"] == "note" and body["workflow_type"] == "Echo"
    assert body["task_queue"] == "q" and body["request_id"] == "rq-1"
    assert "workflow_id" not in body  # it is in the path


def test_without_a_codec_the_signal_goes_in_plain() -> None:
    server = _Server({("POST", WORKFLOWS + "/w/signal-with-start"): {
        "workflow_id": "w", "run_id": "r-1"}})
    _run(_client(server, codec=None).start_workflow(
        "Echo", id="w", task_queue="q", start_signal="note", start_signal_args=["x"]))
    assert server.sent[0]["signal_input"] == ["x"] and server.sent[0]["input"] == []


def test_an_eager_signal_with_start_is_refused_before_any_call() -> None:
    server = _Server({})
    with pytest.raises(ValueError, match="request_eager_start"):
        _run(_client(server).start_workflow("Echo", id="w", task_queue="q",
                                            start_signal="note", request_eager_start=True))
    assert server.sent == []


class _Refusing(_Server):
    async def call(self, method: str, path: str, **kwargs: object) -> object:
        raise RPCError("workflow_already_started", "reuse policy refuses", 409)


def test_a_409_is_workflow_already_started() -> None:
    with pytest.raises(errors.WorkflowAlreadyStartedError):
        _run(_client(_Refusing({})).start_workflow("Echo", id="w", task_queue="q",
                                                   start_signal="note"))
