"""The last cluster map this node followed, kept in its data directory; and a cluster's genesis.

A node that restarts must know, before it can ask anyone, which replicas it holds and who its
peers are: the map it last followed says so. The file is rewritten whole and durably (temp,
fsync, rename) on every newer map, so a crash leaves the previous map or the new one. It is a
cache, not the truth: the meta group's log is, and the node moves on to any newer map it sees.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from raftflow.cluster.cluster_map import ClusterMap, genesis_map
from raftflow.cluster.config import ClusterConfig, write_durably

MAP_FILE_NAME = "cluster-map.json"
# Written once, by a node admitted through `raftflow node --join`: the map it was admitted with.
# Its presence marks a joined node, which never founds a cluster (it has no genesis to offer).
JOIN_FILE_NAME = "joined-map.json"
_decoder = msgspec.json.Decoder(ClusterMap)


def genesis_of(config: ClusterConfig) -> ClusterMap:
    """The map a cluster founded with `config`'s node list starts from (same on every node)."""
    return genesis_map(
        cluster_id=config.cluster_id, shard_count=config.shard_count,
        nodes=[(n.id, n.http_address, n.host, n.raft_port) for n in config.nodes])


def store_map(data_dir: Path, cluster_map: ClusterMap) -> None:
    write_durably(data_dir / MAP_FILE_NAME, msgspec.json.encode(cluster_map))


def store_join_map(data_dir: Path, cluster_map: ClusterMap) -> None:
    write_durably(data_dir / JOIN_FILE_NAME, msgspec.json.encode(cluster_map))


def load_join_map(data_dir: Path) -> ClusterMap | None:
    return _load(data_dir / JOIN_FILE_NAME)


def load_map(data_dir: Path) -> ClusterMap | None:
    """The stored map, or None when there is none (a damaged file counts as none: the map is
    learnt again from the meta group or a peer)."""
    return _load(data_dir / MAP_FILE_NAME)


def _load(path: Path) -> ClusterMap | None:
    try:
        return _decoder.decode(path.read_bytes())
    except FileNotFoundError:
        return None
    except msgspec.DecodeError:
        return None
