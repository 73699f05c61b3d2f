"""The parsers of the server subcommands: `raftflow node` and `raftflow dev` (their code lives in
`raftflow.node` and `raftflow.cluster`, imported only when used)."""

from __future__ import annotations

import argparse

from raftflow.cluster.limit_flags import add_limit_arguments
from raftflow.cluster.observability_flags import add_observability_arguments
from raftflow.cluster.security_flags import add_security_arguments


def add_server_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = commands.add_parser("node", help="run one node of a cluster")
    node.add_argument("--id", required=True, help="this node's id, as listed in the peers")
    node.add_argument("--data-dir", required=True, help="directory for logs and snapshots")
    peers = node.add_mutually_exclusive_group(required=True)
    peers.add_argument("--config", metavar="FILE", help="cluster config file (.json or .toml)")
    peers.add_argument("--peers", help='all nodes: "id=host:http_port:raft_port,..."')
    peers.add_argument("--join", metavar="URL", action="append",
                       help="join the running cluster of this node's HTTP URL (repeatable; "
                            "needs --secret, --http-address and --raft-address)")
    node.add_argument("--http-address", metavar="HOST:PORT", default=None,
                      help="with --join: where this node serves HTTP")
    node.add_argument("--raft-address", metavar="HOST:PORT", default=None,
                      help="with --join: where this node listens for Raft peers")
    node.add_argument("--shards", type=int, default=None,
                      help="shard count (default 16, or the config file's value)")
    node.add_argument("--cluster-id", default=None)
    node.add_argument("--secret", default=None, help="shared secret of the cluster's Raft links")
    node.add_argument("--dial", default=None, metavar="PEERS",
                      help="reach these peers at other addresses than their own, same format "
                           "as --peers (the chaos harness routes links through fault proxies)")
    node.add_argument("--clock-skew-file", default=None, metavar="FILE",
                      help="shift this node's wall clock by the milliseconds in FILE, re-read "
                           "while running (chaos clock-skew fault; the monotonic clock is "
                           "never shifted)")
    node.set_defaults(server=("raftflow.node.serve", "run_node"))

    dev = commands.add_parser("dev", help="run a local development cluster")
    dev.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    dev.add_argument("--data-dir", default="data", help="directory holding one dir per node")
    dev.add_argument("--http-port", type=int, default=8080,
                     help="node i serves HTTP on this port + i (default 8080)")
    dev.add_argument("--shards", type=int, default=16, help="shard count (default 16)")
    dev.add_argument("--worker-command", default=None, metavar="CMD",
                     help="a worker to run once the cluster is ready (its environment gets "
                          "RAFTFLOW_ADDRESSES=url,url,...); stopped with the cluster")
    dev.add_argument("--no-restart", action="store_true",
                     help="leave a node that dies dead (by default it is restarted, with "
                          "back-off from 0.5 s up to 10 s)")
    dev.set_defaults(server=("raftflow.cluster.dev", "run_dev"))
    for parser in (node, dev):
        add_security_arguments(parser)  # dev passes them to its nodes
        add_limit_arguments(parser)  # so does it these
        add_observability_arguments(parser)  # and these (--log-level, --log-format, ...)
