"""`raftflow node --join URL ...`: ask a running cluster to admit this node, before it starts.

The node names itself and its two addresses, proves it knows the cluster secret
(cluster/join_proof.py) and tries each `--join` URL in turn until one admits it (any member
forwards the request to the meta group's leader). The answer carries the cluster id, the shard
count and the map with this node in it; they are written to the data directory (cluster.json,
and the map it was admitted with) before the node starts, so a restart needs no `--join`
round: a data directory that already belongs to a cluster is started as it is.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import msgspec

from raftflow.cluster.cluster_map import ClusterMap
from raftflow.cluster.config import (
    CLUSTER_FILE_NAME,
    ClusterConfig,
    ClusterConfigMismatchError,
    InvalidClusterConfigError,
    NodeSpec,
    check_or_persist,
)
from raftflow.cluster.join_proof import join_proof
from raftflow.cluster.map_store import store_join_map
from raftflow.cluster.membership_wire import JoinAnswer, JoinRequest
from raftflow.cluster.node_credential import node_headers

log = logging.getLogger(__name__)

# Each URL is tried for this long per attempt; the whole join gives up after JOIN_TIMEOUT_S.
JOIN_REQUEST_TIMEOUT_S = 15.0
JOIN_TIMEOUT_S = 120.0
JOIN_RETRY_S = 1.0
JOIN_ANSWER_BYTES_MAX = 16 * 1024 * 1024  # a map of NODES_MAX members and 4096 shards fits
CLUSTER_ID_TIMEOUT_S = 5.0


class JoinRefusedError(InvalidClusterConfigError):
    """The cluster refused to admit this node (wrong secret, id taken, ...): do not retry."""


def split_address(flag: str, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not (sep and host and port.isdigit() and 1 <= int(port) <= 65535):
        raise InvalidClusterConfigError(f"{flag} must look like host:port, got {value!r}")
    return host.strip("[]"), int(port)


def join_config(*, data_dir: Path, node_id: str, join_urls: Sequence[str], secret: str,
                http_address: str, raft_address: str,
                ssl_context: ssl.SSLContext | None = None) -> ClusterConfig:
    """The configuration of this node in the cluster it joins (joining it first if needed)."""
    if (data_dir / CLUSTER_FILE_NAME).exists():
        stored = json.loads((data_dir / CLUSTER_FILE_NAME).read_text())
        stored.pop("format_version", None)
        stored.pop("node_id", None)
        config = ClusterConfig.from_dict(stored)
        joined = _cluster_id_of(join_urls, secret, ssl_context)
        if joined is not None and joined != config.cluster_id:
            raise ClusterConfigMismatchError(
                f"refusing to start: data directory {data_dir} belongs to cluster "
                f"{config.cluster_id!r}, but --join names cluster {joined!r}. Use a fresh "
                "--data-dir to join that cluster.")
        log.info("node %s: data directory already belongs to cluster %s; starting it",
                 node_id, config.cluster_id)
        return check_or_persist(data_dir, config, node_id)
    http_host, http_port = split_address("--http-address", http_address)
    raft_host, raft_port = split_address("--raft-address", raft_address)
    own = NodeSpec(id=node_id, host=http_host, http_port=http_port, raft_port=raft_port)
    if raft_host != http_host:
        raise InvalidClusterConfigError(
            "--http-address and --raft-address must name the same host (one interface per node)")
    request = JoinRequest(node_id=node_id, http_address=own.http_address,
                          raft_address=own.raft_address,
                          proof=join_proof(secret, node_id, own.http_address, own.raft_address))
    answer = _ask(join_urls, request, secret, ssl_context)
    peers = [NodeSpec(id=m.id, host=m.raft_host, http_port=_port_of(m.http_address),
                      raft_port=m.raft_port) for m in answer.map.members if m.id != node_id]
    config = ClusterConfig.create(cluster_id=answer.cluster_id, shard_count=answer.shard_count,
                                  nodes=[own, *peers], secret=secret)
    data_dir.mkdir(parents=True, exist_ok=True)
    store_join_map(data_dir, answer.map)  # before cluster.json: its presence marks a joined node
    return check_or_persist(data_dir, config, node_id)


def _cluster_id_of(join_urls: Sequence[str], secret: str,
                   ssl_context: ssl.SSLContext | None) -> str | None:
    """The cluster id the first reachable `--join` URL serves (None if none answers: a
    restarted node must start from its own data even when the URLs it joined through are gone)."""
    for url in join_urls:
        try:
            # The node credential: a cluster with auth on shows its map to its nodes only.
            ask = urllib.request.Request(url.rstrip("/") + "/api/v1/cluster/map",
                                         headers=node_headers(secret))
            with urllib.request.urlopen(ask, timeout=CLUSTER_ID_TIMEOUT_S,
                                        context=ssl_context) as reply:
                return msgspec.json.decode(reply.read(JOIN_ANSWER_BYTES_MAX),
                                           type=ClusterMap).cluster_id
        except (OSError, msgspec.DecodeError):
            continue
    return None


def _port_of(http_address: str) -> int:
    return int(http_address.rstrip("/").rpartition(":")[2])


def _ask(join_urls: Sequence[str], request: JoinRequest, secret: str,
         ssl_context: ssl.SSLContext | None) -> JoinAnswer:
    body = msgspec.json.encode(request)
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    last_error = "no --join URL given"
    while time.monotonic() < deadline:
        for url in join_urls:
            post = urllib.request.Request(
                url.rstrip("/") + "/api/v1/cluster/join", data=body, method="POST",
                headers={"Content-Type": "application/json", **node_headers(secret)})
            try:
                with urllib.request.urlopen(post, timeout=JOIN_REQUEST_TIMEOUT_S,
                                            context=ssl_context) as reply:
                    return msgspec.json.decode(reply.read(JOIN_ANSWER_BYTES_MAX),
                                               type=JoinAnswer)
            except urllib.error.HTTPError as error:
                detail = error.read(64 * 1024).decode("utf-8", "replace")
                if error.code in (400, 401, 403, 404, 409):
                    raise JoinRefusedError(
                        f"{url} refused to admit {request.node_id}: {detail}") from None
                last_error = f"{url} answered {error.code}: {detail}"
            except (OSError, msgspec.DecodeError) as error:
                last_error = f"{url}: {error}"
            log.info("join: %s; trying again", last_error)
        time.sleep(JOIN_RETRY_S)
    raise InvalidClusterConfigError(f"could not join within {JOIN_TIMEOUT_S:.0f} s: {last_error}")
