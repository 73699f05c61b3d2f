"""State digest: equal digests mean identical shard state (DESIGN §4 I2).

The digest covers the open part of the state as encoded bytes and then every archive row in
canonical order, so a store-backed replica and the in-memory reference that applied the same
log have the same digest whatever their storage looks like.
"""

from __future__ import annotations

import hashlib

from raftflow.shards.core.snapshot import open_part_bytes
from raftflow.shards.core.state import ShardState


def state_digest(state: ShardState) -> str:
    """Hex sha256 of the open part's bytes and the archive's canonical rows; cost linear in
    the whole state (archive included)."""
    hasher = hashlib.sha256(open_part_bytes(state))
    for row in state.archive.canonical_rows():
        hasher.update(len(row).to_bytes(4, "big"))
        hasher.update(row)
    digest = hasher.hexdigest()
    assert len(digest) == 64
    return digest
