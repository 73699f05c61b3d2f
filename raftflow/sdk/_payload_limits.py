"""Payloads too large for the server, caught in the worker before they are sent.

Theory of operation. The server refuses a payload above PAYLOAD_BYTES_MAX with a 413. For a
workflow task completion or an activity answer that refusal would be a dead end: the worker
logs it, the task times out, and the same deterministic code produces the same payload on every
retry. So the worker checks what it is about to send, after the payload codec (the envelope is
what the server measures), and turns an oversized payload into a failure that names it: the
workflow fails (`CompleteWorkflowExecution`'s result, an activity's input, ...), or the
activity attempt fails non-retryably (its result). The failure's type is PAYLOAD_TOO_LARGE so
that callers and retry policies can match it.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from raftflow.protocol.commands import Failure, FailWorkflowExecution, WorkflowCommand
from raftflow.protocol.limits import PAYLOAD_BYTES_MAX
from raftflow.sdk._history_payloads import command_payloads, payload_data

PAYLOAD_TOO_LARGE = "PayloadTooLargeError"
# Payloads this close to the limit are measured as the server measures them (msgspec's compact
# re-encoding of the parsed value); smaller ones pass on their length alone, for free.
_EXACT_CHECK_BYTES = PAYLOAD_BYTES_MAX - 64 * 1024
_JSON = msgspec.json.Decoder()


def _server_size(data: bytes) -> int:
    if len(data) <= _EXACT_CHECK_BYTES:
        return len(data)
    try:
        return len(msgspec.json.encode(_JSON.decode(data)))
    except msgspec.DecodeError:
        return len(data)


def too_large(data: bytes, what: str) -> Failure | None:
    """A non-retryable failure naming `what` if `data` is above PAYLOAD_BYTES_MAX, else None."""
    size = _server_size(data)
    if size <= PAYLOAD_BYTES_MAX:
        return None
    return Failure(
        message=f"{what} is {size} bytes encoded, more than PAYLOAD_BYTES_MAX="
                f"{PAYLOAD_BYTES_MAX}: pass a reference to the data (a blob store key) instead",
        type=PAYLOAD_TOO_LARGE, non_retryable=True)


def checked_commands(commands: Sequence[WorkflowCommand]) -> list[WorkflowCommand]:
    """`commands` as given, or, if one carries a payload the server would refuse, a single
    FailWorkflowExecution naming it (the same code would produce it again on every retry)."""
    for command in commands:
        for payload in command_payloads(command):
            failure = too_large(payload_data(command, payload), payload.what)
            if failure is not None:
                return [FailWorkflowExecution(failure=failure)]
    return list(commands)
