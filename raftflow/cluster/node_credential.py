"""The credential a node shows on the HTTP calls it makes to other nodes (pure).

With auth on, a call that carries `NODE_CREDENTIAL_HEADER` with this value comes from a node of
the cluster (or a tool holding the cluster secret, such as `raftflow dev`): it may call the
internal routes, and a forwarded call's caller header is believed (api/access.py). It is an
HMAC of a fixed label under the cluster secret, so the secret itself never crosses the network
and the credential of one cluster is worthless in another. Like a bearer token it can be
replayed by whoever sees it on the wire: links between nodes need TLS where the network is not
trusted (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac

NODE_CREDENTIAL_HEADER = "X-Raftflow-Node-Credential"
_LABEL = b"raftflow-node-credential-v1"


def node_credential(secret: str) -> str:
    assert secret, "a cluster always has a secret (ClusterConfig refuses an empty one)"
    return hmac.new(secret.encode("utf-8"), _LABEL, hashlib.sha256).hexdigest()


def node_headers(secret: str) -> dict[str, str]:
    """The headers of a node's own calls to other nodes."""
    return {NODE_CREDENTIAL_HEADER: node_credential(secret)}
