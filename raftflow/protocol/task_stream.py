"""The task stream: one long-lived WebSocket per worker and node, msgpack frames both ways.

Theory of operation. A worker of task queue Q in namespace N opens
`GET /api/v1/namespaces/N/task-queues/Q/stream` (WebSocket, subprotocol `STREAM_SUBPROTOCOL`) on
every node. Each binary message is one `Frame`: a list of messages, so whatever became ready in
one turn of either side's event loop travels in one write and is parsed once.

- Worker → node: `Grant(kind, count)` lets the node push `count` more tasks of `kind` (one slot
  of the worker's each: the node never pushes a task the worker has no slot for); `Call` is one
  task call (a completion, failure, heartbeat), the same path and JSON body as over HTTP, tagged
  with a sequence number.
- Node → worker: `PushedTask` is a task this node handed out (it leads the task's shard: the
  task's calls go back on this stream, with no forwarding hop); `Reply` answers one `Call` with
  the status, JSON body and Retry-After the HTTP route would give.

Bodies stay the HTTP API's JSON (`http_bodies`, `http_answers`), so a call is validated, routed
and answered by the same code whichever way it came, and the stream only removes the per-call
HTTP work (request line, headers, middlewares, a response per call) on both sides. A worker in
another language keeps the HTTP routes; the SDK uses the stream where a node offers it.

The opening request carries the worker's identity and sticky queue as query parameters
(`identity`, `sticky_queue`) and its credentials as any call does; the route's access rule is
the poll's (the work role in N) and each call's token is checked as over HTTP.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

import msgspec

from raftflow.protocol.commands import TaskKind

STREAM_SUBPROTOCOL = "raftflow.tasks.v1"
# Paths a `Call` may name: the task routes of the HTTP API that a task token addresses.
STREAM_CALL_PATHS = frozenset({
    "/api/v1/tasks/workflow/complete",
    "/api/v1/tasks/workflow/fail",
    "/api/v1/tasks/activity/complete",
    "/api/v1/tasks/activity/fail",
    "/api/v1/tasks/activity/canceled",
    "/api/v1/tasks/activity/heartbeat",
})
# One frame holds at most this many messages...
MESSAGES_PER_FRAME_MAX = 256
# ... and a writer ends a frame once its bodies reach this many bytes (a soft bound: the
# message that crosses it is the frame's last).
FRAME_FLUSH_BYTES = 1024 * 1024
# One call's body at most: an HTTP call's (the gateway's client_max_size); larger is a 413.
CALL_BODY_BYTES_MAX = 4 * 1024 * 1024
# A frame to a node is at most this big (a bigger one closes the stream, 1009): the flush
# bound plus one call at its largest, with room for the framing.
FRAME_TO_NODE_BYTES_MAX = 2 * (FRAME_FLUSH_BYTES + CALL_BODY_BYTES_MAX)
# A frame to a worker may carry a workflow task with a run's whole history, which is bounded
# in events (HISTORY_EVENTS_MAX), not bytes, as the HTTP poll's answer is; this bound only
# keeps a broken peer from exhausting the worker's memory.
FRAME_TO_WORKER_BYTES_MAX = 256 * 1024 * 1024
# Calls a node runs at once for one stream; one more is answered 429 with Retry-After, as an
# HTTP call beyond a node's limits would be. A worker sends at most one call per slot.
CALLS_IN_FLIGHT_MAX = 1024
# Tasks a node may owe one stream, per kind (grants not yet used); a grant beyond it closes the
# stream as a protocol error. The SDK grants at most one per slot (default 100 slots).
GRANTS_OUTSTANDING_MAX = 4096
SEQ_MAX = 2**63 - 1
IDENTITY_LENGTH_MAX = 1000  # as a poll's `identity`


class Grant(msgspec.Struct, frozen=True, tag="grant", array_like=True):
    """Worker → node: push up to `count` more tasks of `kind`: of the shards this node leads,
    or with `anywhere` of any shard (the node's poll then waits on every node, as an HTTP poll
    does: for a worker with fewer slots than there are nodes, which cannot grant every node)."""

    kind: TaskKind
    count: Annotated[int, msgspec.Meta(ge=1, le=GRANTS_OUTSTANDING_MAX)]
    anywhere: bool = False


class Call(msgspec.Struct, frozen=True, tag="call", array_like=True):
    """Worker → node: one task call, as `POST path` with `body` (JSON) would make it."""

    seq: Annotated[int, msgspec.Meta(ge=0, le=SEQ_MAX)]
    path: str
    body: bytes
    traceparent: str = ""


class PushedTask(msgspec.Struct, frozen=True, tag="task", array_like=True):
    """Node → worker: a task handed out on a grant of `kind` (the JSON a poll answers).
    `served_by`: the node that handed it out when not this one (an `anywhere` grant), where
    its calls go."""

    kind: TaskKind
    body: bytes
    served_by: str = ""


class Reply(msgspec.Struct, frozen=True, tag="reply", array_like=True):
    """Node → worker: the answer to `Call` `seq`, as the HTTP route would give it.
    `served_by`: the node whose shard leader answered (relayed answers name it)."""

    seq: int
    status: int
    body: bytes
    served_by: str = ""
    retry_after: str = ""


class Withdraw(msgspec.Struct, frozen=True, tag="withdraw", array_like=True):
    """Worker → node: push no more tasks (a worker shutting down); every grant lapses. The
    node answers `Withdrawn` once nothing more will come: tasks sent before it still arrive."""


class Withdrawn(msgspec.Struct, frozen=True, tag="withdrawn", array_like=True):
    """Node → worker: after a `Withdraw`, the last message about tasks; calls go on."""


ToNode = Grant | Call | Withdraw
ToWorker = PushedTask | Reply | Withdrawn


class FrameToNode(msgspec.Struct, frozen=True, array_like=True):
    messages: Annotated[list[ToNode], msgspec.Meta(max_length=MESSAGES_PER_FRAME_MAX)]


class FrameToWorker(msgspec.Struct, frozen=True, array_like=True):
    messages: Annotated[list[ToWorker], msgspec.Meta(max_length=MESSAGES_PER_FRAME_MAX)]


_TO_NODE = msgspec.msgpack.Decoder(FrameToNode)
_TO_WORKER = msgspec.msgpack.Decoder(FrameToWorker)
_ENCODER = msgspec.msgpack.Encoder()


def encode_frame(frame: FrameToNode | FrameToWorker) -> bytes:
    return _ENCODER.encode(frame)


def decode_to_node(data: bytes) -> FrameToNode:
    """Raises msgspec.ValidationError / DecodeError for a frame that is not a worker's."""
    return _TO_NODE.decode(data)


def decode_to_worker(data: bytes) -> FrameToWorker:
    return _TO_WORKER.decode(data)


Message = TypeVar("Message", ToNode, ToWorker)


def first_frame(queued: list[Message]) -> tuple[list[Message], list[Message]]:
    """The first frame's worth of `queued` (MESSAGES_PER_FRAME_MAX messages, or bodies up to
    FRAME_FLUSH_BYTES), and what is left for the next."""
    size = 0
    for count, message in enumerate(queued, start=1):
        if isinstance(message, Call | PushedTask | Reply):
            size += len(message.body)
        if size >= FRAME_FLUSH_BYTES or count == MESSAGES_PER_FRAME_MAX:
            return queued[:count], queued[count:]
    return queued, []
