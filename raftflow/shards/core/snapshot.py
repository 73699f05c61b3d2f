"""Shard state to msgpack bytes and back (never pickle).

Theory of operation. The snapshot is the array `[SNAPSHOT_FORMAT_VERSION, ShardState]`, packed by
msgspec: every state class is an `array_like` Struct tagged with its class name (see `state.py`),
so each value is `[ClassName, field_1, ..., field_n]`, the layout release 0.1 wrote, and its
snapshots decode unchanged. Dicts keep insertion order (itself deterministic, see `state.py`), so
a restored replica iterates exactly like the original and the bytes of a re-snapshot are equal
(the digest depends on it, DESIGN §4 I2). The derived timer heap is not a field: it is rebuilt
by `ShardState.__post_init__` when the state is decoded. The version is read before the state is
decoded, so a future layout is told apart instead of failing field validation.
"""

from __future__ import annotations

import msgspec

from raftflow.protocol.codec import ENCODER, check_wire_layout
from raftflow.shards.core.state import (
    ActivityState,
    BufferedEvent,
    Execution,
    ShardState,
    WorkflowTaskState,
)

SNAPSHOT_FORMAT_VERSION = 1

check_wire_layout((WorkflowTaskState, ActivityState, BufferedEvent, Execution, ShardState))
_ENVELOPE_DECODER = msgspec.msgpack.Decoder(tuple[int, msgspec.Raw], strict=True)
_STATE_DECODER = msgspec.msgpack.Decoder(ShardState, strict=True)


def to_bytes(state: ShardState) -> bytes:
    """Serialise the whole shard state (as of its last applied command)."""
    assert state.applied_index >= 0
    data = ENCODER.encode((SNAPSHOT_FORMAT_VERSION, state))
    assert data, "empty snapshot"
    return data


def from_bytes(data: bytes) -> ShardState:
    """Rebuild a state written by `to_bytes` on any replica."""
    version, raw_state = _ENVELOPE_DECODER.decode(data)
    assert version == SNAPSHOT_FORMAT_VERSION, f"unknown snapshot format {version}"
    state = _STATE_DECODER.decode(raw_state)
    assert state.applied_index >= 0, state.applied_index
    assert len(state.timer_heap) == len(state.timers), "derived heap not rebuilt"
    return state
