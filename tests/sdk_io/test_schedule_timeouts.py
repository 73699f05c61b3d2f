"""Schedule-to-start and schedule-to-close activity timeouts, on a real 3-node cluster.

Goal: an activity scheduled on a task queue nobody polls is timed out by the server after its
schedule-to-start timeout, at once and for good (never retried, whatever the retry policy), and
the workflow sees ActivityError caused by a TimeoutError naming ScheduleToStart; an activity
retried under a generous policy is stopped by its schedule-to-close deadline, which bounds all
attempts together: the workflow sees ActivityError caused by a TimeoutError naming
ScheduleToClose (carrying the last attempt's failure) after several attempts, and the attempt
still running at the deadline is told to stop. An activity that always fails quickly also ends
by the deadline, with retry state Timeout: as in Temporal, a failure whose next retry could not
start before the deadline closes the activity at once (ActivityTaskFailed), so it ends either
that way or, if the deadline falls inside an attempt, as ScheduleToClose; both are asserted
consistent with the history.
Method: the public SDK (`Client`, `Worker`, `workflow.execute_activity`) against `raftflow node`
processes (conftest.py), a task queue per test; attempts are recorded by the activities
themselves (`activity.info().attempt`), the server's view is read back with `handle.history()`.
The timeout type names are the ones the server writes (raftflow/shards/core/on_timers.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from raftflow.cluster.launcher import LocalCluster
from raftflow.sdk import ActivityError, ApplicationError, RetryPolicy, activity, errors, workflow
from raftflow.sdk.client import Client, WorkflowExecutionStatus, WorkflowHandle
from raftflow.sdk.worker import Worker

RESULT_TIMEOUT_S = 15
SCHEDULE_TO_START = timedelta(seconds=1)
SCHEDULE_TO_CLOSE = timedelta(seconds=2)
ALWAYS_FAILING_SCHEDULE_TO_CLOSE = timedelta(milliseconds=1500)
# Many attempts, short constant back-off: only the deadline can end these activities.
MANY_ATTEMPTS = RetryPolicy(initial_interval=timedelta(milliseconds=100),
                            backoff_coefficient=1.0, maximum_attempts=100)
ALWAYS_FAILING_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200),
                                   backoff_coefficient=1.0, maximum_attempts=100)
FAILING_ATTEMPTS = 2  # `fails_then_hangs` fails this many attempts, then hangs

# Attempt numbers each activity saw (`activity.info().attempt`), by workflow id, and the
# workflow ids whose hanging attempt was stopped by the worker (cancelled).
ATTEMPTS: dict[str, list[int]] = {}
STOPPED: list[str] = []


@activity.defn
async def never_runs(label: str) -> str:
    """Registered nowhere: its task queue has no worker."""
    return label


@activity.defn
async def fails_then_hangs(label: str) -> str:
    """Fails its first attempts (retryable), then hangs, heartbeating, until told to stop."""
    info = activity.info()
    ATTEMPTS.setdefault(info.workflow_id, []).append(info.attempt)
    if info.attempt <= FAILING_ATTEMPTS:
        raise ApplicationError(f"{label}: transient failure", type="Transient")
    try:
        for beat in range(200):  # bounded: 10 s, far beyond the deadline
            activity.heartbeat(beat)
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        STOPPED.append(info.workflow_id)
        raise
    return label


@activity.defn
async def always_fails(label: str) -> str:
    info = activity.info()
    ATTEMPTS.setdefault(info.workflow_id, []).append(info.attempt)
    raise ApplicationError(f"{label}: transient failure", type="Transient")


POLICIES = {"fails_then_hangs": MANY_ATTEMPTS, "always_fails": ALWAYS_FAILING_RETRY}


def _describe(error: ActivityError) -> dict[str, Any]:
    """What the workflow learned from an ActivityError, as a JSON result."""
    cause = error.cause
    seen: dict[str, Any] = {"cause": type(cause).__name__, "retry_state": error.retry_state}
    if isinstance(cause, errors.TimeoutError):
        seen["timeout_type"] = cause.timeout_type
        seen["last_failure_type"] = None if cause.last_failure is None else cause.last_failure.type
    elif isinstance(cause, ApplicationError):
        seen["failure_type"] = cause.type
    return seen


@workflow.defn
class Unpolled:
    """Schedules `never_runs` on a task queue nobody polls; reports how it ended."""

    @workflow.run
    async def run(self, queue: str) -> dict[str, Any]:
        try:
            result = await workflow.execute_activity(
                never_runs, "x", task_queue=queue, schedule_to_start_timeout=SCHEDULE_TO_START,
                start_to_close_timeout=timedelta(seconds=5), retry_policy=MANY_ATTEMPTS)
        except ActivityError as error:
            return _describe(error)
        return {"completed": result}


@workflow.defn
class Deadline:
    """Runs one activity under its retry policy (POLICIES) with a schedule-to-close deadline."""

    @workflow.run
    async def run(self, activity_name: str, deadline_ms: int) -> dict[str, Any]:
        try:
            result = await workflow.execute_activity(
                activity_name, "y", schedule_to_close_timeout=timedelta(milliseconds=deadline_ms),
                retry_policy=POLICIES[activity_name])
        except ActivityError as error:
            return _describe(error)
        return {"completed": result}


def _run(cluster: LocalCluster, body: Callable[[Client, str], Awaitable[None]]) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with await Client.connect(addresses) as client:
            await body(client, f"st-{uuid.uuid4().hex[:8]}")

    asyncio.run(main())


def _worker(client: Client, queue: str) -> Worker:
    return Worker(client, task_queue=queue, workflows=[Unpolled, Deadline],
                  activities=[fails_then_hangs, always_fails])


async def _events(handle: WorkflowHandle) -> dict[str, list[dict[str, Any]]]:
    """The run's events as the API's JSON, grouped by type (each list in history order)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in (await handle.history()).to_json()["events"]:
        grouped.setdefault(event["event_type"], []).append(event)
    return grouped


