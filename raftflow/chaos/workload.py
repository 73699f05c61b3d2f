"""The chaos workload's driver: clients that start workflows, signal them and wait for results,
recording exactly what the cluster acknowledged.

Each session loops: draw a plan, start the workflow (retrying with the *same* request id until
the cluster acknowledges, as a careful client does), send its signals (each sender sends its
next signal only after the previous one was acknowledged, retrying with the same request id),
then wait for the result. Only 2xx answers become acknowledgements; a failed attempt is an
error in the timeline and is retried. New workflows start only while the fault phase lasts;
what was started is driven to the end during the settle phase.

Plans and ids come from the run's seed. Timing, and so the order in which sessions interleave,
does not: the same seed gives the same plans and fault schedule, not the same run.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from raftflow.chaos.observations import ClientResult, SignalAck, StartAck, WorkflowPlan
from raftflow.chaos.timeline import Timeline
from raftflow.chaos.workload_defs import (
    SIGNAL_NAME,
    TASK_QUEUE,
    ChaosInbox,
    ChaosWorkflow,
    inbox_of,
)
from raftflow.sdk import Client, WorkflowHandle

log = logging.getLogger(__name__)
T = TypeVar("T")

SEQUENTIAL_MAX = 3
PARALLEL_MAX = 3
TIMER_MS_MAX = 2_000
SIGNALS_MAX = 3
SENDERS = ("alpha", "beta")
RETRY_PAUSE_S = 0.5  # between a failed call (after the SDK's own retries) and the next try
WORKFLOWS_MAX = 100_000  # a bound on what one run records
ERROR_SAMPLE_S = 0.5


@dataclass(slots=True)
class WorkloadRecord:
    starts: list[StartAck] = field(default_factory=list)
    signals: list[SignalAck] = field(default_factory=list)
    results: list[ClientResult] = field(default_factory=list)
    timeline: Timeline = field(default_factory=Timeline)
    last_errors: list[str] = field(default_factory=list)  # a few, for the log
    # Inbox workflows started (workflow id, run id): their runs are evidence too.
    inboxes: list[tuple[str, str]] = field(default_factory=list)


def draw_plan(rng: random.Random, workflow_id: str) -> WorkflowPlan:
    sequential = rng.randint(1, SEQUENTIAL_MAX)
    return WorkflowPlan(workflow_id=workflow_id, sequential=sequential,
                        parallel=rng.randint(0, PARALLEL_MAX),
                        timer_ms=rng.choice((0, rng.randint(100, TIMER_MS_MAX))),
                        signals=rng.randint(0, SIGNALS_MAX),
                        external_signals=rng.choice((0, 0, rng.randint(1, SIGNALS_MAX))))


class Workload:
    def __init__(self, client: Client, *, seed: int, t0_monotonic: float) -> None:
        self._client = client
        self._rng = random.Random(seed ^ 0x5EED)
        self._seed = seed
        self._t0 = t0_monotonic
        self._next = 0
        self.record = WorkloadRecord()
        self.accepting = True  # cleared when the fault phase ends: no new workflows

    def now_s(self) -> float:
        return time.monotonic() - self._t0

    async def count_errors(self) -> None:
        """Until cancelled: failed attempts of the SDK (client and worker; each is retried)
        become error marks on the timeline. The workload's own retries come on top."""
        transport = self._client.transport
        seen = transport.attempts_failed
        while True:
            await asyncio.sleep(ERROR_SAMPLE_S)
            failed = transport.attempts_failed
            self.record.timeline.errors_s.extend([self.now_s()] * (failed - seen))
            seen = failed

    async def session(self, deadline_s: float) -> None:
        """Run workflows one after another until the fault phase ends; finish the last one
        (or give up at `deadline_s`, seconds since the run began)."""
        while self.accepting and self._next < WORKFLOWS_MAX:
            index = self._next
            self._next += 1
            plan = draw_plan(self._rng, f"chaos-{self._seed}-{index}")
            await self._drive(plan, f"start-{self._seed}-{index}", deadline_s)

    async def _drive(self, plan: WorkflowPlan, request_id: str, deadline_s: float) -> None:
        run_id = await self._until_acked(deadline_s, lambda: self._start(plan, request_id))
        if run_id is None:
            return
        started_s = self.now_s()
        self.record.timeline.start_acks_s.append(started_s)
        self.record.starts.append(StartAck(plan=plan, run_id=run_id, request_id=request_id,
                                           acked_at_s=started_s))
        if plan.external_signals:
            inbox_run = await self._until_acked(deadline_s, lambda: self._start_inbox(plan))
            if inbox_run is None:
                return
            self.record.inboxes.append((inbox_of(plan.workflow_id), inbox_run))
        handle = self._client.get_workflow_handle(plan.workflow_id, run_id=run_id)
        for seq, sender in self._signal_order(plan):
            signal_request = f"signal-{plan.workflow_id}-{sender}-{seq}"
            acked = await self._until_acked(
                deadline_s, functools.partial(self._signal, handle, sender, seq, signal_request))
            if acked is None:
                return
            self.record.signals.append(SignalAck(
                workflow_id=plan.workflow_id, sender=sender, seq=seq,
                request_id=signal_request, acked_at_s=self.now_s()))
        result = await self._until_acked(deadline_s, lambda: self._result(handle))
        if result is not None:
            at_s = self.now_s()
            self.record.timeline.completions.append((at_s, at_s - started_s))
            self.record.results.append(ClientResult(workflow_id=plan.workflow_id, run_id=run_id,
                                                    result=result[0], at_s=at_s))

    def _signal_order(self, plan: WorkflowPlan) -> list[tuple[int, str]]:
        """Which sender sends each signal: seq counts per sender."""
        counts = dict.fromkeys(SENDERS, 0)
        order: list[tuple[int, str]] = []
        for i in range(plan.signals):
            sender = SENDERS[i % len(SENDERS)]
            order.append((counts[sender], sender))
            counts[sender] += 1
        return order

    async def _start(self, plan: WorkflowPlan, request_id: str) -> str:
        handle = await self._client.start_workflow(
            ChaosWorkflow.run, plan.to_json(), id=plan.workflow_id, task_queue=TASK_QUEUE,
            request_id=request_id, request_eager_start=True)
        assert handle.result_run_id is not None
        return handle.result_run_id

    async def _start_inbox(self, plan: WorkflowPlan) -> str:
        handle = await self._client.start_workflow(
            ChaosInbox.run, plan.external_signals, id=inbox_of(plan.workflow_id),
            task_queue=TASK_QUEUE, request_id=f"inbox-{plan.workflow_id}")
        assert handle.result_run_id is not None
        return handle.result_run_id

    async def _signal(self, handle: WorkflowHandle, sender: str, seq: int,
                      request_id: str) -> bool:
        await handle.signal(SIGNAL_NAME, sender, seq, request_id=request_id)
        return True

    async def _result(self, handle: WorkflowHandle) -> tuple[object]:
        # A tuple, so that a workflow whose result is None still counts as answered.
        return (await handle.result(),)

    async def _until_acked(self, deadline_s: float,
                           call: Callable[[], Awaitable[T]]) -> T | None:
        """Repeat `call()` until it returns; None if `deadline_s` passes first."""
        while self.now_s() < deadline_s:
            try:
                return await call()
            except Exception as error:  # noqa: BLE001 - every failure is retried and counted
                self.record.timeline.errors_s.append(self.now_s())
                if len(self.record.last_errors) < 20:
                    self.record.last_errors.append(f"{type(error).__name__}: {error}")
                await asyncio.sleep(RETRY_PAUSE_S)
        return None
