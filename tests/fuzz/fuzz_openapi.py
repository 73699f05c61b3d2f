"""Fuzz the HTTP API against its own OpenAPI document, on a live 3-node dev cluster.

`make fuzz` runs this: it starts a cluster on free loopback ports in a temp dir, points
schemathesis at the document the cluster serves (`/api/v1/openapi.json`), and stops the
cluster whatever happens. Schemathesis generates requests from the document and checks every
answer (`--checks all`): no 5xx but the documented 503/504 (schemathesis.toml), and status
code, content type and body as documented. Long polls are given short waits
(bounded_waits.py), and the request timeout is above the 60 s long-poll bound. The exit status
is schemathesis's (0 only when no check failed); its summary names the failures.
tests/fuzz/test_fuzz_openapi.py runs it in `make test`.

`--secure` runs the cluster with HTTPS, mutual TLS on the peer links and auth (a throw-away CA
and admin key, cluster/local_pki.py); the document then declares its security schemes and
401/403, and schemathesis also sends bad credentials to every operation that needs them and
expects 401 or 403 (its ST401 checks). With `--no-token` it sends none of its own: every
secured operation must answer its documented 401.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from raftflow.cluster.launcher import LocalCluster, free_port_block, load_or_create_dev_config
from raftflow.cluster.local_pki import make_local_security

EXAMPLES_PER_OPERATION = 20
RUN_TIMEOUT_S = 600
# Above the longest documented wait (60 s) plus a forwarding hop: a slow answer is an answer.
REQUEST_TIMEOUT_S = 75
# A long poll answers within its wait (at most 60 s) plus a hop; slower is a failure.
RESPONSE_TIME_S_MAX = 65
HERE = Path(__file__).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=EXAMPLES_PER_OPERATION)
    parser.add_argument("--seed", type=int, default=1)
    # One worker: schemathesis's generation threads trip a CPython 3.11 bug ("AST constructor
    # recursion depth mismatch") when they compile patterns at the same time.
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--secure", action="store_true")
    parser.add_argument("--no-token", action="store_true")
    args = parser.parse_args()
    schemathesis = Path(sys.executable).parent / "schemathesis"
    with tempfile.TemporaryDirectory(prefix="raftflow-fuzz-") as tmp:
        data_dir = Path(tmp) / "data"
        config = load_or_create_dev_config(data_dir, nodes=3, shards=4,
                                           http_port=free_port_block(3, random.Random()))
        security = make_local_security(Path(tmp) / "pki") if args.secure else None
        cluster = LocalCluster(config, data_dir, node_args={
            n.id: list(security.node_flags) if security else [] for n in config.nodes},
            tls_ca=None if security is None else security.ca_cert)
        cluster.start()
        try:
            cluster.wait_ready()
            address = cluster.address(cluster.node_ids[0])
            command = [str(schemathesis), "--config-file", str(HERE / "schemathesis.toml"),
                       "run", f"{address}/api/v1/openapi.json",
                       "--checks", "all", "--max-examples", str(args.max_examples),
                       "--seed", str(args.seed), "--workers", str(args.workers),
                       "--request-timeout", str(REQUEST_TIMEOUT_S),
                       "--max-response-time", str(RESPONSE_TIME_S_MAX),
                       "--phases", "examples,coverage,fuzzing", "--no-color",
                       # No example database: a run depends on its seed alone, and writes
                       # nothing into the checkout.
                       "--generation-database", "none"]
            if security is not None:
                command += ["--tls-verify", str(security.ca_cert)]
                if not args.no_token:
                    command += ["--header", f"Authorization: Bearer {security.api_key}"]
            print(" ".join(command), flush=True)
            environment = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.fuzz_hooks",
                           "PYTHONPATH": str(HERE.parent.parent)}
            return subprocess.run(command, timeout=RUN_TIMEOUT_S, check=False,
                                  env=environment).returncode
        finally:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
