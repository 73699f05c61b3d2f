"""A sample order workflow for raftflow: three activities, a signal and a query.

Run the worker against the local cluster that `make run` starts (it starts this worker too):

    .venv/bin/python examples/order_app.py worker

and, in another terminal, place an order and watch it:

    .venv/bin/python examples/order_app.py order order-42

The workflow charges the card (an activity that fails on its first attempt, so you see the
server retry it), waits for an `approve` signal (the `order` command sends it), reserves stock
(a plain synchronous function, run in a thread), ships, and answers a `status` query at any time.

Against a cluster with auth on (docs/security.md), set RAFTFLOW_TOKEN to a key whose roles
include `worker:default` (the worker) or `writer:default` (placing orders).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import timedelta
from typing import Any

from raftflow.sdk import ApplicationError, Client, RetryPolicy, Worker, activity, workflow

TASK_QUEUE = "orders"
ADDRESSES = ["http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8082"]


@activity.defn
async def charge_card(order: dict[str, Any]) -> str:
    if activity.info().attempt == 1:
        raise ApplicationError("card network timed out, retrying", type="Transient")
    return f"receipt-{order['id']}"


@activity.defn
def reserve_stock(order: dict[str, Any]) -> list[str]:
    return [f"{item}@shelf-{i}" for i, item in enumerate(order["items"])]


@activity.defn
async def ship(order: dict[str, Any], places: list[str]) -> str:
    return f"parcel for {order['id']} with {len(places)} items"


@workflow.defn
class OrderWorkflow:
    def __init__(self) -> None:
        self.stage = "new"
        self.approved = False

    @workflow.run
    async def run(self, order: dict[str, Any]) -> dict[str, Any]:
        quick = timedelta(seconds=10)
        self.stage = "charging"
        receipt = await workflow.execute_activity(
            charge_card, order, start_to_close_timeout=quick,
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200)))
        self.stage = "waiting for approval"
        await workflow.wait_condition(lambda: self.approved)
        self.stage = "reserving"
        places = await workflow.execute_activity(reserve_stock, order, start_to_close_timeout=quick)
        self.stage = "shipping"
        parcel = await workflow.execute_activity(ship, order, places, start_to_close_timeout=quick)
        self.stage = "done"
        return {"receipt": receipt, "parcel": parcel}

    @workflow.signal
    def approve(self) -> None:
        self.approved = True

    @workflow.query
    def status(self) -> str:
        return self.stage


async def run_worker(addresses: list[str]) -> None:
    async with await Client.connect(addresses, api_key=os.environ.get("RAFTFLOW_TOKEN")) as client:
        worker = Worker(client, task_queue=TASK_QUEUE, workflows=[OrderWorkflow],
                        activities=[charge_card, reserve_stock, ship])
        print(f"sample worker polling task queue {TASK_QUEUE!r} on {', '.join(addresses)}",
              flush=True)
        await worker.run()


async def place_order(addresses: list[str], order_id: str) -> None:
    async with await Client.connect(addresses, api_key=os.environ.get("RAFTFLOW_TOKEN")) as client:
        order = {"id": order_id, "items": ["book", "lamp"]}
        handle = await client.start_workflow(OrderWorkflow.run, order, id=order_id,
                                             task_queue=TASK_QUEUE)
        print(f"started {order_id} (run {handle.result_run_id})")
        await asyncio.sleep(1)
        print("status:", await handle.query(OrderWorkflow.status))
        await handle.signal(OrderWorkflow.approve)
        print("approved; result:", await handle.result())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", action="append", help="node URL (repeatable)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run the sample worker")
    order = commands.add_parser("order", help="place an order and follow it")
    order.add_argument("order_id")
    args = parser.parse_args()
    from_env = [a for a in os.environ.get("RAFTFLOW_ADDRESSES", "").split(",") if a]
    addresses = args.address or from_env or ADDRESSES
    try:
        if args.command == "worker":
            asyncio.run(run_worker(addresses))
        else:
            asyncio.run(place_order(addresses, args.order_id))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
