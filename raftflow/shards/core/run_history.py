"""An open run's history wherever its events are: the oldest in the archive, the rest in memory.

Theory of operation. An open run keeps the newest part of its history in `Execution.history`;
once that reaches HISTORY_HOT_EVENTS_MAX + HISTORY_CHUNK_EVENTS events, `spill` moves the
oldest whole chunk to the archive (`Archive.put_spilled`, on disk in a store-backed replica)
and counts it in `Execution.spilled_events`. `apply` spills after each command, from state
alone, so every replica spills the same events at the same log index and digests still agree
(the spilled chunks are archive rows, `canonical_rows` covers them). Spilled chunks are
aligned (event ids 1 + k * HISTORY_CHUNK_EVENTS onwards), as a closed run's chunks are, so
when the run closes the archive adds only the in-memory tail's chunks to what it holds.

Every read of an open run's older events goes through `events`/`event` here: a workflow task
with the whole history, a history page, a retried completion's lookups. The in-memory tail
always holds the last event (a spill leaves at least HISTORY_HOT_EVENTS_MAX events).
"""

from __future__ import annotations

from raftflow.protocol.events import HistoryEvent
from raftflow.shards.core import limits
from raftflow.shards.core.archive import Archive
from raftflow.shards.core.runs import Execution


def events(archive: Archive, execution: Execution, first_event_id: int,
           last_event_id: int) -> list[HistoryEvent]:
    """Events `first_event_id`..`last_event_id` (inclusive, clipped to the history) in order."""
    assert first_event_id >= 1, first_event_id
    last_event_id = min(last_event_id, execution.history_length)
    if last_event_id < first_event_id:
        return []
    spilled = execution.spilled_events
    found: list[HistoryEvent] = []
    if first_event_id <= spilled:
        upto = min(last_event_id, spilled)
        found = archive.stored_events(execution.run_id, first_event_id,
                                      upto - first_event_id + 1)
        assert len(found) == upto - first_event_id + 1, (execution.run_id, first_event_id)
    if last_event_id > spilled:
        start = max(first_event_id, spilled + 1)
        found += execution.history[start - spilled - 1:last_event_id - spilled]
    assert found[0].event_id == first_event_id and found[-1].event_id == last_event_id
    return found


def event(archive: Archive, execution: Execution, event_id: int) -> HistoryEvent:
    """One event of the run's history by id (1..history_length)."""
    assert 1 <= event_id <= execution.history_length, (execution.run_id, event_id)
    if event_id > execution.spilled_events:
        return execution.history[event_id - execution.spilled_events - 1]
    return events(archive, execution, event_id, event_id)[0]


def whole(archive: Archive, execution: Execution) -> list[HistoryEvent]:
    """The run's whole history (invariant checks and tests; a long run reads its chunks)."""
    if not execution.spilled_events:
        return execution.history
    return events(archive, execution, 1, execution.history_length)


def spill(archive: Archive, execution: Execution) -> None:
    """Move the oldest whole chunks of an open run's in-memory history to the archive while
    it holds HISTORY_HOT_EVENTS_MAX + HISTORY_CHUNK_EVENTS events or more."""
    assert execution.is_open, execution.run_id
    history = execution.history
    # Read through `limits.` so that tests can shrink the bounds and spill often.
    chunk = limits.HISTORY_CHUNK_EVENTS
    while len(history) >= limits.HISTORY_HOT_EVENTS_MAX + chunk:
        first = execution.spilled_events + 1
        assert history[0].event_id == first and (first - 1) % chunk == 0
        archive.put_spilled(execution.run_id, first, history[:chunk])
        del history[:chunk]
        execution.spilled_events += chunk
