"""The cluster a chaos run owns: node processes, a link proxy on every directed link, skew files.

Topology. Each node listens on its own HTTP and Raft ports, and reaches every peer through the
proxy of the directed link `a->b` (Raft traffic) and `a->b/http` (forwarded calls, cluster-wide
polls), given to the node with `--dial`. Clients (the workload) talk to nodes directly, as a
client next to a partitioned node would. So the harness can fault one direction of one link,
all links of a node, or split the cluster, without root and on loopback only.

Spare slots. Membership faults join fresh nodes, so the topology is planned for every node the
run may ever have: the first `nodes` slots start as the cluster, the `spares` after them are
ids, ports, skew files and proxied links waiting for a join (`join_spare`). Every node's
`--dial` covers every slot, so a joined node's links go through proxies like the others'.
`node_ids` are the current members, in slot order; a node that left (removed, or killed for
good) is `gone`: it is never restarted or signalled again, and its exit code is kept.

Every process is started here, in its own session, and stopped here by PID (SIGTERM, then
SIGKILL); `stop()` runs even when the run fails, and the temporary directory is removed unless
the caller keeps it.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

from raftflow.bench.credentials import Credentials
from raftflow.chaos.link_control import LinkControl
from raftflow.chaos.link_faults import LinkSpec
from raftflow.chaos.link_process import LinkProxyProcess
from raftflow.cluster.config import (
    ClusterConfig,
    NodeSpec,
    dev_cluster_config,
    served_address,
)
from raftflow.cluster.launcher import RAFT_PORT_OFFSET, LocalCluster, free_port_block
from raftflow.cluster.local_pki import make_local_security

READY_TIMEOUT_S = 60.0
HTTP_LINK_SUFFIX = "/http"


def raft_link(source: str, target: str) -> str:
    return f"{source}->{target}"


def http_link(source: str, target: str) -> str:
    return f"{source}->{target}{HTTP_LINK_SUFFIX}"


class ChaosCluster:
    """N real nodes on 127.0.0.1 behind per-link proxies. Use as a context manager."""

    def __init__(self, root: Path, *, nodes: int, shards: int, seed: int,
                 spares: int = 0, secure: bool = False) -> None:
        assert nodes >= 1 and spares >= 0, (nodes, spares)
        self.root = root
        # HTTPS, mutual TLS on the peer links and auth (a throw-away CA and admin key): the
        # proxies pass TLS through untouched, as they pass any TCP stream.
        self.security = make_local_security(root / "pki") if secure else None
        self.credentials = Credentials.of_local(self.security)
        self._node_count = nodes
        self._spare_count = spares
        self._shards = shards
        self._seed = seed
        self.config: ClusterConfig | None = None
        self._cluster: LocalCluster | None = None
        self._proxy: LinkProxyProcess | None = None
        self._slots: dict[str, NodeSpec] = {}  # every node id the run may have, in order
        self._members: list[str] = []
        self._spares: list[str] = []  # slots not used yet, next first
        self.gone: dict[str, int | None] = {}  # node that left -> its exit code (None: none)
        self._join_args: dict[str, list[str]] = {}  # joined node -> its `raftflow node` flags

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        rng = random.Random()  # ports only: nothing checked depends on them
        slot_count = self._node_count + self._spare_count
        # One block for every port the run binds (node slots, both ports of every proxied
        # link, the proxy's control port): separate probes could hand out one port twice,
        # since none of them is bound yet when the next is probed (a run failed to start so).
        link_count = slot_count * (slot_count - 1)
        base = free_port_block(slot_count + link_count + 1, rng)
        secret = f"chaos-{self._seed}-{rng.getrandbits(64):x}"
        slots = dev_cluster_config(
            node_count=slot_count, http_port_base=base, shard_count=self._shards,
            secret=secret, raft_port_base=base + RAFT_PORT_OFFSET).nodes
        config = dev_cluster_config(
            node_count=self._node_count, http_port_base=base, shard_count=self._shards,
            secret=secret, cluster_id=f"chaos-{self._seed}",
            raft_port_base=base + RAFT_PORT_OFFSET)
        self.config = config
        self._slots = {spec.id: spec for spec in slots}
        self._members = [spec.id for spec in config.nodes]
        self._spares = [spec.id for spec in slots[self._node_count:]]
        pairs = [(a, b) for a in slots for b in slots if a.id != b.id]
        assert len(pairs) == link_count
        proxy_base = base + slot_count
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
        for spec in slots:
            self.skew_file(spec.id).write_text("0")
            args[spec.id] = ["--dial", ",".join(node_args[spec.id]),
                             "--clock-skew-file", str(self.skew_file(spec.id)),
                             *(self.security.node_flags if self.security else ())]
        self._proxy = LinkProxyProcess.start(links, control_port=proxy_base + link_count,
                                             seed=self._seed, log_path=self.root / "links.log")
        self._cluster = LocalCluster(
            config, data_dir, node_args=args,
            tls_ca=None if self.security is None else self.security.ca_cert)
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
        """The current members (joined, not removed, not killed for good), in slot order."""
        return list(self._members)

    @property
    def spares_left(self) -> int:
        return len(self._spares)

    @property
    def local(self) -> LocalCluster:
        assert self._cluster is not None, "cluster not started"
        return self._cluster

    @property
    def links(self) -> LinkControl:
        assert self._proxy is not None, "cluster not started"
        return self._proxy.control

    def address(self, node_id: str) -> str:
        return served_address(self._slots[node_id].http_address, tls=self.security is not None)

    def member_addresses(self) -> dict[str, str]:
        return {node: self.address(node) for node in self._members}

    def addresses(self) -> list[str]:
        return [self.address(n) for n in self.node_ids]

    def skew_file(self, node_id: str) -> Path:
        return self.root / f"{node_id}.skew_ms"

    def exit_code(self, node_id: str) -> int | None:
        """The node process's exit code; None while it runs or if it never ran."""
        process = self.local.processes.get(node_id)
        return None if process is None else process.poll()

    def pid(self, node_id: str) -> int | None:
        process = self.local.processes.get(node_id)
        return None if process is None or process.poll() is not None else process.pid

    # -- faults -------------------------------------------------------------------------------

    def kill(self, node_id: str) -> None:
        assert node_id in self._members, f"{node_id} is not a member: never signal it"
        self.local.kill(node_id, signal.SIGKILL)

    def restart(self, node_id: str) -> None:
        assert node_id in self._members, f"{node_id} is not a member: never restart it"
        if self.pid(node_id) is None:
            self._start(node_id)

    def pause(self, node_id: str) -> None:
        assert node_id in self._members, f"{node_id} is not a member: never signal it"
        self.local.kill(node_id, signal.SIGSTOP)

    def resume(self, node_id: str) -> None:
        if node_id in self._members and self.pid(node_id) is not None:
            self.local.kill(node_id, signal.SIGCONT)

    # -- membership -----------------------------------------------------------------------------

    def join_spare(self) -> str:
        """Start the next spare slot as `raftflow node --join` (asking the current members)
        and make it a member. Its restarts reuse the data dir, which needs no join round."""
        assert self._spares, "no spare slot left"
        assert self.config is not None
        node_id = self._spares.pop(0)
        spec = self._slots[node_id]
        join = [flag for member in self._members for flag in ("--join", self.address(member))]
        self._join_args[node_id] = [
            *join, "--secret", self.config.secret, "--http-address",
            f"{spec.host}:{spec.http_port}", "--raft-address", spec.raft_address,
            *self.local.node_args[node_id]]
        self._start(node_id)
        self._members.append(node_id)
        self._members.sort(key=list(self._slots).index)
        return node_id

    def _start(self, node_id: str) -> None:
        """Start a member's process. A joined node runs `raftflow node --join` (never with
        `--config`, which the launcher adds), registered with the launcher so that signals,
        `pid` and `stop` treat it like the others."""
        args = self._join_args.get(node_id)
        if args is None:
            self.local.start_node(node_id)
            return
        local = self.local
        log = open(local.log_dir / f"{node_id}.log", "ab")  # noqa: SIM115 (owned by the child)
        local.processes[node_id] = subprocess.Popen(
            [sys.executable, "-m", "raftflow", "node", "--id", node_id,
             "--data-dir", str(local.data_dir / node_id), *args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def kill_for_good(self, node_id: str) -> None:
        """SIGKILL `node_id`; it leaves the members at once, so nothing restarts it."""
        self.kill(node_id)
        self._leave(node_id)

    def wait_exit(self, node_id: str, timeout_s: float) -> int | None:
        """Wait for a removed node to exit by itself; its exit code, or None if it did not
        (then it is SIGKILLed, by PID). Either way it is no longer a member."""
        process = self.local.processes[node_id]
        try:
            code: int | None = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
            self.local.kill(node_id, signal.SIGKILL)
        self._leave(node_id, code)
        return code

    def _leave(self, node_id: str, code: int | None = None) -> None:
        assert node_id in self._members, node_id
        self._members.remove(node_id)
        self.gone[node_id] = code

    def set_skew_ms(self, node_id: str, skew_ms: int) -> None:
        path = self.skew_file(node_id)
        temp = path.with_suffix(".tmp")
        temp.write_text(str(skew_ms))
        temp.replace(path)  # the node never reads half a number

    def links_between(self, sources: list[str], targets: list[str]) -> list[str]:
        """Every link (Raft and HTTP) from a node of `sources` to a node of `targets`."""
        return [name for a in sources for b in targets if a != b
                for name in (raft_link(a, b), http_link(a, b))]
