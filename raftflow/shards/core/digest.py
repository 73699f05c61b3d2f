"""State digest: equal digests mean byte-identical shard state (DESIGN §4 I2)."""

from __future__ import annotations

import hashlib

from raftflow.shards.core.snapshot import to_bytes
from raftflow.shards.core.state import ShardState


def state_digest(state: ShardState) -> str:
    """Hex sha256 of the canonical snapshot bytes; cost is one full snapshot."""
    data = to_bytes(state)
    digest = hashlib.sha256(data).hexdigest()
    assert len(digest) == 64
    return digest
