"""Goal: a payload is one type with one representation per wire: msgpack bin in the log, the
JSON value itself over HTTP; null and "left out" are both the empty payload; a value other
JSON readers cannot hold is refused at decode.

Method: the hooks through msgspec's own encoders and decoders, and the gateway's body decoder
for the refusals (field named, 400/413).
"""

from __future__ import annotations

import json

import msgspec
import pytest

from raftflow.api.errors import InvalidArgumentError
from raftflow.api.validation import decode_body
from raftflow.protocol import codec
from raftflow.protocol import commands as c
from raftflow.protocol.http_bodies import SignalWorkflowRequest
from raftflow.protocol.payload import (
    EMPTY,
    Payload,
    builtins_enc_hook,
    json_dec_hook,
    json_enc_hook,
)


def test_json_carries_the_value_and_msgpack_the_bytes() -> None:
    command = c.CompleteWorkflowExecution(result=Payload(b'{"a":[1,"\xc3\xa9"]}'))
    as_json = msgspec.json.encode(command, enc_hook=json_enc_hook)
    assert json.loads(as_json) == {"type": "CompleteWorkflowExecution", "result": {"a": [1, "é"]}}
    assert msgspec.json.decode(as_json, type=c.WorkflowCommand, dec_hook=json_dec_hook) == command
    as_msgpack = msgspec.msgpack.decode(codec.ENCODER.encode(command))
    assert as_msgpack["result"] == b'{"a":[1,"\xc3\xa9"]}'  # bin, the bytes as they are


def test_null_and_left_out_are_the_empty_payload_and_read_back_as_null() -> None:
    for body in (b'{"type":"CompleteWorkflowExecution"}',
                 b'{"type":"CompleteWorkflowExecution","result":null}'):
        command = msgspec.json.decode(body, type=c.WorkflowCommand, dec_hook=json_dec_hook)
        assert isinstance(command, c.CompleteWorkflowExecution)
        assert command.result == EMPTY and type(command.result) is Payload
        assert json.loads(msgspec.json.encode(command, enc_hook=json_enc_hook))["result"] is None
    assert msgspec.to_builtins(c.CancelWorkflowExecution(), enc_hook=builtins_enc_hook) == {
        "type": "CancelWorkflowExecution", "details": None}


def test_bytes_that_are_not_json_do_not_break_the_document_around_them() -> None:
    # None enter through the API; a hand-built value must still render as valid JSON.
    command = c.CompleteWorkflowExecution(result=Payload(b"\xff not json"))
    rendered = json.loads(msgspec.json.encode(command, enc_hook=json_enc_hook))
    assert rendered["result"] == {"base64": "/yBub3QganNvbg=="}


def test_a_log_entry_gives_payload_fields_back_as_payloads() -> None:
    failed = c.RespondActivityTaskFailed(now_ms=1, token=c.TaskToken(
        namespace="n", workflow_id="w", run_id="r", scheduled_event_id=5, attempt=1,
        kind=c.TaskKind.ACTIVITY), failure=c.Failure(message="m", details=Payload(b"[1]")))
    decoded = codec.decode_command(codec.encode_command(failed))
    assert isinstance(decoded, c.RespondActivityTaskFailed) and decoded == failed
    assert type(decoded.failure.details) is Payload


@pytest.mark.parametrize("number", ["1" + "0" * 400, "-1" + "0" * 400, "1e400", "[2e308]"])
def test_a_number_beyond_a_float_is_refused_naming_the_field(number: str) -> None:
    raw = f'{{"signal_name": "s", "input": {number}}}'.encode()
    with pytest.raises(InvalidArgumentError, match="numbers a float can hold") as caught:
        decode_body(raw, SignalWorkflowRequest)
    assert caught.value.field is not None and caught.value.field.startswith("input")


def test_a_long_number_a_float_holds_is_kept() -> None:
    raw = b'{"signal_name": "s", "input": [123456789012345678901234567890, 1e300]}'
    assert json.loads(decode_body(raw, SignalWorkflowRequest).input) == [
        123456789012345678901234567890, 1e300]
