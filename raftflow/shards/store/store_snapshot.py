"""What a store-backed replica puts in its Raft snapshot, and what it sends a replica in need.

- `Manifest`: the replica's own snapshot. The store already holds the state durably up to
  `log_index` (a durable commit just before), so the snapshot file only names that index.
- `Image`: what a new or lagging replica receives: the whole store file as of `log_index`.
- Anything else is a full snapshot of the state (`raftflow.shards.core.snapshot`), written by a
  release before the store or by a replica without one; it is loaded into the store.
"""

from __future__ import annotations

import msgspec

from raftflow.protocol.codec import ENCODER


class Manifest(msgspec.Struct, frozen=True, tag="store-manifest", array_like=True):
    store_format: int
    log_index: int


class Image(msgspec.Struct, frozen=True, tag="store-image", array_like=True):
    store_format: int
    log_index: int
    image: bytes


_DECODER = msgspec.msgpack.Decoder(Manifest | Image)


def encode(value: Manifest | Image) -> bytes:
    return ENCODER.encode(value)


def decode(data: bytes) -> Manifest | Image | None:
    """The manifest or image `data` holds; None for a full state snapshot (an int version
    first where these hold their tag)."""
    try:
        return _DECODER.decode(data)
    except msgspec.ValidationError:
        return None
