"""Shard state to msgpack bytes and back (never pickle).

Theory of operation. The snapshot packs every state class field by field with the protocol's
`SchemaCodec`, keeping dict insertion order (which is itself deterministic, see `state.py`), so
a restored replica iterates exactly like the original and the bytes of a re-snapshot are equal
(the digest depends on it, DESIGN §4 I2). The derived timer heap is not packed; it is rebuilt.
A format version leads the payload so a future layout can be told apart.
"""

from __future__ import annotations

from raftflow.protocol.codec import PROTOCOL_CLASSES, SchemaCodec
from raftflow.shards.core.state import (
    ActivityState,
    BufferedEvent,
    Execution,
    ShardState,
    WorkflowTaskState,
)

SNAPSHOT_FORMAT_VERSION = 1

_CODEC = SchemaCodec((*PROTOCOL_CLASSES, WorkflowTaskState, ActivityState, BufferedEvent,
                      Execution, ShardState))


def to_bytes(state: ShardState) -> bytes:
    """Serialise the whole shard state (as of its last applied command)."""
    assert state.applied_index >= 0
    data = _CODEC.pack((SNAPSHOT_FORMAT_VERSION, state))
    assert data, "empty snapshot"
    return data


def from_bytes(data: bytes) -> ShardState:
    """Rebuild a state written by `to_bytes` on any replica."""
    unpacked = _CODEC.unpack(data, lambda raw: raw)
    assert isinstance(unpacked, tuple) and len(unpacked) == 2, "not a shard snapshot"
    version, raw_state = unpacked
    assert version == SNAPSHOT_FORMAT_VERSION, f"unknown snapshot format {version}"
    state = _CODEC.decode_tagged(raw_state)
    assert isinstance(state, ShardState), type(state)
    state.rebuild_timer_heap()
    return state
