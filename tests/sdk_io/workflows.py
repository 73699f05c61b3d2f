"""Workflows and activities the client/worker tests run on a real cluster."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from raftflow.sdk import ApplicationError, RetryPolicy, activity, workflow

FAST = timedelta(seconds=5)
QUICK_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)


@activity.defn
async def charge(order: str) -> str:
    """Fails its first attempt (after a heartbeat), so the server retries it."""
    info = activity.info()
    if info.attempt == 1:
        activity.heartbeat("half-way")
        raise ApplicationError("card declined, try again", type="Transient")
    return f"charged {order} (attempt {info.attempt}, saw {info.heartbeat_details})"


@activity.defn
def ship(order: str) -> str:
    """A sync activity: runs in the worker's thread pool."""
    assert threading.current_thread() is not threading.main_thread()
    return f"shipped {order} from {activity.info().activity_type}"


@activity.defn
async def refuse(order: str) -> str:
    raise ApplicationError(f"no stock for {order}", type="OutOfStock", non_retryable=True)


@workflow.defn
class Order:
    """charge (retried once) → ship → a 300 ms durable timer → both results."""

    @workflow.run
    async def run(self, order: str) -> dict[str, str]:
        charged = await workflow.execute_activity(charge, order, start_to_close_timeout=FAST,
                                                  retry_policy=QUICK_RETRY)
        shipped = await workflow.execute_activity(ship, order, start_to_close_timeout=FAST)
        await workflow.sleep(0.3)
        return {"charge": charged, "ship": shipped}


@workflow.defn
class Failing:
    """Fails itself with an ApplicationError once its activity failed for good."""

    @workflow.run
    async def run(self, order: str) -> None:
        try:
            await workflow.execute_activity(refuse, order, start_to_close_timeout=FAST)
        except Exception as error:
            raise ApplicationError(f"order {order} failed", type="OrderFailed",
                                   non_retryable=True) from error


@workflow.defn
class Mailbox:
    """Collects signals until "close"; answers the `items` query."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.closed = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.closed)
        return self.received

    @workflow.signal
    def add(self, item: str) -> None:
        self.received.append(item)

    @workflow.signal(name="close")
    def close_mailbox(self) -> None:
        self.closed = True

    @workflow.query
    def items(self) -> list[str]:
        return list(self.received)


@workflow.defn
class TwoSteps:
    """step one → a 1.5 s timer → step two: long enough to restart the worker in between."""

    @workflow.run
    async def run(self, name: str) -> list[str]:
        first = await workflow.execute_activity(ship, f"{name}-1", start_to_close_timeout=FAST)
        await workflow.sleep(1.5)
        second = await workflow.execute_activity(ship, f"{name}-2", start_to_close_timeout=FAST)
        return [first, second]


@workflow.defn
class Counter:
    """Continues as new until `n` reaches `limit`."""

    @workflow.run
    async def run(self, n: int, limit: int) -> int:
        if n < limit:
            workflow.continue_as_new(n + 1, limit)
        return n




# Activity ids of `patient` attempts that started / saw their cancellation. (History records
# ActivityTaskStarted only when the attempt ends, as Temporal does, so tests look here.)
STARTED_ACTIVITIES: list[str] = []
CANCELLED_ACTIVITIES: list[str] = []


@activity.defn
async def patient(order: str) -> str:
    """Heartbeats until cancelled (learned through a heartbeat answer)."""
    STARTED_ACTIVITIES.append(activity.info().activity_id)
    try:
        for beat in range(600):
            activity.heartbeat(beat)
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        CANCELLED_ACTIVITIES.append(activity.info().activity_id)
        raise
    return order


@workflow.defn
class Cancellable:
    """Waits on a heartbeating activity; a workflow cancel reaches it as a cancellation."""

    @workflow.run
    async def run(self, order: str) -> str:
        return str(await workflow.execute_activity(
            patient, order, start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=2)))


@workflow.defn(name="Flip")
class FlipV1:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(30)
        return "v1"


@workflow.defn(name="Flip")
class FlipV2:
    """Incompatible with FlipV1's history: an activity where v1 started a timer."""

    @workflow.run
    async def run(self) -> str:
        return str(await workflow.execute_activity(ship, "v2", start_to_close_timeout=FAST))


WORKFLOWS = [Order, Failing, Mailbox, TwoSteps, Counter, Cancellable]
ACTIVITIES = [charge, ship, refuse, patient]
