"""The proof a joining node gives that it knows the cluster secret (pure).

A join request names the node and its two addresses; its proof is an HMAC-SHA256 over exactly
those fields under the cluster secret, so the secret itself never crosses the network and a
proof cannot be moved to other addresses. A replayed proof can only repeat the same admission,
which the cluster map answers idempotently (the same id at the same addresses is admitted once).
"""

from __future__ import annotations

import hashlib
import hmac

_DOMAIN = b"raftflow-join-v1"


def join_proof(secret: str, node_id: str, http_address: str, raft_address: str) -> str:
    """Hex HMAC-SHA256 of the join fields, each length-prefixed so fields cannot be re-cut."""
    assert secret, "a cluster always has a secret (ClusterConfig refuses an empty one)"
    mac = hmac.new(secret.encode("utf-8"), _DOMAIN, hashlib.sha256)
    for part in (node_id, http_address, raft_address):
        encoded = part.encode("utf-8")
        mac.update(len(encoded).to_bytes(4, "big"))
        mac.update(encoded)
    return mac.hexdigest()


def proof_matches(secret: str, proof: str, node_id: str, http_address: str,
                  raft_address: str) -> bool:
    """Whether `proof` was made with `secret` for exactly these fields (constant time)."""
    expected = join_proof(secret, node_id, http_address, raft_address)
    return hmac.compare_digest(expected.encode("ascii"), proof.encode("ascii", "replace"))
