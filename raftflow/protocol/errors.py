"""Error codes shared by the core, the gateway and the SDK.

The core never raises for an operating error: it returns `Rejected(code, message, field)`
(see `results.py`). Shells turn a code into an HTTP status with `http_status(code)` or raise a
`RaftflowError` carrying it. Codes are stable strings: clients match on them.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a command was refused. The value is the wire name."""

    INVALID_ARGUMENT = "invalid_argument"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    NOT_FOUND = "not_found"
    WORKFLOW_ALREADY_STARTED = "workflow_already_started"
    WORKFLOW_NOT_RUNNING = "workflow_not_running"
    STALE_TASK = "stale_task"
    # A task token no node of this cluster handed out, or one altered or expired.
    INVALID_TASK_TOKEN = "invalid_task_token"
    # The one rejection that changes state: the workflow task carried a close command while new
    # events arrived; the task is failed (WorkflowTaskFailed, cause UnhandledCommand) and a new
    # workflow task is scheduled, as Temporal does. The worker just polls again.
    UNHANDLED_COMMAND = "unhandled_command"
    LIMIT_EXCEEDED = "limit_exceeded"
    # A workflow query reached a worker and the worker's query handler raised.
    QUERY_FAILED = "query_failed"
    # A membership command the cluster map does not allow now (a drain that would leave too few
    # nodes for the replication factor, a remove of a node that still holds replicas).
    FAILED_PRECONDITION = "failed_precondition"
    NAMESPACE_NOT_FOUND = "namespace_not_found"
    NAMESPACE_ALREADY_EXISTS = "namespace_already_exists"
    # A search attribute is already registered in the namespace with another type.
    SEARCH_ATTRIBUTE_CONFLICT = "search_attribute_conflict"
    # No credentials, or ones no key of the node verifies (auth on: docs/security.md).
    UNAUTHENTICATED = "unauthenticated"
    # A caller without the role the call needs, or a join request whose proof was not made
    # with the cluster secret.
    PERMISSION_DENIED = "permission_denied"
    # A namespace's rate limit (starts and signals, or polls) is spent on this node for now:
    # retry after Retry-After (api/rate_limits.py).
    RATE_LIMITED = "rate_limited"
    # A schedule with this id exists in the namespace (create).
    SCHEDULE_ALREADY_EXISTS = "schedule_already_exists"
    OVERLOADED = "overloaded"
    NOT_LEADER = "not_leader"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.WORKFLOW_ALREADY_STARTED: 409,
    ErrorCode.WORKFLOW_NOT_RUNNING: 409,
    ErrorCode.STALE_TASK: 409,
    ErrorCode.INVALID_TASK_TOKEN: 400,
    ErrorCode.UNHANDLED_COMMAND: 409,
    ErrorCode.LIMIT_EXCEEDED: 400,
    ErrorCode.QUERY_FAILED: 400,
    ErrorCode.FAILED_PRECONDITION: 409,
    ErrorCode.NAMESPACE_NOT_FOUND: 404,
    ErrorCode.NAMESPACE_ALREADY_EXISTS: 409,
    ErrorCode.SEARCH_ATTRIBUTE_CONFLICT: 409,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.SCHEDULE_ALREADY_EXISTS: 409,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.NOT_LEADER: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.INTERNAL: 500,
}
assert set(_HTTP_STATUS) == set(ErrorCode), "every error code needs exactly one HTTP status"


def http_status(code: ErrorCode) -> int:
    """The one HTTP status a code maps to (h11-style status hint)."""
    return _HTTP_STATUS[code]


class RaftflowError(Exception):
    """Base of typed errors raised by shells; carries a stable `code` and its HTTP status."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    @property
    def http_status(self) -> int:
        return http_status(self.code)
