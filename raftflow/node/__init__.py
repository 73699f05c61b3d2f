"""The node's composition root: builds one node process from every other package.

`runtime.NodeRuntime` wires the Raft host, the shard actors, the matcher and the HTTP gateway;
`serve` runs it until a signal (`raftflow node`). Nothing below this package imports it.
"""
