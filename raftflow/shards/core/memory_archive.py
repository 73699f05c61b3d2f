"""`MemoryArchive`: the reference archive, plain dicts and heaps (see archive.py).

It is what a pure `ShardState` starts with: the core's unit and property tests run on it, and
the store-backed archive must match it row for row. Rows are deleted only by `expire`, in due
order, so each due index is a heap that pops exactly the rows `expire` deletes (no stale
entries to skip).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

import msgspec

from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.results import Result
from raftflow.shards.core.archive import (
    ArchivedRun,
    ClosedRunHead,
    RememberedRequest,
    SpilledChunk,
    canonical_latest,
    canonical_request,
    canonical_run,
    canonical_spilled,
)
from raftflow.shards.core.runs import Execution, RequestKey, WorkflowKey


class MemoryArchive:
    """An `Archive` in memory (the reference implementation)."""

    __slots__ = ("_latest", "_request_due", "_requests", "_run_due", "_runs", "_spilled")

    def __init__(self) -> None:
        self._runs: dict[str, ArchivedRun] = {}
        self._run_due: list[tuple[int, str]] = []
        self._latest: dict[WorkflowKey, str] = {}
        self._requests: dict[RequestKey, RememberedRequest] = {}
        self._request_due: list[tuple[int, RequestKey]] = []
        self._spilled: dict[str, list[SpilledChunk]] = {}  # open run id -> its chunks, in order

    # -- closed runs ---------------------------------------------------------------------------

    def put_closed(self, execution: Execution, delete_at_ms: int) -> None:
        run_id = execution.run_id
        assert not execution.is_open and run_id not in self._runs, run_id
        chunks = self._spilled.pop(run_id, [])
        assert sum(len(c.events) for c in chunks) == execution.spilled_events, run_id
        if chunks:  # kept whole, as a store reads it back
            execution = msgspec.structs.replace(
                execution, spilled_events=0,
                history=[e for c in chunks for e in c.events] + execution.history)
        self._runs[run_id] = ArchivedRun(delete_at_ms=delete_at_ms, execution=execution)
        heapq.heappush(self._run_due, (delete_at_ms, run_id))
        self._latest[execution.key] = run_id

    def closed_run(self, run_id: str) -> Execution | None:
        run = self._runs.get(run_id)
        return None if run is None else run.execution

    def closed_head(self, run_id: str) -> ClosedRunHead | None:
        run = self._runs.get(run_id)
        if run is None:
            return None
        execution = run.execution
        return ClosedRunHead(execution=msgspec.structs.replace(execution, history=[]),
                             history_length=len(execution.history),
                             close_event=execution.history[-1])

    def stored_events(self, run_id: str, first_event_id: int, limit: int) -> list[HistoryEvent]:
        assert first_event_id >= 1 and limit >= 0, (first_event_id, limit)
        run = self._runs.get(run_id)
        if run is not None:
            return run.execution.history[first_event_id - 1:first_event_id - 1 + limit]
        spilled = [e for c in self._spilled.get(run_id, []) for e in c.events]
        return spilled[first_event_id - 1:first_event_id - 1 + limit]

    def put_spilled(self, run_id: str, first_event_id: int, events: list[HistoryEvent]) -> None:
        chunks = self._spilled.setdefault(run_id, [])
        assert run_id not in self._runs and events, run_id
        assert first_event_id == 1 + sum(len(c.events) for c in chunks), (run_id, first_event_id)
        chunks.append(SpilledChunk(run_id=run_id, first_event_id=first_event_id, events=events))

    def has_run(self, run_id: str) -> bool:
        return run_id in self._runs

    def latest_closed(self, key: WorkflowKey) -> str | None:
        return self._latest.get(key)

    def closed_count(self) -> int:
        return len(self._runs)

    # -- request ids ---------------------------------------------------------------------------

    def recall(self, key: RequestKey) -> Result | None:
        request = self._requests.get(key)
        return None if request is None else request.result

    def remember(self, key: RequestKey, result: Result, expires_at_ms: int) -> None:
        assert key not in self._requests, key
        self._requests[key] = RememberedRequest(key=key, result=result,
                                                expires_at_ms=expires_at_ms)
        heapq.heappush(self._request_due, (expires_at_ms, key))

    # -- expiry --------------------------------------------------------------------------------

    def expire(self, now_ms: int, limit: int) -> int:
        assert limit >= 0, limit
        deleted = 0
        while deleted < limit and self._run_due and self._run_due[0][0] <= now_ms:
            _, run_id = heapq.heappop(self._run_due)
            execution = self._runs.pop(run_id).execution
            if self._latest.get(execution.key) == run_id:
                del self._latest[execution.key]
            deleted += 1
        while deleted < limit and self._request_due and self._request_due[0][0] <= now_ms:
            _, key = heapq.heappop(self._request_due)
            del self._requests[key]
            deleted += 1
        assert len(self._run_due) == len(self._runs)
        assert len(self._request_due) == len(self._requests)
        return deleted

    def next_expiry_ms(self) -> int | None:
        heads = [due[0][0] for due in (self._run_due, self._request_due) if due]
        return min(heads) if heads else None

    # -- whole contents ------------------------------------------------------------------------

    def canonical_rows(self) -> Iterator[bytes]:
        for run_id in sorted(self._runs):
            yield canonical_run(self._runs[run_id])
        for key in sorted(self._latest):
            yield canonical_latest(key, self._latest[key])
        for request_key in sorted(self._requests):
            yield canonical_request(self._requests[request_key])
        for chunk in self.spilled_contents():
            yield canonical_spilled(chunk)

    def spilled_contents(self) -> list[SpilledChunk]:
        return [chunk for run_id in sorted(self._spilled) for chunk in self._spilled[run_id]]

    def contents(self) -> tuple[list[ArchivedRun], list[tuple[WorkflowKey, str]],
                                list[RememberedRequest]]:
        """Every row in canonical order (a pure state's snapshot holds them)."""
        return ([self._runs[r] for r in sorted(self._runs)],
                sorted(self._latest.items()),
                [self._requests[k] for k in sorted(self._requests)])

    @staticmethod
    def of(runs: list[ArchivedRun], latest: list[tuple[WorkflowKey, str]],
           requests: list[RememberedRequest],
           spilled: list[SpilledChunk] | None = None) -> MemoryArchive:
        """The archive `contents` and `spilled_contents` described (a snapshot restore)."""
        archive = MemoryArchive()
        for chunk in spilled or []:
            archive.put_spilled(chunk.run_id, chunk.first_event_id, chunk.events)
        for run in runs:
            archive._runs[run.execution.run_id] = run
            archive._run_due.append((run.delete_at_ms, run.execution.run_id))
        heapq.heapify(archive._run_due)
        archive._latest = dict(latest)
        for request in requests:
            archive._requests[request.key] = request
            archive._request_due.append((request.expires_at_ms, request.key))
        heapq.heapify(archive._request_due)
        assert all(run_id in archive._runs for run_id in archive._latest.values())
        return archive
