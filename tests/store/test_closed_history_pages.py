"""Goal: a closed run's history is read from the store a page at a time (issue 13 item 6): the
store answers every page exactly like the in-memory reference, across chunk boundaries, and
describing a closed run reads none of its history.

Method: a run with several chunks of events (signals, then a terminate) is built in the pure
core; the same closed run is put into a real store's archive; pages at every kind of boundary
are compared, and `queries.history` is walked to the end on both states.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from raftflow.protocol.commands import SignalWorkflow, TerminateWorkflow
from raftflow.protocol.results import Rejected
from raftflow.shards.core import queries
from raftflow.shards.core.archive import ClosedRunHead
from raftflow.shards.core.limits import HISTORY_CHUNK_EVENTS
from raftflow.shards.store.shard_store import ShardStore
from raftflow.shards.store.sqlite_archive import SqliteArchive
from tests.core.core_driver import Shard


@pytest.fixture
def closed(tmp_path: Path):  # type: ignore[no-untyped-def]
    shard = Shard()
    run_id = shard.start("wf")
    for n in range(2 * HISTORY_CHUNK_EVENTS + 40):
        shard.run(SignalWorkflow(now_ms=shard.now_ms, namespace="default", workflow_id="wf",
                                 signal_name=f"s{n}", request_id=f"sig{n}"))
    shard.run(TerminateWorkflow(now_ms=shard.now_ms, namespace="default", workflow_id="wf",
                                request_id="term"))
    execution = shard.execution(run_id)
    assert not execution.is_open and len(execution.history) > 2 * HISTORY_CHUNK_EVENTS
    store = ShardStore(str(tmp_path / "s.db"), 0, fresh=True)
    store.archive.put_closed(execution, delete_at_ms=10**12)
    yield shard, store, execution
    store.close()


def test_every_page_matches_the_reference(closed) -> None:  # type: ignore[no-untyped-def]
    shard, store, execution = closed
    reference = shard.state.archive
    archive = store.archive
    assert isinstance(archive, SqliteArchive)
    length = len(execution.history)
    firsts = sorted({1, 2, HISTORY_CHUNK_EVENTS, HISTORY_CHUNK_EVENTS + 1,
                     HISTORY_CHUNK_EVENTS + 2, 2 * HISTORY_CHUNK_EVENTS + 1, length, length + 1,
                     length + 50})
    for first in firsts:
        for limit in (0, 1, 7, HISTORY_CHUNK_EVENTS - 1, HISTORY_CHUNK_EVENTS,
                      HISTORY_CHUNK_EVENTS + 1, 3 * HISTORY_CHUNK_EVENTS, 10_000):
            got = archive.stored_events(execution.run_id, first, limit)
            assert got == reference.stored_events(execution.run_id, first, limit), (first, limit)
            assert got == execution.history[first - 1:first - 1 + limit]
    assert archive.stored_events("no-such-run", 1, 10) == []


def test_describe_reads_the_head_and_history_pages_to_the_end(closed) -> None:  # type: ignore[no-untyped-def]
    shard, store, execution = closed
    head = store.archive.closed_head(execution.run_id)
    assert isinstance(head, ClosedRunHead) and head.execution.history == []
    assert head == shard.state.archive.closed_head(execution.run_id)
    assert head.history_length == len(execution.history)
    assert head.close_event == execution.history[-1]
    assert store.archive.closed_head("no-such-run") is None

    for state in (shard.state, store.state):
        described = queries.describe(state, "default", "wf")
        assert described == queries.describe(shard.state, "default", "wf")
        events, next_id = [], 1
        while next_id is not None:
            page = queries.history(state, "default", "wf", None, next_id, page_size=97)
            assert not isinstance(page, Rejected)
            events.extend(page[0])
            next_id = page[1]
        assert events == execution.history
