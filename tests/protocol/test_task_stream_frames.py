"""The task stream's frames (protocol/task_stream.py): what each side encodes the other decodes,
a frame that is not the other side's is refused, and writers split queued messages by the
frame bounds."""

from __future__ import annotations

import msgspec
import pytest

from raftflow.protocol.commands import TaskKind
from raftflow.protocol.task_stream import (
    FRAME_FLUSH_BYTES,
    MESSAGES_PER_FRAME_MAX,
    Call,
    FrameToNode,
    FrameToWorker,
    Grant,
    PushedTask,
    Reply,
    ToNode,
    Withdraw,
    Withdrawn,
    decode_to_node,
    decode_to_worker,
    encode_frame,
    first_frame,
)


def test_a_workers_frame_round_trips() -> None:
    frame = FrameToNode(messages=[Grant(kind=TaskKind.ACTIVITY, count=3),
                                  Call(seq=7, path="/api/v1/tasks/activity/complete",
                                       body=b'{"task_token":"t"}', traceparent="00-ab"),
                                  Withdraw()])
    assert decode_to_node(encode_frame(frame)) == frame


def test_a_nodes_frame_round_trips() -> None:
    frame = FrameToWorker(messages=[PushedTask(kind=TaskKind.WORKFLOW, body=b"{}"),
                                    Reply(seq=7, status=503, body=b"{}", served_by="",
                                          retry_after="1"),
                                    Withdrawn()])
    assert decode_to_worker(encode_frame(frame)) == frame


def test_a_nodes_frame_is_not_a_workers() -> None:
    """A node refuses a frame of node messages (a confused or hostile peer), naming the rule."""
    data = encode_frame(FrameToWorker(messages=[PushedTask(kind=TaskKind.WORKFLOW, body=b"")]))
    with pytest.raises(msgspec.ValidationError):
        decode_to_node(data)


@pytest.mark.parametrize("raw", [
    b"", b"\xc1", msgspec.msgpack.encode([[["grant", "workflow", 0]]]),
    msgspec.msgpack.encode([[["grant", "timer", 1]]]),
    msgspec.msgpack.encode([[["call", -1, "/p", b""]]]),
    msgspec.msgpack.encode([[["grant", "workflow", 1]] * (MESSAGES_PER_FRAME_MAX + 1)]),
])
def test_malformed_frames_are_refused(raw: bytes) -> None:
    with pytest.raises((msgspec.ValidationError, msgspec.DecodeError)):
        decode_to_node(raw)


def test_first_frame_stops_at_the_message_count() -> None:
    queued: list[ToNode] = [Grant(kind=TaskKind.WORKFLOW, count=1)] * (
        2 * MESSAGES_PER_FRAME_MAX + 5)
    sizes = []
    while queued:
        frame, queued = first_frame(queued)
        sizes.append(len(frame))
    assert sizes == [MESSAGES_PER_FRAME_MAX, MESSAGES_PER_FRAME_MAX, 5]


def test_first_frame_ends_with_the_message_that_crosses_the_byte_bound() -> None:
    big = Call(seq=1, path="/p", body=b"x" * (FRAME_FLUSH_BYTES // 2 + 1))
    small = Call(seq=2, path="/p", body=b"y")
    frame, rest = first_frame([small, big, big, small])
    assert frame == [small, big, big] and rest == [small]
    frame, rest = first_frame(rest)
    assert frame == [small] and rest == []
