"""Goal: a node builds its cluster configuration from flags or a file, binds its data directory
to it durably at first start, and refuses data from another cluster, shard layout or node.

Method: table-driven parsing and validation cases; first and later starts against a pytest
tmp_path data directory, including a simulated crash that left only a temp file behind;
hypothesis round-trips configurations through `cluster.json`.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftflow.cluster.config import (
    CLUSTER_FILE_NAME,
    ClusterConfig,
    ClusterConfigMismatchError,
    InvalidClusterConfigError,
    NodeSpec,
    check_or_persist,
    dev_cluster_config,
    parse_peers,
    resolve_config,
)

PEERS = "n1=127.0.0.1:8080:9080,n2=127.0.0.1:8081:9081,n3=127.0.0.1:8082:9082"


def _config(cluster_id: str = "c1", shard_count: int = 16) -> ClusterConfig:
    return resolve_config(config_file=None, peers=PEERS, cluster_id=cluster_id,
                          shard_count=shard_count, secret="s3cret")


def test_parse_peers() -> None:
    nodes = parse_peers(PEERS + ", n4=[::1]:8083:9083")
    assert [n.id for n in nodes] == ["n1", "n2", "n3", "n4"]
    assert nodes[0] == NodeSpec(id="n1", host="127.0.0.1", http_port=8080, raft_port=9080)
    assert nodes[3].host == "::1"
    assert nodes[3].http_address == "http://[::1]:8083"
    assert nodes[1].raft_address == "127.0.0.1:9081"


@pytest.mark.parametrize("peers", ["", "n1", "n1=host:80", "n1=host:http:90", "=h:1:2"])
def test_bad_peers_are_refused(peers: str) -> None:
    with pytest.raises(InvalidClusterConfigError):
        resolve_config(config_file=None, peers=peers, cluster_id="c", shard_count=None,
                       secret="s")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cluster_id": "bad id"}, "cluster id"),
        ({"shard_count": 0}, "shard count"),
        ({"shard_count": 5000}, "shard count"),
        ({"secret": ""}, "secret"),
        ({"peers": "n1=h:1:2,n1=h:3:4"}, "distinct"),
        ({"peers": "n1=h:1:2,n2=h:2:3"}, "used twice"),
        ({"peers": "n1=h:0:2"}, "invalid port"),
    ],
)
def test_invalid_configs_name_the_problem(change: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"config_file": None, "peers": PEERS, "cluster_id": "c1",
                               "shard_count": 16, "secret": "s"} | change
    with pytest.raises(InvalidClusterConfigError, match=message):
        resolve_config(**args)  # type: ignore[arg-type]


def test_shard_count_defaults_to_16_and_secret_is_not_printed() -> None:
    config = resolve_config(config_file=None, peers=PEERS, cluster_id="c1", shard_count=None,
                            secret="hunter2")
    assert config.shard_count == 16
    assert "hunter2" not in repr(config)


def test_json_and_toml_files_load_and_flags_win(tmp_path: Path) -> None:
    json_file = tmp_path / "cluster.json"
    json_file.write_text(json.dumps(_config().to_dict()))
    assert resolve_config(config_file=json_file, peers=None, cluster_id=None, shard_count=None,
                          secret=None) == _config()
    toml_file = tmp_path / "cluster.toml"
    toml_file.write_text(
        'cluster_id = "prod"\nshard_count = 32\nsecret = "x"\n'
        '[[nodes]]\nid = "a"\nhost = "10.0.0.1"\nhttp_port = 8080\nraft_port = 9080\n'
    )
    config = resolve_config(config_file=toml_file, peers=None, cluster_id=None,
                            shard_count=64, secret=None)
    assert (config.cluster_id, config.shard_count, config.nodes[0].host) == ("prod", 64, "10.0.0.1")


def test_unreadable_or_malformed_files_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("cluster_id = ")
    for path in (broken, tmp_path / "missing.json"):
        with pytest.raises(InvalidClusterConfigError, match=str(path)):
            resolve_config(config_file=path, peers=None, cluster_id=None, shard_count=None,
                           secret=None)


def test_first_start_persists_then_later_start_accepts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "n1"
    assert check_or_persist(data_dir, _config(), "n1") == _config()
    stored = json.loads((data_dir / CLUSTER_FILE_NAME).read_text())
    assert (stored["cluster_id"], stored["node_id"], stored["shard_count"]) == ("c1", "n1", 16)
    assert stat.S_IMODE((data_dir / CLUSTER_FILE_NAME).stat().st_mode) == 0o600
    assert not list(data_dir.glob("*.tmp"))
    # Membership may change between starts; the stored configuration is returned.
    moved = resolve_config(config_file=None, peers=PEERS + ",n4=127.0.0.1:8083:9083",
                           cluster_id="c1", shard_count=16, secret="s3cret")
    assert check_or_persist(data_dir, moved, "n1") == _config()


@pytest.mark.parametrize(
    ("config", "node_id", "message"),
    [
        (_config(cluster_id="c2"), "n1", "cluster id: data has 'c1', flags say 'c2'"),
        (_config(shard_count=32), "n1", "shard count: data has 16, flags say 32"),
        (_config(), "n2", "node id: data has 'n1', flags say 'n2'"),
    ],
)
def test_later_start_with_other_identity_is_refused(
    tmp_path: Path, config: ClusterConfig, node_id: str, message: str
) -> None:
    check_or_persist(tmp_path, _config(), "n1")
    with pytest.raises(ClusterConfigMismatchError, match=message):
        check_or_persist(tmp_path, config, node_id)
    assert json.loads((tmp_path / CLUSTER_FILE_NAME).read_text())["cluster_id"] == "c1"


def test_unknown_node_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidClusterConfigError, match="not in the cluster"):
        check_or_persist(tmp_path, _config(), "n9")
    assert not (tmp_path / CLUSTER_FILE_NAME).exists()


def test_crash_before_rename_counts_as_first_start(tmp_path: Path) -> None:
    (tmp_path / (CLUSTER_FILE_NAME + ".tmp")).write_text('{"cluster_id": "half')
    assert check_or_persist(tmp_path, _config(), "n1") == _config()
    assert json.loads((tmp_path / CLUSTER_FILE_NAME).read_text())["cluster_id"] == "c1"


def test_dev_cluster_config() -> None:
    config = dev_cluster_config(node_count=3, http_port_base=8080, shard_count=8, secret="s")
    assert [(n.id, n.http_port, n.raft_port) for n in config.nodes] == [
        ("node-1", 8080, 9080), ("node-2", 8081, 9081), ("node-3", 8082, 9082)]
    assert config.node("node-2").http_address == "http://127.0.0.1:8081"


ids = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,15}", fullmatch=True)


@given(cluster_id=ids, shard_count=st.integers(1, 4096),
       node_ids=st.lists(ids, min_size=1, max_size=7, unique=True),
       secret=st.text(min_size=1, max_size=30))
def test_to_dict_from_dict_round_trip(
    cluster_id: str, shard_count: int, node_ids: list[str], secret: str
) -> None:
    nodes = [NodeSpec(id=n, host="127.0.0.1", http_port=10_000 + i, raft_port=20_000 + i)
             for i, n in enumerate(node_ids)]
    config = ClusterConfig.create(cluster_id=cluster_id, shard_count=shard_count, nodes=nodes,
                                  secret=secret)
    assert ClusterConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
