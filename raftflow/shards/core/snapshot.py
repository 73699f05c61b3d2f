"""Shard state to msgpack bytes and back (never pickle).

Theory of operation. The snapshot is the array `[SNAPSHOT_FORMAT_VERSION, ShardState]`, packed by
msgspec: every state class is a Struct encoded as a map of its field names (see `state.py`).
Dicts keep insertion order (itself deterministic, see `state.py`), so a restored replica iterates
exactly like the original and the bytes of a re-snapshot are equal (the digest depends on it,
DESIGN §4 I2). The derived timer heap is not a field: it is rebuilt by `ShardState.__post_init__`
when the state is decoded. The version is read before the state is decoded, so each layout gets
its own reader: version 1 is release 0.1's array layout, read by `legacy_arrays`; a replica
restored from it writes version 2 from then on.
"""

from __future__ import annotations

import msgspec

from raftflow.protocol import legacy_arrays
from raftflow.protocol.codec import ENCODER, check_wire_layout, decoder
from raftflow.shards.core.state import (
    ActivityState,
    BufferedEvent,
    Execution,
    ShardState,
    WorkflowTaskState,
)

SNAPSHOT_FORMAT_VERSION = 2
LEGACY_ARRAYS_FORMAT_VERSION = 1  # release 0.1

check_wire_layout((WorkflowTaskState, ActivityState, BufferedEvent, Execution, ShardState))
_ENVELOPE_DECODER = msgspec.msgpack.Decoder(tuple[int, msgspec.Raw], strict=True)
_STATE_DECODER = decoder(ShardState)


def to_bytes(state: ShardState) -> bytes:
    """Serialise the whole shard state (as of its last applied command)."""
    assert state.applied_index >= 0
    data = ENCODER.encode((SNAPSHOT_FORMAT_VERSION, state))
    assert data, "empty snapshot"
    return data


def from_bytes(data: bytes) -> ShardState:
    """Rebuild a state written by `to_bytes` on any replica, of this release or of 0.1."""
    version, raw_state = _ENVELOPE_DECODER.decode(data)
    if version == LEGACY_ARRAYS_FORMAT_VERSION:
        state = legacy_arrays.from_legacy(bytes(raw_state), ShardState)
        assert isinstance(state, ShardState), type(state)
    else:
        assert version == SNAPSHOT_FORMAT_VERSION, f"unknown snapshot format {version}"
        state = _STATE_DECODER.decode(raw_state)
    assert state.applied_index >= 0, state.applied_index
    assert len(state.timer_heap) == len(state.timers), "derived heap not rebuilt"
    return state
