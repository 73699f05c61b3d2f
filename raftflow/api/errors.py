"""Typed errors of the HTTP shell and their one JSON shape on the wire.

Every error a handler can answer with is a `RaftflowError` (defined in `raftflow.protocol.errors`
so that the actors and the SDK share one base): a stable `code` (an `ErrorCode`, a str), exactly
one `http_status`, a human `message` and optionally the request `field` at fault. The body is
always `{"error": {"code": ..., "message": ..., "field": ...}}` (DESIGN §5). Overload and
leader-change answers carry `Retry-After` so that clients back off instead of hammering
(DESIGN §4 I7).
"""

from __future__ import annotations

import json
import math
from typing import TypeVar

from aiohttp import web

from raftflow.actors.errors import NotLeaderError
from raftflow.protocol.errors import ErrorCode, RaftflowError, http_status
from raftflow.protocol.results import Rejected

__all__ = [
    "ConflictError",
    "DeadlineExceededError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidTaskTokenError",
    "LimitExceededError",
    "NotFoundError",
    "NotLeaderError",
    "OverloadedError",
    "PayloadTooLargeError",
    "RaftflowError",
    "RateLimitedError",
    "accepted",
    "error_body",
    "error_for_code",
    "error_response",
]

R = TypeVar("R")

RETRY_AFTER_S_DEFAULT = 1.0
_STATUSES_WITH_RETRY_AFTER = frozenset({429, 503})


class InvalidArgumentError(RaftflowError):
    """400: the request is malformed; `field` names the part at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(ErrorCode.INVALID_ARGUMENT, message, field)


class LimitExceededError(RaftflowError):
    """400: a documented limit (history length, pending activities...) would be exceeded."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(ErrorCode.LIMIT_EXCEEDED, message, field)


class PayloadTooLargeError(RaftflowError):
    """413: a body or a payload field is above its size limit."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(ErrorCode.PAYLOAD_TOO_LARGE, message, field)


class InvalidTaskTokenError(RaftflowError):
    """400: a task token this cluster did not hand out, or altered, or expired (task_tokens.py)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(ErrorCode.INVALID_TASK_TOKEN, message, field)


class NotFoundError(RaftflowError):
    """404: no such namespace, workflow, run or route."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(ErrorCode.NOT_FOUND, message, field)


class ConflictError(RaftflowError):
    """409: the request contradicts current state (already started, closed, stale task)."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        assert http_status(code) == 409, f"{code} is not a conflict"
        super().__init__(code, message, field)


class OverloadedError(RaftflowError):
    """503 + Retry-After: a mailbox, queue or poller limit is full; retrying later is safe."""

    def __init__(self, message: str, retry_after_s: float = RETRY_AFTER_S_DEFAULT) -> None:
        assert retry_after_s > 0
        super().__init__(ErrorCode.OVERLOADED, message)
        self.retry_after_s = retry_after_s


class RateLimitedError(RaftflowError):
    """429 + Retry-After: the namespace's rate limit is spent on this node for now
    (rate_limits.py); the call changed nothing, and is safe to send again after the wait."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        assert retry_after_s > 0
        super().__init__(ErrorCode.RATE_LIMITED, message, "namespace")
        self.retry_after_s = retry_after_s


class DeadlineExceededError(RaftflowError):
    """504: the call's deadline passed first; the change may still be applied (idempotent retry)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.TIMEOUT, message)


class InternalError(RaftflowError):
    """500: a bug or an unexpected failure; details go to the log, not to the client."""

    def __init__(self, message: str = "internal error") -> None:
        super().__init__(ErrorCode.INTERNAL, message)


def error_for_code(code: ErrorCode, message: str, field: str | None = None) -> RaftflowError:
    """The typed error for a core `Rejected(code, message, field)`."""
    match code:
        case ErrorCode.INVALID_ARGUMENT:
            return InvalidArgumentError(message, field)
        case ErrorCode.LIMIT_EXCEEDED:
            return LimitExceededError(message, field)
        case ErrorCode.PAYLOAD_TOO_LARGE:
            return PayloadTooLargeError(message, field)
        case ErrorCode.NOT_FOUND:
            return NotFoundError(message, field)
        case ErrorCode.OVERLOADED:
            return OverloadedError(message)
        case ErrorCode.NOT_LEADER:
            return NotLeaderError(None, message)
        case ErrorCode.TIMEOUT:
            return DeadlineExceededError(message)
        case ErrorCode.INTERNAL:
            return InternalError(message)
        case _ if http_status(code) == 409:
            return ConflictError(code, message, field)
        case _:
            return RaftflowError(code, message, field)


def accepted(result: R | Rejected) -> R:
    """`result` unless the shard refused it: a `Rejected` becomes its typed error."""
    if isinstance(result, Rejected):
        raise error_for_code(result.code, result.message, result.field)
    return result


def error_body(err: RaftflowError) -> dict[str, dict[str, str | None]]:
    """The wire shape: `{"error": {"code", "message", "field"}}`."""
    return {"error": {"code": str(err.code), "message": err.message, "field": err.field}}


def error_response(err: RaftflowError) -> web.Response:
    """An aiohttp response for `err`, with Retry-After (whole seconds, rounded up) on 429/503."""
    status = err.http_status
    headers: dict[str, str] = {}
    if status in _STATUSES_WITH_RETRY_AFTER:
        retry_after_s = getattr(err, "retry_after_s", RETRY_AFTER_S_DEFAULT)
        assert isinstance(retry_after_s, int | float) and retry_after_s > 0
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    if status == 401:  # RFC 6750 §3: say which scheme would do
        headers["WWW-Authenticate"] = 'Bearer realm="raftflow"'
    return web.Response(status=status, headers=headers, text=json.dumps(error_body(err)),
                        content_type="application/json")
