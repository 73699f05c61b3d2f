"""Shard state to msgpack bytes and back (never pickle).

Theory of operation. A snapshot is the array `[SNAPSHOT_FORMAT_VERSION, ShardState, runs,
latest, requests, spilled]`, packed by msgspec: the open part of the state (`state.py`, every
class a Struct encoded as a map of its field names) and then the archive's rows in canonical
order (`MemoryArchive.contents`, then the open runs' spilled chunks). Dicts keep insertion
order (itself deterministic, see `state.py`), so a restored replica iterates exactly like the
original and the bytes of a re-snapshot are equal (the digest depends on it, DESIGN §4 I2).
The derived timer heap is not a field: it is rebuilt by `ShardState.__post_init__` when the
state is decoded.

The version is read before the state is decoded, so each layout gets its own reader: version 1
is release 0.1's array layout, read by `legacy_arrays`; versions 1 and 2 kept closed runs and
request ids in the state itself and are upgraded by `snapshot_v2`; version 3 had no spilled
chunks (no run spilled then); version 4 had no outbox (it decodes with an empty one). A replica
restored from any writes version 5 from then on.

A store-backed replica (`raftflow.shards.store`) keeps its archive on disk and stores only
`open_part_bytes` of the state; `to_bytes` is for states with the reference archive.
"""

from __future__ import annotations

import msgspec

from raftflow.protocol import legacy_arrays
from raftflow.protocol.codec import ENCODER, check_wire_layout, decoder
from raftflow.shards.core import snapshot_v2
from raftflow.shards.core.archive import ArchivedRun, RememberedRequest, SpilledChunk
from raftflow.shards.core.memory_archive import MemoryArchive
from raftflow.shards.core.state import (
    ActivityState,
    BufferedEvent,
    Execution,
    ShardState,
    WorkflowKey,
    WorkflowTaskState,
)

# 5: the same layout, and the state may hold an outbox (`ShardState.outbox`). A release before
# it would decode such a state without its outbox (an unknown field) and lose the messages, so
# it must refuse the snapshot: it knows no version 5.
SNAPSHOT_FORMAT_VERSION = 5
OUTBOXLESS_FORMAT_VERSION = 4
UNSPILLED_FORMAT_VERSION = 3  # the archive's rows without spilled chunks
OPEN_RUNS_MAPS_FORMAT_VERSION = 2  # closed runs and request ids inside the state, as maps
LEGACY_ARRAYS_FORMAT_VERSION = 1  # release 0.1

check_wire_layout((WorkflowTaskState, ActivityState, BufferedEvent, Execution, ShardState,
                   ArchivedRun, RememberedRequest, SpilledChunk, snapshot_v2.ShardState))
_ENVELOPE_DECODER = msgspec.msgpack.Decoder(list[msgspec.Raw])
_SNAPSHOT_DECODER = decoder(tuple[int, ShardState, list[ArchivedRun],
                                  list[tuple[WorkflowKey, str]], list[RememberedRequest],
                                  list[SpilledChunk]])
_V3_DECODER = decoder(tuple[int, ShardState, list[ArchivedRun],
                            list[tuple[WorkflowKey, str]], list[RememberedRequest]])
_STATE_DECODER = decoder(ShardState)
_V2_DECODER = decoder(snapshot_v2.ShardState)


def to_bytes(state: ShardState) -> bytes:
    """Serialise the whole shard state (as of its last applied command)."""
    assert state.applied_index >= 0
    archive = state.archive
    assert isinstance(archive, MemoryArchive), "a store-backed state snapshots its own store"
    runs, latest, requests = archive.contents()
    data = ENCODER.encode((SNAPSHOT_FORMAT_VERSION, state, runs, latest, requests,
                           archive.spilled_contents()))
    assert data, "empty snapshot"
    return data


def from_bytes(data: bytes) -> ShardState:
    """Rebuild a state written by `to_bytes` on any replica, of this release or an older one."""
    envelope = _ENVELOPE_DECODER.decode(data)
    version = msgspec.msgpack.decode(envelope[0], type=int)
    if version in (SNAPSHOT_FORMAT_VERSION, OUTBOXLESS_FORMAT_VERSION):
        _, state, runs, latest, requests, spilled = _SNAPSHOT_DECODER.decode(data)
        state.archive = MemoryArchive.of(runs, latest, requests, spilled)
    elif version == UNSPILLED_FORMAT_VERSION:
        _, state, runs, latest, requests = _V3_DECODER.decode(data)
        state.archive = MemoryArchive.of(runs, latest, requests)
    else:
        assert len(envelope) == 2, f"format {version} has {len(envelope)} parts"
        state = _upgraded(version, bytes(envelope[1]))
    assert state.applied_index >= 0, state.applied_index
    assert len(state.timer_heap) == len(state.timers), "derived heap not rebuilt"
    return state


def open_part_bytes(state: ShardState) -> bytes:
    """The open part of the state alone (a store-backed replica keeps the archive itself)."""
    executions = state.executions
    if type(executions) is dict:
        return ENCODER.encode(state)
    # A store-backed replica's runs are a cache over rows (shards/store): encode every run, in
    # order, exactly as a pure state's dict would be.
    state.executions = dict(executions.items())
    try:
        return ENCODER.encode(state)
    finally:
        state.executions = executions


def open_part_from_bytes(data: bytes) -> ShardState:
    return _STATE_DECODER.decode(data)


def _upgraded(version: int, raw_state: bytes) -> ShardState:
    if version == LEGACY_ARRAYS_FORMAT_VERSION:
        old = legacy_arrays.from_legacy(raw_state, snapshot_v2.ShardState)
        assert isinstance(old, snapshot_v2.ShardState), type(old)
    else:
        assert version == OPEN_RUNS_MAPS_FORMAT_VERSION, f"unknown snapshot format {version}"
        old = _V2_DECODER.decode(raw_state)
    executions, archive = snapshot_v2.upgrade(old)
    state = ShardState(shard_id=old.shard_id, applied_index=old.applied_index,
                       executions=executions, open_runs=old.open_runs, timers=old.timers)
    state.archive = archive
    return state
