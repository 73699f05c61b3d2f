"""Task tokens: the opaque string a poll hands a worker to name the task attempt it completes,
signed so that nobody without the cluster secret can forge one or alter one.

Theory of operation. A token is base64url (unpadded) of the msgpack array
`[TOKEN_FORMAT, namespace, workflow_id, run_id, scheduled_event_id, attempt, kind, task_queue,
expires_at_ms]` followed by the first `MAC_BYTES` of its HMAC-SHA256. The key is derived from
the cluster secret with a label of its own (so it is not the Raft handshake's key, and a new
secret retires every token); every node derives the same key, so a token one node handed out is
good on any other, where completions are forwarded to the shard's leader.

A completion's token is checked before anything is proposed: one that does not verify (forged,
altered: another namespace or attempt, truncated, from another cluster) or has expired is
400 `invalid_task_token` and changes nothing. A verified token of an attempt that is no longer
current is still refused by the core (409 `stale_task`, DESIGN §4 I3).

Expiry: the attempt's own bound (the activity's start-to-close timeout, the longest workflow
task timeout) after the attempt started, as the shard logged it, plus TASK_TOKEN_GRACE_MS for
the clocks of the leader that started it and the node that checks it. So a token is a function
of its attempt alone: a retried start or hand-out answers the same token as the first answer.
A token that outlives its attempt changes nothing anyway; the expiry keeps a leaked token from
naming a task for ever.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable

import msgpack

from raftflow.api.errors import InvalidTaskTokenError
from raftflow.protocol.commands import TaskKind, TaskToken
from raftflow.protocol.limits import WORKFLOW_TASK_TIMEOUT_MS_MAX
from raftflow.protocol.results import ActivityTaskInfo, WorkflowTaskInfo

TOKEN_FORMAT = 1
# Longest token text accepted (a real one is ~150 characters): longer is refused unread.
TOKEN_BYTES_MAX = 8 * 1024
# 128 bits of HMAC-SHA256: forging one takes ~2^128 tries against a live node.
MAC_BYTES = 16
# How far apart the clocks of two nodes may be (the issuer's ahead of the checker's shortens
# a token's life by that much); the chaos harness skews a node by seconds.
TASK_TOKEN_GRACE_MS = 3_600_000
_KEY_LABEL = b"raftflow task token key v1"

assert MAC_BYTES >= 16


class TaskTokens:
    """Signs the tokens this node hands out and checks the ones workers send back."""

    __slots__ = ("_keyed", "_now_ms")

    def __init__(self, cluster_secret: str, now_ms: Callable[[], int]) -> None:
        """`now_ms`: the checking node's clock, for expiry."""
        assert cluster_secret, "a cluster has a secret"
        key = hmac.new(cluster_secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
        # Keyed once; each MAC copies it (1.7 µs against 3.3 for a new HMAC: a token is made
        # and checked for every task, several per workflow).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self._now_ms = now_ms

    def for_workflow_task(self, task: WorkflowTaskInfo) -> str:
        started = task.history[-1]  # the history a task carries ends with its Started event
        assert started.event_id == task.started_event_id, (started.event_id, task.started_event_id)
        return self._encode(task.token, task.task_queue,
                            started.time_ms + WORKFLOW_TASK_TIMEOUT_MS_MAX)

    def for_activity_task(self, task: ActivityTaskInfo) -> str:
        return self._encode(task.token, task.task_queue,
                            task.started_time_ms + task.start_to_close_timeout_ms)

    def _encode(self, token: TaskToken, task_queue: str, attempt_ends_ms: int) -> str:
        expires_at_ms = attempt_ends_ms + TASK_TOKEN_GRACE_MS
        body = msgpack.packb([TOKEN_FORMAT, token.namespace, token.workflow_id, token.run_id,
                              token.scheduled_event_id, token.attempt, token.kind.value,
                              task_queue, expires_at_ms])
        text = base64.urlsafe_b64encode(body + self._mac(body)).decode().rstrip("=")
        assert len(text) <= TOKEN_BYTES_MAX, len(text)
        return text

    def _mac(self, body: bytes) -> bytes:
        keyed = self._keyed.copy()
        keyed.update(body)
        return keyed.digest()[:MAC_BYTES]

    def check(self, text: str, kind: TaskKind, field: str = "task_token") -> TaskToken:
        """The task attempt a token names, if this cluster handed it out for a `kind` task
        and it has not expired; else InvalidTaskTokenError (400)."""
        if not text or len(text) > TOKEN_BYTES_MAX:
            raise InvalidTaskTokenError(f"{field} must be a task token from a poll", field)
        try:
            signed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (ValueError, binascii.Error) as error:
            raise InvalidTaskTokenError(f"{field} is not a task token (not base64url)",
                                        field) from error
        body, mac = signed[:-MAC_BYTES], signed[-MAC_BYTES:]
        # Compared in constant time before the body is parsed: nothing unsigned is decoded.
        if len(signed) <= MAC_BYTES or not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidTaskTokenError(
                f"{field} was not handed out by this cluster, or was altered", field)
        fields = msgpack.unpackb(body)
        if fields[0] != TOKEN_FORMAT:  # signed by a node of a later release, during an upgrade
            raise InvalidTaskTokenError(
                f"{field} is of token format {fields[0]}, which this node does not read", field)
        (_, namespace, workflow_id, run_id, scheduled_event_id, attempt, kind_value,
         _task_queue, expires_at_ms) = fields
        if expires_at_ms < self._now_ms():
            raise InvalidTaskTokenError(f"{field} has expired (its attempt is long over)", field)
        token = TaskToken(namespace=namespace, workflow_id=workflow_id, run_id=run_id,
                          scheduled_event_id=scheduled_event_id, attempt=attempt,
                          kind=TaskKind(kind_value))
        if token.kind is not kind:
            raise InvalidTaskTokenError(f"{field} is not a {kind.value} task token", field)
        return token
