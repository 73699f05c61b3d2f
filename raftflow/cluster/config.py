"""Cluster configuration: who the nodes are, how many shards, the shared secret.

Theory of operation. A node learns its cluster from flags (`--peers`, `--cluster-id`, `--shards`,
`--secret`) or a JSON/TOML file (`--config`); flags given explicitly win over the file. At its
first start a node writes the configuration into its data directory as `cluster.json`, together
with its own node id, durably (temp file, fsync, rename, fsync of the directory: DESIGN §4 I1 —
a crash leaves either no file or a whole one). On every later start the stored file is compared
with the flags: a different cluster id, shard count or node id means the data belongs to another
cluster or node, and reusing it would corrupt Raft state (a node answering votes with another
node's log) or re-route every workflow (`shard_for` depends on the shard count), so the node
refuses to start with `ClusterConfigMismatchError`. The node list may differ: membership changes
over the life of a cluster.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

CLUSTER_FILE_NAME = "cluster.json"
SHARD_COUNT_DEFAULT = 16
# Bounded so that placement stays cheap and per-shard state (ports aside, one Raft group each)
# fits a node; equal to ring.SHARD_COUNT_MAX.
SHARD_COUNT_MAX = 4096
NODES_MAX = 64  # Raft groups of more than 7 voters are pointless; 64 leaves room for learners.
ID_LENGTH_MAX = 64
CONFIG_FILE_BYTES_MAX = 1024 * 1024  # a config file is a few KiB; refuse anything absurd.
_FORMAT_VERSION = 1
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_T = TypeVar("_T")


class ClusterConfigError(Exception):
    """Base of configuration errors; the message is meant for the operator, as is."""


class InvalidClusterConfigError(ClusterConfigError):
    """The flags or the file describe an impossible cluster (bad id, port, duplicate node...)."""


class ClusterConfigMismatchError(ClusterConfigError):
    """The data directory belongs to another cluster, shard layout or node."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSpec:
    """One node: its id and where it listens for HTTP (API) and Raft traffic."""

    id: str
    host: str
    http_port: int
    raft_port: int

    @property
    def http_address(self) -> str:
        return f"http://{self._bracketed_host}:{self.http_port}"

    @property
    def raft_address(self) -> str:
        return f"{self._bracketed_host}:{self.raft_port}"

    @property
    def _bracketed_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


def served_address(address: str, *, tls: bool) -> str:
    """An `http://` address as a node serves it: `https://` when the cluster runs TLS (maps and
    configs keep `http://`; docs/security.md, "Addresses")."""
    if tls and address.startswith("http://"):
        return "https://" + address.removeprefix("http://")
    return address


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    """A validated cluster description. Construct with `ClusterConfig.create(...)` to validate."""

    cluster_id: str
    shard_count: int = SHARD_COUNT_DEFAULT
    nodes: tuple[NodeSpec, ...]
    secret: str = field(repr=False)  # never printed in logs or tracebacks

    @staticmethod
    def create(
        *, cluster_id: str, nodes: Sequence[NodeSpec], secret: str,
        shard_count: int = SHARD_COUNT_DEFAULT,
    ) -> ClusterConfig:
        """Validate and build. Raises InvalidClusterConfigError naming the bad value."""
        _check_id("cluster id", cluster_id)
        if not 1 <= shard_count <= SHARD_COUNT_MAX:
            raise InvalidClusterConfigError(
                f"shard count must be between 1 and {SHARD_COUNT_MAX}, got {shard_count}"
            )
        if not secret:
            # pysyncobj accepts unauthenticated peers without a secret (DESIGN §8).
            raise InvalidClusterConfigError("a cluster secret is required (--secret)")
        _check_nodes(nodes)
        return ClusterConfig(cluster_id=cluster_id, shard_count=shard_count,
                             nodes=tuple(nodes), secret=secret)

    def node(self, node_id: str) -> NodeSpec:
        """The spec of `node_id`. Raises InvalidClusterConfigError if it is not a member."""
        for spec in self.nodes:
            if spec.id == node_id:
                return spec
        known = ", ".join(spec.id for spec in self.nodes)
        raise InvalidClusterConfigError(f"node {node_id!r} is not in the cluster ({known})")

    def to_dict(self) -> dict[str, object]:
        return {
            "cluster_id": self.cluster_id,
            "shard_count": self.shard_count,
            "secret": self.secret,
            "nodes": [
                {"id": n.id, "host": n.host, "http_port": n.http_port, "raft_port": n.raft_port}
                for n in self.nodes
            ],
        }

    @staticmethod
    def from_dict(data: Mapping[str, object]) -> ClusterConfig:
        """Parse the shape written by `to_dict` (also the config file's shape)."""
        nodes_raw = data.get("nodes", [])
        if not isinstance(nodes_raw, list):
            raise InvalidClusterConfigError("'nodes' must be a list of node tables")
        shard_count = data.get("shard_count", SHARD_COUNT_DEFAULT)
        return ClusterConfig.create(
            cluster_id=_expect(data, "cluster_id", str),
            shard_count=_expect_int("shard_count", shard_count),
            secret=_expect(data, "secret", str),
            nodes=[_node_from_dict(raw) for raw in nodes_raw],
        )


