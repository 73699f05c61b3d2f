"""The SDK's HTTP edge for typed values: histories come in as protocol events, workflow
commands go out as the JSON the worker API takes.

Theory of operation. Everything past this module works on `raftflow.protocol` types: a
history is decoded once, where a saved history arrives (`decode_history`; a task's history is
decoded with its task, in `_wire_tasks`, a `/history` page's with its page, in `_wire_answers`),
so replay matches event classes and never meets a malformed event.

Command JSON (`command_json`) is msgspec's JSON of the protocol command, the very type the
gateway decodes a completion into (`http_bodies.CompleteWorkflowTaskRequest`): `{"type":
<command name>, ...fields}`, payloads as their JSON value (`payload.builtins_enc_hook`), as
builtins for a stdlib JSON encoder (the replayer's report, saved test histories). A worker's
completion does not go through it: it posts the request struct, which the transport encodes
with msgspec to the same JSON (`_http.encode_body`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from raftflow.protocol.commands import WorkflowCommand
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.history_json import JsonValue, event_from_json
from raftflow.protocol.payload import builtins_enc_hook
from raftflow.sdk.errors import MalformedHistoryError


def decode_history(bodies: object, source: str) -> list[HistoryEvent]:
    """The typed events of a JSON list of events. Raises `MalformedHistoryError` naming
    `source` and the event, for any event outside the protocol's vocabulary."""
    if not isinstance(bodies, list):
        raise MalformedHistoryError(f"{source}: events must be a list, got "
                                    f"{type(bodies).__name__}")
    events: list[HistoryEvent] = []
    for index, body in enumerate(bodies):
        name = body.get("event_id", f"#{index}") if isinstance(body, Mapping) else f"#{index}"
        try:
            events.append(event_from_json(body))
        except msgspec.ValidationError as error:  # the one error event_from_json raises
            event_type = body.get("event_type") if isinstance(body, Mapping) else None
            raise MalformedHistoryError(
                f"{source}: event {name} ({event_type!r}) is malformed: {error!r}") from error
    return events


def command_json(command: WorkflowCommand) -> dict[str, JsonValue]:
    """One workflow command as the worker API's JSON: the protocol struct itself, tagged by
    `type`, every field written, payloads as their JSON value (`null`: none)."""
    body = msgspec.to_builtins(command, enc_hook=builtins_enc_hook)
    assert isinstance(body, dict), body
    return body


def commands_json(commands: Sequence[WorkflowCommand]) -> list[dict[str, JsonValue]]:
    return [command_json(c) for c in commands]
