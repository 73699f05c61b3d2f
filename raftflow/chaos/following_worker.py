"""The workload's worker, replaced whenever the cluster's members change.

An SDK `Worker` picks the nodes it polls once, when it starts (its client's addresses plus the
nodes the cluster status lists), and keeps its pollers on them. Membership faults remove nodes
for good, so after a few of them a worker started with the first members would poll nobody
and every workflow would stall. So on each membership change the harness starts a new worker
(which polls the current members) and only then shuts the old one down (its in-flight tasks
finish within the worker's grace period): there is no moment without a poller. A task handed to
the old worker by a poll it no longer reads times out on the server and is handed out again,
which the engine must survive anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from raftflow.sdk import Worker

log = logging.getLogger(__name__)

WORKERS_MAX = 64  # bound on workers kept (running or shutting down); a run changes members less


class FollowingWorker:
    def __init__(self, make: Callable[[], Worker]) -> None:
        self._make = make
        self._current: Worker | None = None
        self._made: list[Worker] = []  # every worker started (at most WORKERS_MAX)
        self._runs: list[asyncio.Task[None]] = []
        self._retiring: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start a worker on the current members; the one before (if any) is shut down once
        the new one runs."""
        assert len(self._runs) < WORKERS_MAX, "more membership changes than a run can have"
        previous = self._current
        self._current = self._make()
        self._made.append(self._current)
        self._runs.append(asyncio.ensure_future(self._current.run()))
        if previous is not None:
            self._retiring.append(asyncio.ensure_future(previous.shutdown()))

    async def shutdown(self) -> None:
        """Shut every worker down and wait for all of them (idempotent)."""
        if self._current is not None:
            self._retiring.append(asyncio.ensure_future(self._current.shutdown()))
            self._current = None
        outcomes = await asyncio.gather(*self._retiring, return_exceptions=True)
        for run in self._runs:
            run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._runs, return_exceptions=True)
        # How often the workers' activity completions carried the workflow task they made
        # (sdk/_folded_task.py), so that a run shows the fold was under its faults.
        sent = sum(w.folding.folds_sent for w in self._made)
        applied = sum(w.folding.folds_applied for w in self._made)
        log.info("workers sent %d activity completions with their workflow task; %d were "
                 "applied together", sent, applied)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise failures[0]
