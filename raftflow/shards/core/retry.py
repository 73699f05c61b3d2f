"""Activity retry decisions (Temporal's retry policy semantics).

The back-off before attempt n+1 is `initial * coefficient**(n-1)`, capped at the maximum interval
(default 100x initial). It is computed by repeated multiplication, never `pow`: IEEE-754
multiplication is exactly reproducible on every replica, libm's `pow` need not be (I2).
"""

from __future__ import annotations

from raftflow.protocol.commands import Failure, RetryPolicy
from raftflow.protocol.events import RetryState
from raftflow.shards.core.state import ActivityState

# Temporal's default cap: maximum interval is 100x the initial interval.
MAXIMUM_INTERVAL_FACTOR = 100


def maximum_interval_ms(policy: RetryPolicy) -> int:
    if policy.maximum_interval_ms is not None:
        return policy.maximum_interval_ms
    return policy.initial_interval_ms * MAXIMUM_INTERVAL_FACTOR


def backoff_ms(policy: RetryPolicy, failed_attempt: int) -> int:
    """Delay after attempt `failed_attempt` (1-based) failed, before the next one starts."""
    assert failed_attempt >= 1, failed_attempt
    assert policy.initial_interval_ms >= 1 and policy.backoff_coefficient >= 1.0, policy
    cap = maximum_interval_ms(policy)
    interval = float(policy.initial_interval_ms)
    for _ in range(failed_attempt - 1):
        if interval >= cap or policy.backoff_coefficient == 1.0:
            break
        interval *= policy.backoff_coefficient
    delay = int(min(interval, float(cap)))
    assert 1 <= delay <= max(cap, policy.initial_interval_ms), delay
    return delay


def next_retry_at_ms(activity: ActivityState, failure: Failure | None, now_ms: int) -> int | None:
    """When the next attempt should be scheduled, or None if this failure is final.

    Final when: the failure is non-retryable (flag or type listed in the policy), the attempts
    are used up, or the next attempt could not start before the schedule-to-close deadline.
    A `failure` of None stands for a retryable timeout (start-to-close or heartbeat).
    """
    policy = activity.retry_policy
    assert activity.attempt >= 1, activity.attempt
    if activity.cancel_requested_event_id:
        return None  # the workflow asked for cancellation: no further attempt
    if failure is not None and (failure.non_retryable
                                or failure.type in policy.non_retryable_error_types):
        return None
    if policy.maximum_attempts > 0 and activity.attempt >= policy.maximum_attempts:
        return None
    # The backoff runs from the failure, which cannot precede the attempt it ends; but leaders
    # change and the next one's clock may read seconds earlier than the clock that started the
    # attempt, so time is taken from whichever is later (else the retry would be due before
    # the attempt began, an impossible state every replica would stop at).
    retry_at_ms = max(now_ms, activity.started_time_ms) + backoff_ms(policy, activity.attempt)
    if activity.schedule_to_close_timeout_ms is not None:
        deadline_ms = activity.scheduled_time_ms + activity.schedule_to_close_timeout_ms
        if retry_at_ms >= deadline_ms:
            return None
    assert retry_at_ms > now_ms
    return retry_at_ms


def retry_state(activity: ActivityState, failure: Failure | None) -> RetryState:
    """Temporal's RetryState explaining why no further attempt happens."""
    policy = activity.retry_policy
    if activity.cancel_requested_event_id:
        return RetryState.CANCEL_REQUESTED
    if failure is not None and (failure.non_retryable
                                or failure.type in policy.non_retryable_error_types):
        return RetryState.NON_RETRYABLE_FAILURE
    if policy.maximum_attempts > 0 and activity.attempt >= policy.maximum_attempts:
        return RetryState.MAXIMUM_ATTEMPTS_REACHED
    return RetryState.TIMEOUT
