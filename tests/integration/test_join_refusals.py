"""`raftflow node --join` refusals: a wrong secret, and a data directory of another cluster.

Goal: a node that does not know the cluster secret is refused (403 permission_denied, logged on
the node it asked) and exits 2 without binding its data directory; a data directory that
belongs to another cluster is refused before anything starts, as with `--peers`.
Method: real node processes (tests/integration/conftest.py) and the real CLI as a subprocess.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from raftflow.cluster.config import check_or_persist, dev_cluster_config
from raftflow.cluster.launcher import LocalCluster, free_port_block


def _join(cluster: LocalCluster, data_dir: Path, secret: str) -> subprocess.CompletedProcess[str]:
    port = free_port_block(1, random.Random())
    return subprocess.run(
        [sys.executable, "-m", "raftflow", "node", "--id", "node-9", "--data-dir", str(data_dir),
         "--join", cluster.address(cluster.node_ids[0]), "--secret", secret,
         "--http-address", f"127.0.0.1:{port}", "--raft-address", f"127.0.0.1:{port + 1000}"],
        capture_output=True, text=True, timeout=60)


def test_a_wrong_secret_is_refused_and_logged(cluster: LocalCluster, tmp_path: Path) -> None:
    data_dir = tmp_path / "node-9"
    done = _join(cluster, data_dir, "not-the-secret")
    assert done.returncode == 2, done.stderr
    assert "refused to admit node-9" in done.stderr and "permission_denied" in done.stderr
    assert not (data_dir / "cluster.json").exists()
    logs = "".join((cluster.log_dir / f"{n}.log").read_text(errors="replace")
                   for n in cluster.node_ids)
    assert "refused a join request" in logs and "'node-9'" in logs


def test_a_data_directory_of_another_cluster_is_refused(cluster: LocalCluster,
                                                         tmp_path: Path) -> None:
    data_dir = tmp_path / "other"
    other = dev_cluster_config(node_count=9, http_port_base=31000, shard_count=4,
                               secret=cluster.config.secret, cluster_id="another-cluster")
    check_or_persist(data_dir, other, "node-9")
    done = _join(cluster, data_dir, cluster.config.secret)
    assert done.returncode == 2, done.stderr
    assert "belongs to cluster 'another-cluster'" in done.stderr
