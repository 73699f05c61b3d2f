"""Record the golden histories of tests/data/histories/ from a real dev cluster.

Not a test: run by hand when the history format or a sample workflow changes, then review
the diff of the JSON files.

    .venv/bin/raftflow dev --nodes 3 --data-dir /tmp/golden --http-port 19300 &
    .venv/bin/python -m tests.sdk.record_histories --address http://127.0.0.1:19300

Method: each scenario starts a sample workflow over plain HTTP; a minimal worker built on
`WorkflowRunner` (sticky: it feeds each cached runner only new events) and the sample
activities runs it; scripted signals and cancels are sent over HTTP; once the run closes its
history is fetched with GET .../history and saved in the exact shape of that answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from raftflow.protocol.history_json import payload_from_json
from raftflow.protocol.payload import builtins_enc_hook
from raftflow.protocol.updates import WorkflowUpdateRequest
from raftflow.sdk import errors
from raftflow.sdk._activity_context import ActivityContext, ActivityInfo, bind
from raftflow.sdk._replay import WorkflowRunner
from raftflow.sdk._wire_json import commands_json, decode_history
from tests.sdk.sample_workflows import ACTIVITIES, WORKFLOWS

NAMESPACE = "default"
TASK_QUEUE = "golden"
OUT = Path(__file__).resolve().parents[1] / "data" / "histories"


class MiniWorker:
    def __init__(self, session: aiohttp.ClientSession, address: str) -> None:
        self.session = session
        self.address = address
        self.runners: dict[str, WorkflowRunner] = {}
        self.activity_tasks: set[asyncio.Task[None]] = set()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.session.post(self.address + path, json=body) as answer:
            payload = await answer.json() if answer.status not in (204,) else None
            return answer.status, payload

    async def workflow_loop(self) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/task-queues/{TASK_QUEUE}/workflow-tasks/poll"
        while True:
            status, task = await self.post(path, {"identity": "golden", "wait_ms": 1000})
            if status == 200 and "task_token" in task:
                await self.handle_workflow_task(task)

    async def handle_workflow_task(self, task: dict[str, Any]) -> None:
        run_id = task["run_id"]
        runner = self.runners.get(run_id)
        if runner is None:
            runner = WorkflowRunner(WORKFLOWS[task["workflow_type"]], namespace=NAMESPACE,
                                    workflow_id=task["workflow_id"], run_id=run_id,
                                    workflow_type=task["workflow_type"],
                                    task_queue=task["task_queue"])
            self.runners[run_id] = runner
        new_events = [e for e in decode_history(task["history"], "task")
                      if e.event_id > runner.last_event_id]
        updates = [WorkflowUpdateRequest(update_id=u["update_id"], name=u["name"],
                                         input=payload_from_json(u["input"]))
                   for u in task.get("updates", [])]
        try:
            commands = commands_json(runner.activate(new_events, updates))
            responses = msgspec.to_builtins(runner.take_update_responses(),
                                            enc_hook=builtins_enc_hook)
        except Exception as error:
            self.runners.pop(run_id, None)
            await self.post("/api/v1/tasks/workflow/fail", {
                "task_token": task["task_token"], "cause": "WorkflowWorkerUnhandledFailure",
                "failure": _failure_json(error)})
            return
        status, answer = await self.post("/api/v1/tasks/workflow/complete",
                                         {"task_token": task["task_token"],
                                          "commands": commands,
                                          "update_responses": responses})
        if status != 200:
            print("completion refused:", status, answer)
            self.runners.pop(run_id, None)

    async def activity_loop(self) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/task-queues/{TASK_QUEUE}/activity-tasks/poll"
        while True:
            status, task = await self.post(path, {"identity": "golden", "wait_ms": 1000})
            if status == 200:
                job = asyncio.create_task(self.run_activity(task))
                self.activity_tasks.add(job)
                job.add_done_callback(self.activity_tasks.discard)

    async def run_activity(self, task: dict[str, Any]) -> None:
        info = ActivityInfo(activity_id=task["activity_id"], activity_type=task["activity_type"],
                            attempt=task["attempt"], namespace=NAMESPACE,
                            workflow_id=task["workflow_id"], run_id=task["run_id"],
                            workflow_type=task["workflow_type"], task_queue=TASK_QUEUE,
                            task_token=task["task_token"])
        fn = ACTIVITIES[task["activity_type"]]
        try:
            with bind(ActivityContext(info=info, heartbeat=lambda details: None)):
                result = await fn(*(task["input"] or []))
        except Exception as error:
            await self.post("/api/v1/tasks/activity/fail", {
                "task_token": task["task_token"], "failure": _failure_json(error)})
            return
        await self.post("/api/v1/tasks/activity/complete",
                        {"task_token": task["task_token"], "result": result})


async def get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as answer:
        assert answer.status == 200, (url, answer.status, await answer.text())
        return await answer.json()


async def history(session: aiohttp.ClientSession, address: str, workflow_id: str,
                  run_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = ""
    while True:
        page = await get(session, f"{address}/api/v1/namespaces/{NAMESPACE}/workflows/"
                                  f"{workflow_id}/history?run_id={run_id}"
                                  f"&next_page_token={token}")
        events.extend(page["events"])
        token = page.get("next_page_token") or ""
        if not token:
            return events


async def wait_closed(session: aiohttp.ClientSession, address: str,
                      workflow_id: str) -> dict[str, Any]:
    for _ in range(300):
        described: dict[str, Any] = await get(
            session, f"{address}/api/v1/namespaces/{NAMESPACE}/workflows/{workflow_id}")
        if described["status"] not in ("RUNNING", "CONTINUED_AS_NEW"):
            return described
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} did not close")


Script = Callable[[MiniWorker, str], Awaitable[None]]


async def signals(worker: MiniWorker, workflow_id: str) -> None:
    path = f"/api/v1/namespaces/{NAMESPACE}/workflows/{workflow_id}/signal"
    for name, args in (("add", ["a"]), ("add", ["b"]), ("add", ["c"]), ("close", [])):
        await worker.post(path, {"signal_name": name, "input": args,
                                 "request_id": str(uuid.uuid4())})
        await asyncio.sleep(0.05)


async def cancel_later(worker: MiniWorker, workflow_id: str) -> None:
    await asyncio.sleep(1.0)
    await worker.post(f"/api/v1/namespaces/{NAMESPACE}/workflows/{workflow_id}/cancel",
                      {"reason": "golden", "request_id": str(uuid.uuid4())})


async def updates(worker: MiniWorker, workflow_id: str) -> None:
    """A deposit completed, one its validator rejects, one its handler fails, then close."""
    path = f"/api/v1/namespaces/{NAMESPACE}/workflows/{workflow_id}/updates"
    for name, args in (("deposit", [3]), ("deposit", [-1]), ("deposit", [5000]), ("close", [])):
        status, answer = await worker.post(path, {"name": name, "input": args,
                                                  "wait_for_stage": "completed"})
        assert status == 200 and answer["stage"] == "completed", (status, answer)


async def nothing(worker: MiniWorker, workflow_id: str) -> None:
    return None


async def reset_to_first_task(worker: MiniWorker, workflow_id: str) -> None:
    """One signal, a reset to the first workflow task (the signal is re-applied to the new
    run, the timer of wait_condition started again), then the rest of the signals."""
    path = f"/api/v1/namespaces/{NAMESPACE}/workflows/{workflow_id}"
    await worker.post(path + "/signal", {"signal_name": "add", "input": ["a"],
                                         "request_id": str(uuid.uuid4())})
    await asyncio.sleep(0.5)
    status, answer = await worker.post(path + "/reset", {
        "reset_type": "FirstWorkflowTask", "reason": "golden", "request_id": str(uuid.uuid4())})
    assert status == 201, answer
    for name, args in (("add", ["b"]), ("close", [])):
        await worker.post(path + "/signal", {"signal_name": name, "input": args,
                                             "request_id": str(uuid.uuid4())})
        await asyncio.sleep(0.05)


SCENARIOS: list[tuple[str, str, list[Any], Script]] = [
    ("order_retry", "Order", ["o-1"], nothing),
    ("gather_three", "FanOut", [3], nothing),
    ("activity_failure", "Failing", ["o-2"], nothing),
    ("signals", "Mailbox", [], signals),
    ("wait_condition_timeout", "Waiter", [], nothing),
    ("continue_as_new", "Counter", [0, 2], nothing),
    ("patched_v2", "PatchedOrder", ["o-3"], nothing),
    ("unpatched_v1", "UnpatchedOrder", ["o-4"], nothing),
    ("cancelled", "Cancellable", ["o-5"], cancel_later),
    ("activity_timeout", "Impatient", ["o-6"], nothing),
    ("reset", "Mailbox", [], reset_to_first_task),
    ("child_and_external", "Family", [], nothing),
    ("updates", "Ledger", [], updates),
]


async def record(address: str, only: list[str]) -> None:
    async with aiohttp.ClientSession() as session:
        worker = MiniWorker(session, address)
        loops = [asyncio.create_task(worker.workflow_loop()),
                 asyncio.create_task(worker.activity_loop())]
        for name, workflow_type, args, script in SCENARIOS:
            if only and name not in only:
                continue
            workflow_id = f"golden-{name}-{uuid.uuid4().hex[:8]}"
            status, started = await worker.post(f"/api/v1/namespaces/{NAMESPACE}/workflows", {
                "workflow_id": workflow_id, "workflow_type": workflow_type,
                "task_queue": TASK_QUEUE, "input": args})
            assert status == 201, started
            await script(worker, workflow_id)
            described = await wait_closed(session, address, workflow_id)
            run_ids = [started["run_id"]]
            while run_ids[-1] != described["run_id"]:  # follow continue-as-new
                events = await history(session, address, workflow_id, run_ids[-1])
                following = events[-1]["attributes"].get("new_execution_run_id")
                if not following:  # reset: record the run the reset made, alone
                    run_ids = [described["run_id"]]
                    break
                run_ids.append(following)
            for index, run_id in enumerate(run_ids):
                events = await history(session, address, workflow_id, run_id)
                suffix = "" if len(run_ids) == 1 else f"_run{index + 1}"
                document = {"workflow_type": workflow_type, "namespace": NAMESPACE,
                            "workflow_id": workflow_id, "run_id": run_id,
                            "task_queue": TASK_QUEUE, "events": events}
                path = OUT / f"{name}{suffix}.json"
                path.write_text(json.dumps(document, indent=1) + "\n")
                print(f"{path.name}: {len(events)} events, {described['status']}")
        for task in [*loops, *worker.activity_tasks]:
            task.cancel()
        await asyncio.gather(*loops, *worker.activity_tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="http://127.0.0.1:19300")
    parser.add_argument("--only", nargs="*", default=[],
                        help="record only these scenarios (default: all)")
    arguments = parser.parse_args()
    asyncio.run(record(arguments.address, arguments.only))


if __name__ == "__main__":
    main()


def _failure_json(error: BaseException) -> object:
    return msgspec.to_builtins(errors.failure_of(error), enc_hook=builtins_enc_hook)
