"""Fuzz the HTTP API against its own OpenAPI document, on a live 3-node dev cluster.

`make fuzz` runs this: it starts a cluster on free loopback ports in a temp dir, points
schemathesis at the document the cluster serves (`/api/v1/openapi.json`), and stops the
cluster whatever happens. Schemathesis generates requests from the document and checks every
answer: no undocumented 5xx, and status code, content type and body as documented. The exit
status is schemathesis's (0 only when no check failed); its summary names the failures.

Not a test module: it needs the `schemathesis` command and takes a minute or two.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from raftflow.cluster.launcher import LocalCluster, free_port_block, load_or_create_dev_config

EXAMPLES_PER_OPERATION = 20
RUN_TIMEOUT_S = 600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=EXAMPLES_PER_OPERATION)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    schemathesis = Path(sys.executable).parent / "schemathesis"
    with tempfile.TemporaryDirectory(prefix="raftflow-fuzz-") as tmp:
        data_dir = Path(tmp) / "data"
        config = load_or_create_dev_config(data_dir, nodes=3, shards=4,
                                           http_port=free_port_block(3, random.Random()))
        cluster = LocalCluster(config, data_dir)
        cluster.start()
        try:
            cluster.wait_ready()
            address = cluster.address(cluster.node_ids[0])
            command = [str(schemathesis), "run", f"{address}/api/v1/openapi.json",
                       "--checks", "all", "--max-examples", str(args.max_examples),
                       "--seed", str(args.seed), "--workers", "1",
                       "--phases", "examples,coverage,fuzzing"]
            print(" ".join(command), flush=True)
            return subprocess.run(command, timeout=RUN_TIMEOUT_S, check=False).returncode
        finally:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
