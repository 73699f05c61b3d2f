"""Run the real `raftflow` CLI against a test cluster (not a test module)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from raftflow.cluster.launcher import LocalCluster

CLI_TIMEOUT_S = 60


def cli_json(cluster: LocalCluster, *args: str, node: int = 1) -> Any:
    """`python -m raftflow ARGS --json` aimed at the cluster's `node`-th node; the printed
    JSON. Fails the test if the command fails."""
    done = subprocess.run([sys.executable, "-m", "raftflow", *args, "--json", "--address",
                           cluster.address(cluster.node_ids[node])],
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
