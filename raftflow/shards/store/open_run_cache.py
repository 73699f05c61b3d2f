"""`OpenRunCache`: a store-backed replica's open runs, a bounded cache over their `open_runs` rows.

Theory of operation. The core reads and changes open runs through `ShardState.executions`, a
mapping from run id to `Execution` in opening order. A pure state keeps a dict of every run. A
store-backed replica keeps this instead:
- the ids of every open run, in opening order (membership, length and the order of walks: a
  run id costs ~100 bytes where its run costs kilobytes);
- at most `OPEN_RUNS_CACHED` runs decoded in memory, least recently used first out, plus every
  run the core touched since the last commit: a touched run may have changed, so it leaves
  only after the commit wrote its row (open_run_rows.py);
- every other run only as its row, read and decoded again on the next access.
What is cached decides cost, never an answer: a run read from its row equals the one evicted,
because it was not touched since the commit that wrote it.

Walks over every run (`items`, `values`: visibility over open runs, the digest, the invariants)
read each uncached row once and keep none, so a walk does not flush the cache. They merge one
ordered scan of the rows with the ids: the ids are the committed rows in `seq` order (less the
runs closed since), then the runs opened since the commit, which are all cached (open_run_rows.py
gives new rows increasing `seq`). A new leader's `pending_effects` needs only the runs with a
task to dispatch: the cache remembers which uncached runs may have one (all of them after a
restart; an evicted run is checked as it leaves, a row this walk reads as it is read), and
`dispatch_candidates` reads only those.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import ItemsView, Iterable, Iterator, MutableMapping, ValuesView
from itertools import islice

from raftflow.protocol.codec import decoder
from raftflow.shards.core.state import Execution, ShardState
from raftflow.shards.store import limits

_EXECUTION = decoder(Execution)


class OpenRunCache(MutableMapping[str, Execution]):
    """Every open run of one store-backed replica; see the module docstring."""

    def __init__(self, db: sqlite3.Connection, run_ids: Iterable[str],
                 touched: dict[str, None]) -> None:
        self._db = db
        self._ids: dict[str, None] = dict.fromkeys(run_ids)  # every open run, in opening order
        self._cached: OrderedDict[str, Execution] = OrderedDict()  # least recently used first
        self._touched = touched  # the state's `touched_runs`: they stay until written
        # Uncached runs whose row may hold a task to dispatch (a superset: unknown counts).
        self._may_dispatch: set[str] = set(self._ids)

    # -- the mapping ---------------------------------------------------------------------------

    def __getitem__(self, run_id: str) -> Execution:
        execution = self._cached.get(run_id)
        if execution is not None:
            self._cached.move_to_end(run_id)
            return execution
        if run_id not in self._ids:
            raise KeyError(run_id)
        execution = self._read(run_id)
        self._cached[run_id] = execution
        self.make_room()
        return execution

    def get(self, run_id: str, default: Execution | None = None) -> Execution | None:  # type: ignore[override]
        return self[run_id] if run_id in self._ids else default

    def __setitem__(self, run_id: str, execution: Execution) -> None:
        """Add a run that opened (the core never replaces a run object)."""
        assert run_id not in self._ids, run_id
        self._ids[run_id] = None
        self._cached[run_id] = execution

    def __delitem__(self, run_id: str) -> None:
        """A run that closed: its row goes at the next commit (it is touched)."""
        del self._ids[run_id]
        self._cached.pop(run_id, None)
        self._may_dispatch.discard(run_id)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def items(self) -> ItemsView[str, Execution]:
        return _Items(self)

    def values(self) -> ValuesView[Execution]:
        return _Values(self)

    # -- the cache -----------------------------------------------------------------------------

    @property
    def cached_count(self) -> int:
        return len(self._cached)

    def make_room(self) -> None:
        """Drop the least recently used untouched runs beyond `OPEN_RUNS_CACHED` (the store
        calls it after each commit, when nothing is touched any more). The most recently used
        run stays whatever its state: a read just returned it, and the caller may touch it."""
        excess = len(self._cached) - limits.OPEN_RUNS_CACHED
        if excess <= 0:
            return
        candidates = min(excess + len(self._touched), len(self._cached) - 1)
        for run_id in list(islice(self._cached, candidates)):
            if excess == 0:
                break
            if run_id not in self._touched:
                self._note_dispatch(run_id, self._cached.pop(run_id))
                excess -= 1

    def walk(self) -> Iterator[tuple[str, Execution]]:
        """Every open run in opening order, uncached ones read from their rows and not kept."""
        rows: Iterator[tuple[str, bytes]] | None = None
        for run_id in self._ids:
            execution = self._cached.get(run_id)
            if execution is None:
                if rows is None:
                    rows = iter(self._db.execute("SELECT run_id, run FROM open_runs ORDER BY seq"))
                execution = _next_row(rows, run_id)
            yield run_id, execution

    def dispatch_candidates(self) -> Iterator[Execution]:
        """Open runs in opening order: every cached one, and the uncached ones that may have a
        task to dispatch (read from their rows and not kept)."""
        for run_id in self._ids:
            execution = self._cached.get(run_id)
            if execution is None:
                if run_id not in self._may_dispatch:
                    continue
                execution = self._read(run_id)
                self._note_dispatch(run_id, execution)
            yield execution

    def _note_dispatch(self, run_id: str, execution: Execution) -> None:
        """Remember whether an uncached run's row holds a task to dispatch."""
        if execution.has_task_to_dispatch:
            self._may_dispatch.add(run_id)
        else:
            self._may_dispatch.discard(run_id)

    def _read(self, run_id: str) -> Execution:
        row = self._db.execute("SELECT run FROM open_runs WHERE run_id = ?", (run_id,)).fetchone()
        assert row is not None, f"open run {run_id} is neither cached nor a row"
        return _EXECUTION.decode(row[0])


def attach(state: ShardState, db: sqlite3.Connection, run_ids: Iterable[str]) -> OpenRunCache:
    """Make a cache over the rows of `run_ids` (in opening order) the state's open runs; the
    state must have its `touched_runs` set."""
    assert state.touched_runs is not None, "a store-backed state tracks touched runs"
    cache = OpenRunCache(db, run_ids, state.touched_runs)
    state.executions = cache
    state.dispatch_candidates = cache.dispatch_candidates
    return cache


def _next_row(rows: Iterator[tuple[str, bytes]], run_id: str) -> Execution:
    """The row of `run_id`, skipping the rows before it (cached or closed runs)."""
    for row_id, blob in rows:
        if row_id == run_id:
            return _EXECUTION.decode(blob)
    raise AssertionError(f"open run {run_id} is neither cached nor a row in order")


class _Items(ItemsView[str, Execution]):
    _mapping: OpenRunCache

    def __iter__(self) -> Iterator[tuple[str, Execution]]:
        return self._mapping.walk()


class _Values(ValuesView[Execution]):
    _mapping: OpenRunCache

    def __iter__(self) -> Iterator[Execution]:
        return (execution for _, execution in self._mapping.walk())
