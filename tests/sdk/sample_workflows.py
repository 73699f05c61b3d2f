"""Workflows and activities used by the replay tests and by `record_histories.py`.

Each golden history in tests/data/histories/ was recorded from one of these classes running on
a real dev cluster; replaying it against the same class must reproduce it exactly.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from raftflow.sdk import ActivityError, ApplicationError, RetryPolicy, activity, errors, workflow

FAST = timedelta(seconds=5)
QUICK_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)


@activity.defn
async def charge(order: str) -> str:
    if activity.info().attempt == 1:
        raise ApplicationError("card declined, try again", type="Transient")
    return f"charged {order}"


@activity.defn
async def ship(order: str) -> str:
    return f"shipped {order}"


@activity.defn
async def square(n: int) -> int:
    return n * n


@activity.defn
async def refuse(order: str) -> str:
    raise ApplicationError(f"no stock for {order}", {"sku": order}, type="OutOfStock",
                           non_retryable=True)


@activity.defn
async def slow(order: str) -> str:
    await asyncio.sleep(30)
    return order


@workflow.defn
class Order:
    """charge (first attempt fails, the server retries) → ship → 300 ms timer → result."""

    @workflow.run
    async def run(self, order: str) -> dict[str, str]:
        charged = await workflow.execute_activity(charge, order, start_to_close_timeout=FAST,
                                                  retry_policy=QUICK_RETRY)
        shipped = await workflow.execute_activity(ship, order, start_to_close_timeout=FAST)
        await workflow.sleep(0.3)
        return {"charge": charged, "ship": shipped, "id": str(workflow.uuid4())}


@workflow.defn
class FanOut:
    """Three activities at once with asyncio.gather."""

    @workflow.run
    async def run(self, count: int) -> list[int]:
        return list(await asyncio.gather(*(
            workflow.execute_activity(square, n, start_to_close_timeout=FAST)
            for n in range(1, count + 1))))


@workflow.defn
class Failing:
    """A non-retryable activity failure reaches the code as ActivityError; the workflow
    reports its cause, then fails itself with an ApplicationError."""

    @workflow.run
    async def run(self, order: str) -> None:
        try:
            await workflow.execute_activity(refuse, order, start_to_close_timeout=FAST)
        except ActivityError as error:
            cause = error.cause
            assert isinstance(cause, ApplicationError)
            raise ApplicationError(f"order failed: {cause.message}", cause.type,
                                   type="OrderFailed", non_retryable=True) from error


@workflow.defn
class Mailbox:
    """Collects signals until "close"; waits up to 5 s for them; answers queries."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.closed = False

    @workflow.run
    async def run(self) -> list[str]:
        try:
            await workflow.wait_condition(lambda: self.closed, timeout=5)
        except TimeoutError:
            self.received.append("timeout")
        return self.received

    @workflow.signal
    def add(self, item: str) -> None:
        self.received.append(item)

    @workflow.signal(name="close")
    async def close_mailbox(self) -> None:
        self.closed = True

    @workflow.query
    def items(self) -> list[str]:
        return list(self.received)


@workflow.defn
class Waiter:
    """wait_condition that times out on a durable timer."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: self.go, timeout=timedelta(milliseconds=200))
        except TimeoutError:
            return "timed out"
        return "released"

    @workflow.signal
    def release(self) -> None:
        self.go = True


@workflow.defn
class Counter:
    """Continues as new until `n` reaches `limit`."""

    @workflow.run
    async def run(self, n: int, limit: int) -> int:
        await workflow.sleep(0.05)
        if n < limit:
            workflow.continue_as_new(n + 1, limit)
        return n


@workflow.defn
class PatchedOrder:
    """patched(): new runs take the new path and record a marker."""

    @workflow.run
    async def run(self, order: str) -> str:
        if workflow.patched("ship-first"):
            shipped = await workflow.execute_activity(ship, order, start_to_close_timeout=FAST)
            return f"v2 {shipped}"
        charged = await workflow.execute_activity(square, 3, start_to_close_timeout=FAST)
        return f"v1 {charged}"


@workflow.defn
class UnpatchedOrder:
    """The old version of PatchedOrder (no patched() call); records the v1 history."""

    @workflow.run
    async def run(self, order: str) -> str:
        charged = await workflow.execute_activity(square, 3, start_to_close_timeout=FAST)
        return f"v1 {charged}"


@workflow.defn
class Cancellable:
    """Waits on a slow activity and a long timer; on cancel, runs a cleanup activity and
    lets the cancellation propagate."""

    @workflow.run
    async def run(self, order: str) -> str:
        try:
            await asyncio.gather(
                workflow.execute_activity(slow, order, start_to_close_timeout=FAST * 12),
                workflow.sleep(3600))
        except asyncio.CancelledError:
            await workflow.execute_activity(ship, "cleanup", start_to_close_timeout=FAST)
            raise
        return "not cancelled"


@workflow.defn
class Impatient:
    """An activity that outlives its start-to-close timeout, with no retry left."""

    @workflow.run
    async def run(self, order: str) -> str:
        try:
            await workflow.execute_activity(
                slow, order, start_to_close_timeout=timedelta(milliseconds=500),
                retry_policy=RetryPolicy(maximum_attempts=1))
        except ActivityError as error:
            assert isinstance(error.cause, errors.TimeoutError)
            return f"timed out: {error.cause.timeout_type}"
        return "finished"


@workflow.defn
class Family:
    """A child Mailbox signalled through its handle, then a cancel request to nobody: the
    child-workflow and external-message events of one history."""

    @workflow.run
    async def run(self) -> list[object]:
        me = workflow.info().workflow_id
        box = await workflow.start_child_workflow(Mailbox.run, id=f"{me}-box")
        await box.signal(Mailbox.add, "x")
        await box.signal("close")
        items = await box
        try:
            await workflow.get_external_workflow_handle(f"{me}-nobody").cancel()
            cancel: object = "requested"
        except ApplicationError as error:
            cancel = error.type
        return [items, cancel]


@workflow.defn
class Ledger:
    """Applies updates until "close": deposit (validated; squares the amount in an activity,
    so it is accepted and completed in different tasks) and close."""

    def __init__(self) -> None:
        self.balance = 0
        self.closed = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.closed)
        return self.balance

    @workflow.update
    async def deposit(self, amount: int) -> int:
        if amount > 1000:
            raise ApplicationError("over the limit", type="Limit", non_retryable=True)
        self.balance += await workflow.execute_activity(square, amount,
                                                        start_to_close_timeout=FAST)
        return self.balance

    @deposit.validator
    def check_deposit(self, amount: int) -> None:
        if amount <= 0:
            raise ValueError("amount must be positive")

    @workflow.update(name="close")
    def close_ledger(self) -> int:
        self.closed = True
        return self.balance


WORKFLOWS: dict[str, type] = {cls.__name__: cls for cls in (
    Order, FanOut, Failing, Mailbox, Waiter, Counter, PatchedOrder, UnpatchedOrder, Cancellable,
    Impatient, Family, Ledger)}
ACTIVITIES = {fn.__name__: fn for fn in (charge, ship, square, refuse, slow)}
