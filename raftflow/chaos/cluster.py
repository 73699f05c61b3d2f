"""The cluster a chaos run owns: node processes, a link proxy on every directed link, skew files.

Topology. Each node listens on its own HTTP and Raft ports, and reaches every peer through the
proxy of the directed link `a->b` (Raft traffic) and `a->b/http` (forwarded calls, cluster-wide
polls), given to the node with `--dial`. Clients (the workload) talk to nodes directly, as a
client next to a partitioned node would. So the harness can fault one direction of one link,
all links of a node, or split the cluster, without root and on loopback only.

Every process is started here, in its own session, and stopped here by PID (SIGTERM, then
SIGKILL); `stop()` runs even when the run fails, and the temporary directory is removed unless
the caller keeps it.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

from raftflow.chaos.link_control import LinkControl
from raftflow.chaos.link_faults import LinkSpec
from raftflow.chaos.link_process import LinkProxyProcess
from raftflow.cluster.config import ClusterConfig, dev_cluster_config
from raftflow.cluster.launcher import RAFT_PORT_OFFSET, LocalCluster, free_port_block

READY_TIMEOUT_S = 60.0
HTTP_LINK_SUFFIX = "/http"


def raft_link(source: str, target: str) -> str:
    return f"{source}->{target}"


def http_link(source: str, target: str) -> str:
    return f"{source}->{target}{HTTP_LINK_SUFFIX}"


class ChaosCluster:
    """N real nodes on 127.0.0.1 behind per-link proxies. Use as a context manager."""

    def __init__(self, root: Path, *, nodes: int, shards: int, seed: int) -> None:
        self.root = root
        self._node_count = nodes
        self._shards = shards
        self._seed = seed
        self.config: ClusterConfig | None = None
        self._cluster: LocalCluster | None = None
        self._proxy: LinkProxyProcess | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        rng = random.Random()  # ports only: nothing checked depends on them
        base = free_port_block(self._node_count, rng)
        config = dev_cluster_config(
            node_count=self._node_count, http_port_base=base, shard_count=self._shards,
            secret=f"chaos-{self._seed}-{rng.getrandbits(64):x}", cluster_id=f"chaos-{self._seed}",
            raft_port_base=base + RAFT_PORT_OFFSET)
        self.config = config
        pairs = [(a, b) for a in config.nodes for b in config.nodes if a.id != b.id]
        proxy_base = free_port_block(len(pairs), rng)
        links: list[LinkSpec] = []
        node_args: dict[str, list[str]] = {}
        for i, (source, target) in enumerate(pairs):
            raft_port, http_port = proxy_base + i, proxy_base + i + RAFT_PORT_OFFSET
            links.append(LinkSpec(name=raft_link(source.id, target.id), listen_port=raft_port,
                                  target_port=target.raft_port))
            links.append(LinkSpec(name=http_link(source.id, target.id), listen_port=http_port,
                                  target_port=target.http_port))
            dial = node_args.setdefault(source.id, [])
            dial.append(f"{target.id}=127.0.0.1:{http_port}:{raft_port}")
        data_dir = self.root / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        args: dict[str, list[str]] = {}
        for spec in config.nodes:
            self.skew_file(spec.id).write_text("0")
            args[spec.id] = ["--dial", ",".join(node_args[spec.id]),
                             "--clock-skew-file", str(self.skew_file(spec.id))]
        self._proxy = LinkProxyProcess.start(links, control_port=free_port_block(1, rng),
                                             seed=self._seed, log_path=self.root / "links.log")
        self._cluster = LocalCluster(config, data_dir, node_args=args)
        self._cluster.start()
        self._cluster.wait_ready(READY_TIMEOUT_S)

    def stop(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
        if self._proxy is not None:
            self._proxy.stop()

    def __enter__(self) -> ChaosCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what the run reads ----------------------------------------------------------------

    @property
    def node_ids(self) -> list[str]:
        return self.local.node_ids

    @property
    def local(self) -> LocalCluster:
        assert self._cluster is not None, "cluster not started"
        return self._cluster

    @property
    def links(self) -> LinkControl:
        assert self._proxy is not None, "cluster not started"
        return self._proxy.control

    def address(self, node_id: str) -> str:
        return self.local.address(node_id)

    def addresses(self) -> list[str]:
        return [self.address(n) for n in self.node_ids]

    def skew_file(self, node_id: str) -> Path:
        return self.root / f"{node_id}.skew_ms"

    def pid(self, node_id: str) -> int | None:
        process = self.local.processes.get(node_id)
        return None if process is None or process.poll() is not None else process.pid

    # -- faults -------------------------------------------------------------------------------

    def kill(self, node_id: str) -> None:
        self.local.kill(node_id, signal.SIGKILL)

    def restart(self, node_id: str) -> None:
        if self.pid(node_id) is None:
            self.local.start_node(node_id)

    def pause(self, node_id: str) -> None:
        self.local.kill(node_id, signal.SIGSTOP)

    def resume(self, node_id: str) -> None:
        if self.pid(node_id) is not None:
            self.local.kill(node_id, signal.SIGCONT)

    def set_skew_ms(self, node_id: str, skew_ms: int) -> None:
        path = self.skew_file(node_id)
        temp = path.with_suffix(".tmp")
        temp.write_text(str(skew_ms))
        temp.replace(path)  # the node never reads half a number

    def links_between(self, sources: list[str], targets: list[str]) -> list[str]:
        """Every link (Raft and HTTP) from a node of `sources` to a node of `targets`."""
        return [name for a in sources for b in targets if a != b
                for name in (raft_link(a, b), http_link(a, b))]