def _check_id(what: str, value: str) -> None:
    if not (len(value) <= ID_LENGTH_MAX and _ID_PATTERN.fullmatch(value)):
        raise InvalidClusterConfigError(
            f"{what} {value!r} must be 1-{ID_LENGTH_MAX} characters of letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )


def _check_nodes(nodes: Sequence[NodeSpec]) -> None:
    if not 1 <= len(nodes) <= NODES_MAX:
        raise InvalidClusterConfigError(f"a cluster needs 1 to {NODES_MAX} nodes, got {len(nodes)}")
    endpoints: set[tuple[str, int]] = set()
    for spec in nodes:
        _check_id("node id", spec.id)
        if not spec.host or any(c.isspace() for c in spec.host):
            raise InvalidClusterConfigError(f"node {spec.id!r} has an invalid host {spec.host!r}")
        for port in (spec.http_port, spec.raft_port):
            if not 1 <= port <= 65535:
                raise InvalidClusterConfigError(f"node {spec.id!r} has an invalid port {port}")
            if (spec.host, port) in endpoints:
                raise InvalidClusterConfigError(f"{spec.host}:{port} is used twice")
            endpoints.add((spec.host, port))
    ids = [spec.id for spec in nodes]
    if len(set(ids)) != len(ids):
        raise InvalidClusterConfigError(f"node ids must be distinct, got {ids}")


def _expect(data: Mapping[str, object], key: str, kind: type[_T]) -> _T:
    value = data.get(key)
    if not isinstance(value, kind):
        raise InvalidClusterConfigError(f"{key!r} must be a {kind.__name__}, got {value!r}")
    return value


def _expect_int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidClusterConfigError(f"{key!r} must be an integer, got {value!r}")
    return value


def _node_from_dict(raw: object) -> NodeSpec:
    if not isinstance(raw, dict):
        raise InvalidClusterConfigError(f"each node must be a table, got {raw!r}")
    return NodeSpec(
        id=_expect(raw, "id", str),
        host=_expect(raw, "host", str),
        http_port=_expect_int("http_port", raw.get("http_port")),
        raft_port=_expect_int("raft_port", raw.get("raft_port")),
    )


def parse_peers(text: str) -> tuple[NodeSpec, ...]:
    """Parse `--peers "id=host:http_port:raft_port,..."` (hosts may be IPv6 in brackets)."""
    specs: list[NodeSpec] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        node_id, sep, endpoint = item.partition("=")
        host, _, ports = endpoint.rpartition(":")
        host, _, http_port = host.rpartition(":")
        if not (sep and host and http_port.isdigit() and ports.isdigit()):
            raise InvalidClusterConfigError(
                f"peer {item!r} must look like id=host:http_port:raft_port"
            )
        specs.append(NodeSpec(id=node_id.strip(), host=host.strip("[]"),
                              http_port=int(http_port), raft_port=int(ports)))
    if not specs:
        raise InvalidClusterConfigError("--peers lists no nodes")
    return tuple(specs)


def load_config_file(path: Path) -> dict[str, object]:
    """Read a `.json` or `.toml` config file into a raw table (validated by the caller)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InvalidClusterConfigError(f"cannot read config file {path}: {err}") from err
    if len(raw) > CONFIG_FILE_BYTES_MAX:
        raise InvalidClusterConfigError(f"config file {path} is larger than 1 MiB")
    try:
        if path.suffix == ".toml":
            data: object = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidClusterConfigError(f"config file {path} is not valid: {err}") from err
    if not isinstance(data, dict):
        raise InvalidClusterConfigError(f"config file {path} must hold one table/object")
    return data


def resolve_config(
    *, config_file: Path | None, peers: str | None, cluster_id: str | None,
    shard_count: int | None, secret: str | None,
) -> ClusterConfig:
    """Merge a config file (optional) with flags; a flag that is not None wins over the file."""
    data: dict[str, object] = load_config_file(config_file) if config_file else {}
    if peers is not None:
        data["nodes"] = [
            {"id": n.id, "host": n.host, "http_port": n.http_port, "raft_port": n.raft_port}
            for n in parse_peers(peers)
        ]
    for key, value in (("cluster_id", cluster_id), ("shard_count", shard_count),
                       ("secret", secret)):
        if value is not None:
            data[key] = value
    if not data.get("nodes"):
        raise InvalidClusterConfigError("no nodes given: pass --peers or --config")
    return ClusterConfig.from_dict(data)


def dev_cluster_config(
    *, node_count: int, http_port_base: int, shard_count: int, secret: str,
    cluster_id: str = "dev", raft_port_base: int | None = None, host: str = "127.0.0.1",
) -> ClusterConfig:
    """A local cluster: node i (1-based id `node-i`) serves HTTP on http_port_base + i - 1.

    Raft ports default to http_port_base + 1000 + i - 1, clear of the HTTP range.
    """
    raft_base = http_port_base + 1000 if raft_port_base is None else raft_port_base
    nodes = [
        NodeSpec(id=f"node-{i + 1}", host=host, http_port=http_port_base + i,
                 raft_port=raft_base + i)
        for i in range(node_count)
    ]
    return ClusterConfig.create(cluster_id=cluster_id, shard_count=shard_count, nodes=nodes,
                                secret=secret)


def check_or_persist(data_dir: Path, config: ClusterConfig, node_id: str) -> ClusterConfig:
    """Bind `data_dir` to this cluster and node, or check that it already is.

    First start: writes `cluster.json` durably and returns `config`. Later starts: returns the
    stored configuration after checking that cluster id, shard count and node id match.

    Raises:
        ClusterConfigMismatchError: the data directory belongs to another cluster or node.
        InvalidClusterConfigError: `node_id` is not in `config`, or the stored file is damaged.
    """
    config.node(node_id)  # must be a member
    path = data_dir / CLUSTER_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        stored = {"format_version": _FORMAT_VERSION, "node_id": node_id, **config.to_dict()}
        write_durably(path, json.dumps(stored, indent=2, sort_keys=True).encode("utf-8"))
        return config
    raw = load_config_file(path)
    stored_node_id = raw.pop("node_id", None)
    raw.pop("format_version", None)
    persisted = ClusterConfig.from_dict(raw)
    mismatches = [
        f"{what}: data has {old!r}, flags say {new!r}"
        for what, old, new in (
            ("cluster id", persisted.cluster_id, config.cluster_id),
            ("shard count", persisted.shard_count, config.shard_count),
            ("node id", stored_node_id, node_id),
        )
        if old != new
    ]
    if mismatches:
        raise ClusterConfigMismatchError(
            f"refusing to start: data directory {data_dir} belongs to another cluster or node ("
            + "; ".join(mismatches)
            + "). Use the original flags, or a fresh --data-dir for a new cluster."
        )
    return persisted


def write_durably(path: Path, payload: bytes) -> None:
    """Write a whole file or nothing: temp file, fsync, atomic rename, fsync of the directory."""
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the secret
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # makes the rename itself durable
    finally:
        os.close(dir_fd)
