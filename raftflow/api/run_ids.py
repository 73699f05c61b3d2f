"""New run ids: UUIDv7 (RFC 9562), time-ordered, as 32 hex digits.

Why time-ordered: every run id is a key in the shard store's b-trees (the `runs` primary key,
`history`'s key, `search_attributes`'). A random id (uuid4) lands each new run on a random leaf
page of each, so every workflow dirties pages all over the file, which go through the WAL and
back at each checkpoint. Ids that grow with time append at the right edge: with 12,000 runs
retained, 30 % fewer bytes written and ~28 % less store CPU per workflow (docs/benchmarks.md).
Ordering is by the proposer's clock, only a locality hint: nothing depends on it, uniqueness
comes from the 74 random bits (and the core refuses a run id already used).
"""

from __future__ import annotations

import os

_MS_BITS = 48
_VERSION = 0x7
_VARIANT = 0b10


def new_run_id(now_ms: int) -> str:
    """A UUIDv7: 48 bits of Unix milliseconds, version 7, 12 random bits, the RFC variant,
    62 random bits."""
    assert now_ms >= 0, now_ms
    bits = int.from_bytes(os.urandom(10), "big")  # one system call, as uuid4's; 74 bits used
    value = ((now_ms & ((1 << _MS_BITS) - 1)) << 80 | _VERSION << 76
             | (bits >> 68) << 64 | _VARIANT << 62 | (bits & ((1 << 62) - 1)))
    return f"{value:032x}"
