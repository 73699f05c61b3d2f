"""Errors of the Python SDK, and how failures cross the wire.

Two families, kept apart as the house style asks:
- *Remote failures* (`FailureError` subclasses) are values that travel in history as failure maps
  `{"message", "type", "non_retryable", "details"}`: `ApplicationError` (raised by user code),
  `ActivityError` (an activity failed, timed out or was canceled; `cause` says which) and
  `TimeoutError`. Raising a `FailureError` out of workflow code fails the workflow.
- *Local errors*: misuse or a broken contract on this side (`NondeterminismError`,
  `WorkflowTaskError`, `QueryFailedError`, `MalformedHistoryError`, `MalformedTaskError`,
  `PayloadCodecError`) and client-side answers (`WorkflowFailureError`,
  `WorkflowUpdateFailedError`, `WorkflowAlreadyStartedError`, `RPCError` and its `MalformedAnswerError`).

`failure_parts(exc)` (what a failure says about an exception), `failure_of(exc)` (that as the
protocol's `Failure`) and `from_failure(failure)` are the one place a failure is built or read:
workflow code's failures, the worker's activity and task failures, a failed workflow's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from raftflow.protocol.commands import Failure
from raftflow.protocol.history_json import payload_from_json, payload_json
from raftflow.protocol.payload import EMPTY, Payload


class FailureError(Exception):
    """Base of failures that are recorded in history and can cross process boundaries."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def cause(self) -> BaseException | None:
        """The failure that caused this one (also `__cause__`)."""
        return self.__cause__


class ApplicationError(FailureError):
    """A failure raised on purpose by workflow or activity code.

    Args:
        message: human-readable text.
        *details: JSON-serializable values carried with the failure.
        type: a name for the failure kind, matched by `RetryPolicy.non_retryable_error_types`
            (defaults to the class name on the wire).
        non_retryable: in an activity, stops server-side retries at once.
    """

    def __init__(self, message: str, *details: object, type: str | None = None,
                 non_retryable: bool = False) -> None:
        super().__init__(message)
        self.details: tuple[object, ...] = details
        self.type = type
        self.non_retryable = non_retryable

    def __repr__(self) -> str:
        return (f"ApplicationError({self.message!r}, type={self.type!r}, "
                f"non_retryable={self.non_retryable})")


class TimeoutError(FailureError):  # noqa: A001 - Temporal's name; distinct from the builtin
    """An activity timed out (`timeout_type`: StartToClose, ScheduleToStart, ScheduleToClose or
    Heartbeat). `last_failure` is the failure of the last attempt, if it failed before."""

    def __init__(self, message: str, *, timeout_type: str,
                 last_failure: ApplicationError | None = None) -> None:
        super().__init__(message)
        self.timeout_type = timeout_type
        self.last_failure = last_failure


class ActivityError(FailureError):
    """An activity ended without a result; `cause` is an `ApplicationError` (it failed),
    a `TimeoutError` (it timed out) or `asyncio.CancelledError` (it was canceled)."""

    def __init__(self, message: str, *, cause: BaseException, activity_id: str,
                 activity_type: str, scheduled_event_id: int, retry_state: str = "") -> None:
        super().__init__(message)
        self.__cause__ = cause
        self.activity_id = activity_id
        self.activity_type = activity_type
        self.scheduled_event_id = scheduled_event_id
        self.retry_state = retry_state


class ChildWorkflowError(FailureError):
    """A child workflow ended without a result (Temporal's name); `cause` says how: an
    `ApplicationError` (it failed), `TimeoutError`, `asyncio.CancelledError` (canceled) or
    `TerminatedError`."""

    def __init__(self, message: str, *, cause: BaseException, workflow_id: str, run_id: str,
                 workflow_type: str) -> None:
        super().__init__(message)
        self.__cause__ = cause
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.workflow_type = workflow_type


class TerminatedError(FailureError):
    """The run was terminated (a child's cause in `ChildWorkflowError`)."""


class ContinueAsNewError(BaseException):
    """Raised by `workflow.continue_as_new`; a BaseException so `except Exception` in workflow
    code does not swallow it. The runner turns it into a ContinueAsNewWorkflowExecution."""

    def __init__(self, args: Sequence[object], *, workflow_type: str | None,
                 task_queue: str | None, run_timeout_ms: int | None,
                 task_timeout_ms: int | None) -> None:
        super().__init__("continue as new")
        self.input = list(args)
        self.workflow_type = workflow_type
        self.task_queue = task_queue
        self.run_timeout_ms = run_timeout_ms
        self.task_timeout_ms = task_timeout_ms


class WorkflowTaskError(Exception):
    """The current workflow task must fail (the server retries it): the workflow code hit a
    bug that is not a workflow failure, or misused the SDK. `__cause__` holds the original."""


class NondeterminismError(WorkflowTaskError):
    """Replayed workflow code asked for something other than what history recorded.

    Attributes:
        event_id: the history event where the divergence was found.
        expected: what history recorded there, e.g. "ActivityTaskScheduled(activity_id='1', ...)".
        produced: what the code produced instead, e.g. "StartTimer(timer_id='1', ...)".
    """

    def __init__(self, event_id: int, expected: str, produced: str) -> None:
        super().__init__(f"nondeterminism at event {event_id}: history recorded {expected}, "
                         f"the workflow code now produces {produced}")
        self.event_id = event_id
        self.expected = expected
        self.produced = produced


class MalformedHistoryError(ValueError):
    """A history (from the server, or a saved file) that is not in the protocol's event
    vocabulary: an unknown event type, a missing or mistyped field. Raised where the JSON is
    read, before any workflow code runs (in a task, the task is refused: `MalformedTaskError`)."""


