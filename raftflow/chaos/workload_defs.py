"""The chaos workload's workflow and activity, written with the public SDK like any user's.

`ChaosWorkflow` runs its plan (see `observations.WorkflowPlan`): sequential activities, then
parallel ones, a durable timer, signals to its inbox (`ChaosInbox`, on another shard most of
the time: the outbox's path), then waits for its signals. Its result is everything the
checker needs to compare with the outside record: the activity tokens it received, in plan
order, and the signals in the order it received them.

The activity appends one line per successful execution to the `ExecutionLog`, a file outside
the cluster, and fsyncs it before returning its token, so every token a workflow can see has a
line, whatever crashes in between. Some attempts fail on purpose (chosen by a hash of the ids,
so replays and reruns agree) to make the server's retries part of every run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from raftflow.sdk import ApplicationError, RetryPolicy, activity, workflow

TASK_QUEUE = "chaos"
SIGNAL_NAME = "deliver"
# Short enough that a task lost with a node (started, never answered) is retried within a
# fault's recovery, long enough that a slow but live attempt is not timed out under load.
ACTIVITY_START_TO_CLOSE = timedelta(seconds=8)
ACTIVITY_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200),
                             backoff_coefficient=2.0, maximum_interval=timedelta(seconds=2))
FAIL_FIRST_ATTEMPT_ONE_IN = 5  # this share of activities fails its first attempt
INBOX_SUFFIX = "-inbox"
INBOX_RETRY = timedelta(milliseconds=500)  # before re-sending a signal the inbox refused


class ExecutionLog:
    """Append-only JSON lines, one per activity execution, fsynced before the activity returns.

    Shared by the worker's activity threads; the clock is the run's (seconds since `t0`)."""

    def __init__(self, path: Path, t0_monotonic: float) -> None:
        self.path = path
        self._t0 = t0_monotonic
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def append(self, workflow_id: str, activity_index: int, attempt: int) -> str:
        token = f"{workflow_id}/{activity_index}/{attempt}/{uuid.uuid4().hex[:12]}"
        line = json.dumps({"workflow_id": workflow_id, "activity_index": activity_index,
                           "attempt": attempt, "token": token,
                           "at_s": round(time.monotonic() - self._t0, 3)})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        return token

    def close(self) -> None:
        with self._lock:
            self._file.close()


_log: ExecutionLog | None = None


def install_log(log: ExecutionLog | None) -> None:
    """The log `chaos_step` writes to (one run at a time per process)."""
    global _log
    _log = log


def fails_first_attempt(workflow_id: str, activity_index: int) -> bool:
    digest = hashlib.blake2b(f"{workflow_id}/{activity_index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % FAIL_FIRST_ATTEMPT_ONE_IN == 0


@activity.defn(name="chaos_step")
def chaos_step(workflow_id: str, activity_index: int) -> str:
    """Record this execution and return its token (a thread activity: the fsync blocks)."""
    attempt = activity.info().attempt
    if attempt == 1 and fails_first_attempt(workflow_id, activity_index):
        raise ApplicationError("planned first-attempt failure", type="Planned")
    assert _log is not None, "install_log() before running the worker"
    return _log.append(workflow_id, activity_index, attempt)


def inbox_of(workflow_id: str) -> str:
    """The id of the workflow a plan's external signals go to (most often on another shard)."""
    return f"{workflow_id}{INBOX_SUFFIX}"


async def _signal_inbox(workflow_id: str, seq: int) -> None:
    """One external signal `[workflow_id, seq]` to the inbox, sent again (as a new message)
    after a failure: the driver starts the inbox just after this workflow, so it may not exist
    yet. A failed message had no effect, so the inbox still gets each seq once."""
    inbox = workflow.get_external_workflow_handle(inbox_of(workflow_id))
    while True:
        try:
            await inbox.signal(SIGNAL_NAME, args=[workflow_id, seq])
            return
        except ApplicationError:
            await workflow.sleep(INBOX_RETRY)


@workflow.defn(name="ChaosInbox")
class ChaosInbox:
    """Receives `expected` signals from its sender workflow; returns them in arrival order."""

    def __init__(self) -> None:
        self.received: list[list[Any]] = []

    @workflow.run
    async def run(self, expected: int) -> dict[str, Any]:
        await workflow.wait_condition(lambda: len(self.received) >= expected)
        return {"signals": self.received}

    @workflow.signal(name=SIGNAL_NAME)
    def deliver(self, sender: str, seq: int) -> None:
        self.received.append([sender, seq])


@workflow.defn(name="ChaosWorkflow")
class ChaosWorkflow:
    def __init__(self) -> None:
        self.received: list[list[Any]] = []

    @workflow.run
    async def run(self, plan: dict[str, int]) -> dict[str, Any]:
        workflow_id = workflow.info().workflow_id
        tokens: list[str] = []
        for index in range(plan["sequential"]):
            tokens.append(await self._step(workflow_id, index))
        parallel = range(plan["sequential"], plan["sequential"] + plan["parallel"])
        tokens.extend(await asyncio.gather(*(self._step(workflow_id, i) for i in parallel)))
        if plan["timer_ms"] > 0:
            await workflow.sleep(timedelta(milliseconds=plan["timer_ms"]))
        for seq in range(plan.get("external_signals", 0)):
            await _signal_inbox(workflow_id, seq)
        await workflow.wait_condition(lambda: len(self.received) >= plan["signals"])
        return {"activities": tokens, "signals": self.received}

    async def _step(self, workflow_id: str, index: int) -> str:
        result: str = await workflow.execute_activity(
            chaos_step, workflow_id, index, activity_id=str(index),
            start_to_close_timeout=ACTIVITY_START_TO_CLOSE, retry_policy=ACTIVITY_RETRY)
        return result

    @workflow.signal(name=SIGNAL_NAME)
    def deliver(self, sender: str, seq: int) -> None:
        self.received.append([sender, seq])