def _seconds_between(first: dict[str, Any], second: dict[str, Any]) -> float:
    start = datetime.fromisoformat(first["timestamp"])
    return (datetime.fromisoformat(second["timestamp"]) - start).total_seconds()


def test_schedule_to_start_timeout_on_an_unpolled_queue_is_final(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        unpolled = f"{queue}-nobody-polls"
        async with _worker(client, queue):
            handle = await client.start_workflow(Unpolled.run, unpolled, id=f"{queue}-s2s",
                                                 task_queue=queue)
            began = time.monotonic()
            result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
            elapsed = time.monotonic() - began
        assert result == {"cause": "TimeoutError", "retry_state": "Timeout",
                          "timeout_type": "ScheduleToStart", "last_failure_type": None}
        assert elapsed >= SCHEDULE_TO_START.total_seconds() * 0.9, elapsed
        assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
        events = await _events(handle)
        [scheduled] = events["ActivityTaskScheduled"]
        assert scheduled["attributes"]["task_queue"] == unpolled
        assert scheduled["attributes"]["schedule_to_start_timeout_ms"] == 1000
        [timed_out] = events["ActivityTaskTimedOut"]
        attributes = timed_out["attributes"]
        assert attributes["timeout_type"] == "ScheduleToStart"
        assert attributes["scheduled_event_id"] == scheduled["event_id"]
        assert attributes["started_event_id"] == 0  # no attempt ever started
        assert attributes["retry_state"] == "Timeout"
        assert "ActivityTaskStarted" not in events  # not retried despite MANY_ATTEMPTS
        assert _seconds_between(scheduled, timed_out) >= SCHEDULE_TO_START.total_seconds()

    _run(cluster, body)


def test_schedule_to_close_timeout_bounds_all_attempts(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        workflow_id = f"{queue}-s2c"
        async with _worker(client, queue):
            handle = await client.start_workflow(
                Deadline.run, "fails_then_hangs", int(SCHEDULE_TO_CLOSE.total_seconds() * 1000),
                id=workflow_id, task_queue=queue)
            began = time.monotonic()
            result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
            elapsed = time.monotonic() - began
            for _ in range(100):  # the hanging attempt learns through a heartbeat (≤ 1 s)
                if workflow_id in STOPPED:
                    break
                await asyncio.sleep(0.05)
        assert result == {"cause": "TimeoutError", "retry_state": "Timeout",
                          "timeout_type": "ScheduleToClose", "last_failure_type": "Transient"}
        attempts = ATTEMPTS[workflow_id]
        assert attempts == list(range(1, FAILING_ATTEMPTS + 2)), attempts  # retried, then hung
        assert len(attempts) > 1
        assert workflow_id in STOPPED, "the attempt running at the deadline was not stopped"
        assert elapsed >= SCHEDULE_TO_CLOSE.total_seconds() * 0.9, elapsed
        events = await _events(handle)
        [scheduled] = events["ActivityTaskScheduled"]
        assert scheduled["attributes"]["schedule_to_close_timeout_ms"] == 2000
        [started] = events["ActivityTaskStarted"]  # written once, for the final attempt
        assert started["attributes"]["attempt"] == FAILING_ATTEMPTS + 1
        assert started["attributes"]["last_failure"]["type"] == "Transient"
        [timed_out] = events["ActivityTaskTimedOut"]
        attributes = timed_out["attributes"]
        assert attributes["timeout_type"] == "ScheduleToClose"
        assert attributes["scheduled_event_id"] == scheduled["event_id"]
        assert attributes["started_event_id"] == started["event_id"]
        assert attributes["retry_state"] == "Timeout"
        assert attributes["last_failure"]["type"] == "Transient"
        assert "ActivityTaskFailed" not in events  # retries write no history
        assert _seconds_between(scheduled, timed_out) >= SCHEDULE_TO_CLOSE.total_seconds()

    _run(cluster, body)


def test_always_failing_activity_ends_by_its_schedule_to_close_deadline(
        cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        workflow_id = f"{queue}-always"
        deadline_s = ALWAYS_FAILING_SCHEDULE_TO_CLOSE.total_seconds()
        async with _worker(client, queue):
            handle = await client.start_workflow(
                Deadline.run, "always_fails", int(deadline_s * 1000), id=workflow_id,
                task_queue=queue)
            result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
        attempts = ATTEMPTS[workflow_id]
        assert attempts == list(range(1, len(attempts) + 1)), attempts
        interval_s = ALWAYS_FAILING_RETRY.initial_interval.total_seconds()
        assert 1 < len(attempts) <= deadline_s / interval_s + 1, attempts
        assert result["retry_state"] == "Timeout", result
        events = await _events(handle)
        [scheduled] = events["ActivityTaskScheduled"]
        started = events.get("ActivityTaskStarted", [])  # the final attempt, if it started
        if result["cause"] == "ApplicationError":
            # The last failure's retry would have started at or after the deadline: closed at
            # once. (The failure may itself arrive just after the deadline, before the leader
            # fired the schedule-to-close timer: the first to commit decides, as in Temporal.)
            assert result["failure_type"] == "Transient", result
            [closed] = events["ActivityTaskFailed"]
            assert closed["attributes"]["retry_state"] == "Timeout"
            assert round(_seconds_between(scheduled, closed) + interval_s, 3) >= deadline_s
        else:
            # The deadline fell inside the last attempt (running, or waiting for a worker).
            assert result == {"cause": "TimeoutError", "retry_state": "Timeout",
                              "timeout_type": "ScheduleToClose",
                              "last_failure_type": "Transient"}, result
            [closed] = events["ActivityTaskTimedOut"]
            assert closed["attributes"]["timeout_type"] == "ScheduleToClose"
            assert _seconds_between(scheduled, closed) >= deadline_s
        assert "ActivityTaskFailed" not in events or "ActivityTaskTimedOut" not in events
        if started:
            [final] = started
            assert final["attributes"]["attempt"] == attempts[-1]
            assert closed["attributes"]["started_event_id"] == final["event_id"]
        else:  # timed out before a worker took the attempt after the last one that ran
            assert result["cause"] == "TimeoutError", result
            assert closed["attributes"]["started_event_id"] == 0

    _run(cluster, body)
