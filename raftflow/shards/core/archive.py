"""The archive: what a shard remembers beyond its open runs (closed runs, request ids, and
the oldest events of long open runs).

Theory of operation. Open runs are the hot, mutable part of a shard and live in `ShardState`;
everything that only waits to be read or to expire lives behind this seam, and so do the
oldest chunks of a long open run's history (run_history.py), which only wait to be read. A run enters the
archive when it closes, with the instant it must be deleted (its close time plus its namespace's
retention); a request id enters it with its first answer and the instant it may be forgotten.
Deleting what is due is itself a write of the core (`expire`, called from `FireTimers` with the
proposer's clock), so every replica deletes the same rows at the same log index (DESIGN §4 I2).

Two implementations answer identically: `MemoryArchive` (memory_archive.py), the reference that
the property tests and the pure core use, and the shard store's SQLite archive
(`raftflow.shards.store`), which keeps the rows on disk. Their `canonical_rows` are compared
byte for byte by the digest (`digest.py`), so "identical" is checked, not hoped.

Every ordered walk (expiry, canonical rows) is by a total order on unique keys, so it does not
depend on insertion order or on how a store lays out its rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import msgspec

from raftflow.protocol.codec import ENCODER
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.results import Result
from raftflow.shards.core.runs import Execution, RequestKey, WorkflowKey


class ArchivedRun(msgspec.Struct, kw_only=True):
    """A closed run as the archive holds it: the run (history included) and its deletion time."""

    delete_at_ms: int
    execution: Execution


class ClosedRunHead(msgspec.Struct, kw_only=True):
    """What describing a closed run needs, without reading its history: the run with an empty
    `history`, the history's length and its last event (the close)."""

    execution: Execution
    history_length: int
    close_event: HistoryEvent


class SpilledChunk(msgspec.Struct, kw_only=True):
    """A chunk of an open run's oldest events held by the archive (run_history.py)."""

    run_id: str
    first_event_id: int
    events: list[HistoryEvent]


class RememberedRequest(msgspec.Struct, kw_only=True):
    """A request's first answer, kept until `expires_at_ms` so a retry gets the same answer."""

    key: RequestKey
    result: Result
    expires_at_ms: int


class Archive(Protocol):
    """Closed runs and remembered request ids of one shard replica."""

    def put_closed(self, execution: Execution, delete_at_ms: int) -> None:
        """Keep a run that just closed; it becomes the latest run of its workflow id. Its
        spilled chunks (`execution.spilled_events` of them) are already here; the run is
        kept whole with them. The caller hands the run over: it is never changed after this."""

    def closed_run(self, run_id: str) -> Execution | None:
        """A retained closed run, history included, or None."""

    def closed_head(self, run_id: str) -> ClosedRunHead | None:
        """A retained closed run without its history (see `ClosedRunHead`), or None. The
        caller must not change it."""

    def stored_events(self, run_id: str, first_event_id: int, limit: int) -> list[HistoryEvent]:
        """Up to `limit` events from `first_event_id` of a run's history as the archive holds
        it: a retained closed run's whole history, an open run's spilled chunks (empty past
        their end, or for a run it holds nothing of). A page read without the rest."""

    def put_spilled(self, run_id: str, first_event_id: int, events: list[HistoryEvent]) -> None:
        """Keep the next chunk of an open run's oldest events (run_history.spill): events
        `first_event_id`.. of the run, following its spilled chunks before. They become part
        of the closed run when `put_closed` takes it."""

    def has_run(self, run_id: str) -> bool:
        """Whether a retained closed run has this id (run ids are unique in a shard)."""

    def latest_closed(self, key: WorkflowKey) -> str | None:
        """The run id of the workflow id's latest closed run, if still retained."""

    def closed_count(self) -> int:
        """How many closed runs are retained."""

    def recall(self, key: RequestKey) -> Result | None:
        """The first answer to a remembered request, or None."""

    def remember(self, key: RequestKey, result: Result, expires_at_ms: int) -> None:
        """Remember a request's first answer (the key is not remembered yet)."""

    def expire(self, now_ms: int, limit: int) -> int:
        """Delete up to `limit` rows due at or before `now_ms`: closed runs first, in
        (delete_at_ms, run_id) order, then request ids in (expires_at_ms, key) order. Returns
        how many were deleted."""

    def next_expiry_ms(self) -> int | None:
        """The earliest instant anything retained is due, or None when nothing is retained."""

    def canonical_rows(self) -> Iterator[bytes]:
        """Every retained row as canonical msgpack, in key order (the digest's input)."""

    def spilled_contents(self) -> list[SpilledChunk]:
        """Every open run's spilled chunk, by (run id, first event id) (snapshots, tests)."""


# The canonical rows: every retained run by run id, then every latest-run pointer by workflow
# key, then every remembered request by key, then every open run's spilled chunk by (run id,
# first event id); each a msgpack array naming its table first.

def canonical_run(run: ArchivedRun) -> bytes:
    return ENCODER.encode(("run", run.execution.run_id, run))


def canonical_latest(key: WorkflowKey, run_id: str) -> bytes:
    return ENCODER.encode(("latest", key, run_id))


def canonical_request(request: RememberedRequest) -> bytes:
    return ENCODER.encode(("request", request))


def canonical_spilled(chunk: SpilledChunk) -> bytes:
    return ENCODER.encode(("spilled", chunk))