class MalformedTaskError(ValueError):
    """A polled or eagerly started task that is not the API's task shape: a missing or
    mistyped field, or a malformed event in its history. Raised where the task's JSON is read
    (`_wire_tasks`), before any workflow or activity code runs.

    Attributes:
        task_token: the task's token if it could still be read (the worker then fails the
            task, so the server retries it without waiting for its timeout), else None.
        query_id: the same for a query task (the worker then answers the query with an error).
        attempt: the task's attempt if it could be read, else 1 (paces a failing task's retries).
    """

    def __init__(self, message: str, *, task_token: str | None, query_id: str | None,
                 attempt: int) -> None:
        super().__init__(message)
        self.task_token = task_token
        self.query_id = query_id
        self.attempt = attempt


class PayloadCodecError(ValueError):
    """A payload could not pass the client's payload codec (`converter.PayloadCodec`): an
    encoded payload (a `_raftflow_payload` envelope) reached a client or worker without a codec,
    an envelope is malformed, the codec failed or broke its contract (as many payloads back as
    given, `json/plain` after decoding), or refused the data (a wrong key, tampered data).
    Raised where the payload is encoded or decoded, before any user code sees it; in a worker
    it fails the task (the server retries it), so a run resumes once the codec can read it."""


class QueryFailedError(Exception):
    """A query could not be answered: unknown name, the handler raised, or no worker replied."""


class WorkflowFailureError(Exception):
    """Client side: the workflow closed without a result (failed, canceled, terminated, timed
    out). `cause` (also `__cause__`) is the decoded failure when there is one."""

    def __init__(self, message: str = "workflow execution failed", *,
                 cause: BaseException | None = None, status: str = "FAILED",
                 workflow_id: str = "", run_id: str = "") -> None:
        super().__init__(message)
        self.__cause__ = cause
        self.status = status
        self.workflow_id = workflow_id
        self.run_id = run_id

    @property
    def cause(self) -> BaseException | None:
        return self.__cause__


class WorkflowUpdateFailedError(Exception):
    """Client side: the workflow update was rejected by its validator or its handler failed;
    `cause` (also `__cause__`) is that failure, decoded."""

    def __init__(self, message: str = "workflow update failed", *,
                 cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException | None:
        return self.__cause__


class WorkflowAlreadyStartedError(Exception):
    """Client side: a run with this workflow id is open (or the reuse policy refuses)."""

    def __init__(self, workflow_id: str, message: str = "") -> None:
        super().__init__(message or f"workflow {workflow_id!r} already started")
        self.workflow_id = workflow_id


class RPCError(Exception):
    """Client side: the server answered with an error body `{"error": {"code", "message"}}`."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class MalformedAnswerError(RPCError):
    """Client side: a 2xx answer that is not the API's answer shape for its route (a missing
    or mistyped field, an unknown status), raised where the answer is read (`_wire_answers`).
    An `RPCError` (code `malformed_answer`): like a refusal, the call got no usable answer.

    Attributes:
        route: the call, e.g. `GET /api/v1/namespaces/default/workflows/order-1`.
        problem: what is wrong, with the field's path (`Expected str, got int - at $.run_id`).
    """

    def __init__(self, route: str, problem: str, status: int) -> None:
        super().__init__("malformed_answer", f"{route}: the answer is malformed: {problem}",
                         status)
        self.route = route
        self.problem = problem


@dataclass(frozen=True, slots=True)
class FailureParts:
    """What a failure says about an exception, before its details become a payload: each
    caller decides what details JSON cannot carry mean (see `failure_of`)."""

    message: str
    type: str
    non_retryable: bool
    details: list[object] | None  # an ApplicationError's details; None: none


def failure_parts(error: BaseException) -> FailureParts:
    """An exception as a failure: an `ApplicationError` gives its type (default
    "ApplicationError"), flag and details; any other exception is named by its class."""
    if isinstance(error, ApplicationError):
        return FailureParts(str(error), error.type or "ApplicationError", error.non_retryable,
                            list(error.details) if error.details else None)
    return FailureParts(str(error), type(error).__name__, False, None)


def failure_of(error: BaseException) -> Failure:
    """An exception as the protocol's `Failure` (what `/tasks/activity/fail` takes), its
    details the JSON text of their list. Details JSON cannot carry are left out and the message
    says so: the worker reports a failure while answering a task, and must still answer it."""
    parts = failure_parts(error)
    message, details = parts.message, parts.details
    try:
        details_payload = EMPTY if details is None else Payload(payload_from_json(details))
    except (TypeError, ValueError) as problem:  # ValueError: circular, or a lone surrogate
        details_payload = EMPTY
        message = f"{message} (details left out, not JSON-serializable: {problem})"
    return Failure(message=message, type=parts.type, non_retryable=parts.non_retryable,
                   details=details_payload)


def from_failure(failure: Failure | None) -> ApplicationError:
    """An `ApplicationError` carrying a failure's message, type, details and non-retryable
    flag (inverse of `failure_of` for application errors). `failure` is the protocol's
    `Failure`: a history event's, or a failed workflow's description's."""
    if failure is None:
        return ApplicationError("unknown failure")
    details = payload_json(failure.details)
    detail_values: tuple[object, ...]
    if details is None:
        detail_values = ()
    elif isinstance(details, list):
        detail_values = tuple(details)
    else:
        detail_values = (details,)
    return ApplicationError(failure.message, *detail_values, type=failure.type or None,
                            non_retryable=failure.non_retryable)
