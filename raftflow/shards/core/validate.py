"""Argument checks shared by handlers. Each returns a `Rejected` naming the field, or None.

Pure reads: no check mutates anything, so a handler can run all of them before its commit.
"""

from __future__ import annotations

from raftflow.protocol.commands import Failure, RetryPolicy
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import Ack, Rejected
from raftflow.shards.core import limits


def check_id(field: str, value: str) -> Rejected | None:
    if not value:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, message=f"{field} is required",
                        field=field)
    if len(value) > limits.ID_LENGTH_MAX:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT,
                        message=f"{field} longer than ID_LENGTH_MAX={limits.ID_LENGTH_MAX}",
                        field=field)
    return None


def check_optional_id(field: str, value: str) -> Rejected | None:
    """An id that may be left empty (not used), but is bounded when given."""
    return None if not value else check_id(field, value)


def check_ids(**values: str) -> Rejected | None:
    for field, value in values.items():
        rejected = check_id(field, value)
        if rejected is not None:
            return rejected
    return None


def check_payload(field: str, data: bytes) -> Rejected | None:
    if len(data) > limits.PAYLOAD_BYTES_MAX:
        return Rejected(code=ErrorCode.PAYLOAD_TOO_LARGE,
                        message=f"{field} is {len(data)} bytes, "
                                f"PAYLOAD_BYTES_MAX={limits.PAYLOAD_BYTES_MAX}",
                        field=field)
    return None


def check_failure(field: str, failure: Failure) -> Rejected | None:
    encoded_bytes = len(failure.message.encode()) + len(failure.type.encode())
    if encoded_bytes + len(failure.details) > limits.PAYLOAD_BYTES_MAX:
        return Rejected(code=ErrorCode.PAYLOAD_TOO_LARGE,
                        message=f"{field} exceeds PAYLOAD_BYTES_MAX={limits.PAYLOAD_BYTES_MAX}",
                        field=field)
    return None


def check_duration(field: str, value_ms: int | None, *, minimum_ms: int = 1) -> Rejected | None:
    """None is always accepted here (means "unset"); callers decide whether unset is legal."""
    if value_ms is None:
        return None
    if not minimum_ms <= value_ms <= limits.DURATION_MS_MAX:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT,
                        message=f"{field}={value_ms} outside "
                                f"[{minimum_ms}, DURATION_MS_MAX={limits.DURATION_MS_MAX}]",
                        field=field)
    return None


def check_retry_policy(field: str, policy: RetryPolicy) -> Rejected | None:
    rejected = check_duration(f"{field}.initial_interval_ms", policy.initial_interval_ms)
    rejected = rejected or check_duration(f"{field}.maximum_interval_ms",
                                          policy.maximum_interval_ms)
    if rejected is not None:
        return rejected
    if not 1.0 <= policy.backoff_coefficient <= 1000.0:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, message="backoff_coefficient must be "
                        "in [1, 1000]", field=f"{field}.backoff_coefficient")
    if policy.maximum_attempts < 0:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, message="maximum_attempts must be >= 0",
                        field=f"{field}.maximum_attempts")
    assert policy.initial_interval_ms >= 1
    maximum = policy.maximum_interval_ms
    if maximum is not None and maximum < policy.initial_interval_ms:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, message="maximum_interval_ms must be "
                        ">= initial_interval_ms", field=f"{field}.maximum_interval_ms")
    assert policy.backoff_coefficient >= 1.0
    return None


def invalid(field: str, message: str) -> Rejected:
    return Rejected(code=ErrorCode.INVALID_ARGUMENT, message=f"{field}: {message}", field=field)


def limit_exceeded(name: str, value: int) -> Rejected:
    return Rejected(code=ErrorCode.LIMIT_EXCEEDED, message=f"{name}={value} reached", field=name)


def stale(message: str) -> Rejected:
    return Rejected(code=ErrorCode.STALE_TASK, message=message)


def not_found(message: str) -> Rejected:
    return Rejected(code=ErrorCode.NOT_FOUND, message=message)


def not_running(message: str) -> Rejected:
    return Rejected(code=ErrorCode.WORKFLOW_NOT_RUNNING, message=message)


def history_room(history_length: int, buffered_count: int, new_events: int) -> Rejected | None:
    """Refuse a client- or worker-driven write that would push a history past its limit."""
    if history_length + buffered_count + new_events > limits.HISTORY_EVENTS_MAX:
        return limit_exceeded("HISTORY_EVENTS_MAX", limits.HISTORY_EVENTS_MAX)
    return None


def ack() -> Ack:
    return Ack()
