"""Retry policy of activities and workflows, as the protocol's `retry_policy` object
(docs/api.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from raftflow.protocol import commands as protocol
from raftflow.protocol.history_json import value_json


def duration_ms(value: timedelta | float) -> int:
    """Whole milliseconds of a duration given as a timedelta or seconds (at least 1)."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return max(1, round(seconds * 1000))


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How the server retries a failed activity attempt, or a failed or run-timed-out workflow
    run (a workflow's `retry_policy`, at start or for a child).

    The n-th retry waits `initial_interval * backoff_coefficient**(n-1)`, capped by
    `maximum_interval`; `maximum_attempts=0` means unlimited (bounded by the activity's
    schedule-to-close timeout). A failure whose type is in `non_retryable_error_types`, or an
    `ApplicationError(non_retryable=True)`, is not retried.
    """

    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta | None = None
    maximum_attempts: int = 0
    non_retryable_error_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.backoff_coefficient < 1.0:
            raise ValueError("backoff_coefficient must be >= 1")
        if self.maximum_attempts < 0:
            raise ValueError("maximum_attempts must be >= 0")
        if self.maximum_interval is not None and self.maximum_interval < self.initial_interval:
            raise ValueError("maximum_interval must be >= initial_interval")

    def to_protocol(self) -> protocol.RetryPolicy:
        """The policy as the protocol's struct (what a ScheduleActivityTask command carries)."""
        return protocol.RetryPolicy(
            initial_interval_ms=duration_ms(self.initial_interval),
            backoff_coefficient=self.backoff_coefficient,
            maximum_interval_ms=(None if self.maximum_interval is None
                                 else duration_ms(self.maximum_interval)),
            maximum_attempts=self.maximum_attempts,
            non_retryable_error_types=tuple(self.non_retryable_error_types))

    @staticmethod
    def from_protocol(policy: protocol.RetryPolicy) -> RetryPolicy:
        """Inverse of `to_protocol`."""
        return RetryPolicy(
            initial_interval=timedelta(milliseconds=policy.initial_interval_ms),
            backoff_coefficient=policy.backoff_coefficient,
            maximum_interval=(None if policy.maximum_interval_ms is None
                              else timedelta(milliseconds=policy.maximum_interval_ms)),
            maximum_attempts=policy.maximum_attempts,
            non_retryable_error_types=tuple(policy.non_retryable_error_types))

    def to_json(self) -> dict[str, object]:
        """The worker API's `retry_policy` object."""
        body = value_json(self.to_protocol())
        assert isinstance(body, dict), body
        return body

    @staticmethod
    def from_json(body: Mapping[str, object]) -> RetryPolicy:
        """Inverse of `to_json` (also reads the `retry_policy` map of ActivityTaskScheduled)."""
        initial = body.get("initial_interval_ms")
        maximum = body.get("maximum_interval_ms")
        coefficient = body.get("backoff_coefficient")
        attempts = body.get("maximum_attempts")
        types = body.get("non_retryable_error_types")
        return RetryPolicy(
            initial_interval=timedelta(milliseconds=int(initial) if isinstance(initial, int)
                                       else 1000),
            backoff_coefficient=float(coefficient) if isinstance(coefficient, int | float)
            else 2.0,
            maximum_interval=(timedelta(milliseconds=maximum) if isinstance(maximum, int)
                              else None),
            maximum_attempts=attempts if isinstance(attempts, int) else 0,
            non_retryable_error_types=tuple(str(t) for t in types)
            if isinstance(types, list) else ())
