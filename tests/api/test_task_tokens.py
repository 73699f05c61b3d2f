"""Goal: a task token names exactly the attempt a node of this cluster handed out. Any other
string (forged with another secret, altered in any byte or field, truncated, expired, of the
other task kind, or random text) is refused with 400 `invalid_task_token` naming the field, and
the parser never fails any other way.

Method: tokens are made and checked by `TaskTokens` with a hand-set clock (a token's expiry
counts from its attempt's start, as the shard logged it); altered tokens keep
a valid-looking shape (base64url, msgpack) so only the signature can tell; hypothesis feeds
the checker arbitrary text.
"""

from __future__ import annotations

import base64

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftflow.api.errors import InvalidTaskTokenError
from raftflow.api.task_tokens import MAC_BYTES, TASK_TOKEN_GRACE_MS, TOKEN_BYTES_MAX, TaskTokens
from raftflow.protocol.commands import TaskKind, TaskToken
from raftflow.protocol.events import HistoryEvent, WorkflowTaskStartedEventAttributes
from raftflow.protocol.limits import WORKFLOW_TASK_TIMEOUT_MS_MAX
from raftflow.protocol.results import ActivityTaskInfo, WorkflowTaskInfo

NOW_MS = 1_700_000_000_000
TOKEN = TaskToken(namespace="shop", workflow_id="order-1", run_id="run-1", scheduled_event_id=5,
                  attempt=2, kind=TaskKind.WORKFLOW)
TASK = WorkflowTaskInfo(token=TOKEN, namespace="shop", workflow_id="order-1", run_id="run-1",
                        workflow_type="Order", task_queue="q", attempt=2, scheduled_event_id=5,
                        started_event_id=6, previous_started_event_id=0, history=(HistoryEvent(
                            event_id=6, time_ms=NOW_MS, attributes=WorkflowTaskStartedEventAttributes(
                                scheduled_event_id=5)),))
ACTIVITY = ActivityTaskInfo(
    token=TaskToken(namespace="shop", workflow_id="order-1", run_id="run-1",
                    scheduled_event_id=7, attempt=1, kind=TaskKind.ACTIVITY),
    namespace="shop", workflow_id="order-1", run_id="run-1", workflow_type="Order",
    activity_id="a1", activity_type="Charge", task_queue="q", input=b"{}", attempt=1,
    heartbeat_details=b"", scheduled_time_ms=NOW_MS, current_attempt_scheduled_time_ms=NOW_MS,
    started_time_ms=NOW_MS, schedule_to_close_timeout_ms=None, start_to_close_timeout_ms=60_000,
    heartbeat_timeout_ms=None)


class Clock:
    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


def _tokens(secret: str = "cluster-secret") -> tuple[TaskTokens, Clock]:
    clock = Clock()
    return TaskTokens(secret, clock), clock


def _refused(tokens: TaskTokens, text: str, kind: TaskKind = TaskKind.WORKFLOW) -> str:
    with pytest.raises(InvalidTaskTokenError) as caught:
        tokens.check(text, kind)
    error = caught.value
    assert (error.code.value, error.http_status, error.field) == (
        "invalid_task_token", 400, "task_token")
    return str(error)


def _split(text: str) -> tuple[list[object], bytes]:
    signed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return msgpack.unpackb(signed[:-MAC_BYTES]), signed[-MAC_BYTES:]


def _join(fields: list[object], mac: bytes) -> str:
    return base64.urlsafe_b64encode(msgpack.packb(fields) + mac).decode().rstrip("=")


def test_a_token_names_the_attempt_it_was_handed_out_for_on_any_node() -> None:
    issuer, _ = _tokens()
    checker, _ = _tokens()  # another node of the same cluster: same secret, same key
    assert checker.check(issuer.for_workflow_task(TASK), TaskKind.WORKFLOW) == TOKEN
    assert checker.check(issuer.for_activity_task(ACTIVITY), TaskKind.ACTIVITY) == ACTIVITY.token


def test_a_token_signed_with_another_secret_is_refused() -> None:
    forger, _ = _tokens("not-the-secret")
    checker, _ = _tokens()
    assert "not handed out by this cluster" in _refused(checker, forger.for_workflow_task(TASK))


@pytest.mark.parametrize("index, value", [(1, "other-namespace"), (2, "order-2"), (3, "run-2"),
                                          (4, 6), (5, 3), (7, "other-queue"), (8, 2**62)])
def test_a_token_with_any_field_altered_is_refused(index: int, value: object) -> None:
    """Namespace, workflow, run, event, attempt, task queue, expiry: each is signed."""
    tokens, _ = _tokens()
    fields, mac = _split(tokens.for_workflow_task(TASK))
    assert fields[index] != value
    fields[index] = value
    _refused(tokens, _join(fields, mac))


def test_a_token_with_any_byte_flipped_is_refused() -> None:
    tokens, _ = _tokens()
    signed = base64.urlsafe_b64decode(tokens.for_workflow_task(TASK) + "==")
    for at in range(len(signed)):
        flipped = bytearray(signed)
        flipped[at] ^= 0x01
        _refused(tokens, base64.urlsafe_b64encode(bytes(flipped)).decode().rstrip("="))


def test_a_token_past_its_expiry_is_refused_and_good_until_then() -> None:
    tokens, clock = _tokens()
    text = tokens.for_workflow_task(TASK)
    clock.now_ms += 3_600_000  # handed out again later (a retried start): the same token
    assert tokens.for_workflow_task(TASK) == text
    clock.now_ms = NOW_MS + WORKFLOW_TASK_TIMEOUT_MS_MAX + TASK_TOKEN_GRACE_MS
    assert tokens.check(text, TaskKind.WORKFLOW) == TOKEN
    clock.now_ms += 1
    assert "expired" in _refused(tokens, text)
    clock.now_ms = NOW_MS + 60_000 + TASK_TOKEN_GRACE_MS  # an activity's: its start-to-close
    activity = tokens.for_activity_task(ACTIVITY)
    assert tokens.check(activity, TaskKind.ACTIVITY) == ACTIVITY.token
    clock.now_ms += 1
    _refused(tokens, activity, TaskKind.ACTIVITY)


def test_a_token_of_a_later_format_is_refused_not_misread() -> None:
    """A node of a later release signs with the same key during a rolling upgrade."""
    tokens, _ = _tokens()
    fields, _ = _split(tokens.for_workflow_task(TASK))
    body = msgpack.packb([2, *fields[1:], "a field format 1 lacks"])
    later = base64.urlsafe_b64encode(body + tokens._mac(body)).decode().rstrip("=")  # noqa: SLF001
    assert "token format 2" in _refused(tokens, later)


def test_a_token_of_the_other_task_kind_is_refused() -> None:
    tokens, _ = _tokens()
    assert "not a activity task token" in _refused(tokens, tokens.for_workflow_task(TASK),
                                                   TaskKind.ACTIVITY)


@pytest.mark.parametrize("text", ["", "bm90LWEtdG9rZW4", "!!!", "a" * (TOKEN_BYTES_MAX + 1), "QQ"])
def test_text_that_is_no_token_is_refused(text: str) -> None:
    tokens, _ = _tokens()
    _refused(tokens, text)


@given(st.text(max_size=300) | st.binary(max_size=200).map(
    lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")))
def test_the_checker_refuses_arbitrary_text_only_with_invalid_task_token(text: str) -> None:
    tokens, _ = _tokens()
    _refused(tokens, text)
