"""Which shard owns a workflow: the one hash every node and every client computes alike.

A node routes a workflow's calls to the leader of `shard_for(namespace, workflow_id, count)`;
a client that knows the cluster's shard count (nodes name it in the `X-Raftflow-Shard` header
of a workflow's answers) computes the same shard, and can send the next call for that shard
straight to the node that answered for it, with no forwarding hop. It lives here, not in the
cluster's ring (cluster/ring.py places shards on nodes), because the SDK imports only protocol.

The hash is blake2b truncated to 64 bits, never Python's `hash()`, which is salted per process;
the answer depends only on the three arguments and never changes between versions: the shard
count is fixed for the life of a cluster, so a workflow never changes shard.
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import blake2b

SHARD_COUNT_MAX = 4096
_HASH_BYTES = 8
# Workflow ids whose hash is kept: a gateway routes each workflow's calls (start, task
# completions, result) within seconds, so a recent id is hashed once instead of per call.
WORKFLOW_HASHES_CACHED = 16_384
# The header a node sets on a workflow's answers: "<shard>/<shard count>".
SHARD_HEADER = "X-Raftflow-Shard"


def stable_hash64(*parts: str) -> int:
    """A stable 64-bit hash of a sequence of strings.

    Each part is length-prefixed so that ("ab", "c") and ("a", "bc") never collide by
    construction (a namespace may contain any character, including separators).
    """
    digest = blake2b(digest_size=_HASH_BYTES, person=b"raftflow-ring")
    for part in parts:
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(4, "big"))
        digest.update(encoded)
    return int.from_bytes(digest.digest(), "big")


@lru_cache(maxsize=WORKFLOW_HASHES_CACHED)
def _workflow_hash(namespace: str, workflow_id: str) -> int:
    return stable_hash64("workflow", namespace, workflow_id)


def shard_for(namespace: str, workflow_id: str, shard_count: int) -> int:
    """The shard that owns (namespace, workflow_id): stable across processes and versions.

    Guarantees: the answer depends only on the three arguments, and lies in [0, shard_count).
    """
    if not 1 <= shard_count <= SHARD_COUNT_MAX:
        raise ValueError(f"shard_count must be in [1, {SHARD_COUNT_MAX}], got {shard_count}")
    shard = _workflow_hash(namespace, workflow_id) % shard_count
    assert 0 <= shard < shard_count
    return shard


def shard_header(shard: int, shard_count: int) -> str:
    return f"{shard}/{shard_count}"


def parse_shard_header(value: str | None) -> tuple[int, int] | None:
    """(shard, shard count) from a header value, or None when absent or malformed (a node of
    an older release sets none: the client then routes as before)."""
    if not value:
        return None
    shard_text, _, count_text = value.partition("/")
    if not (shard_text.isdigit() and count_text.isdigit()):
        return None
    shard, count = int(shard_text), int(count_text)
    if not (1 <= count <= SHARD_COUNT_MAX and shard < count):
        return None
    return shard, count
