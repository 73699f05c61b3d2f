"""In-process Raft hosts on loopback for raftlog tests: real pysyncobj groups, real TCP, real
fsync, all on one asyncio loop so a test can watch every replica."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import msgpack

from raftflow.raftlog.host import RaftHost
from raftflow.raftlog.interface import ShardId
from tests import ports


def free_port() -> int:
    return ports.free_port()  # this worker's range, below the ephemeral ports


def free_ports(count: int) -> list[int]:
    """`count` distinct ports of this worker's range, below the ephemeral ports."""
    picked: list[int] = []
    for _ in range(count):
        picked.append(ports.free_port(besides=frozenset(picked)))
    assert len(set(picked)) == count
    return picked


class ListConsumer:
    """A state machine whose state is the list of applied entries."""

    def __init__(self) -> None:
        self.applied: list[tuple[int, bytes]] = []
        self.leader = False

    def apply_entry(self, index: int, data: bytes) -> None:
        assert not self.applied or index > self.applied[-1][0], (index, self.applied[-1][0])
        self.applied.append((index, data))

    def take_snapshot(self) -> bytes:
        return bytes(msgpack.packb(self.applied, use_bin_type=True))

    def restore_snapshot(self, data: bytes, index: int) -> None:
        self.applied = [(i, d) for i, d in msgpack.unpackb(data, raw=False)]
        # The snapshot covers the log up to `index`: nothing in it was applied beyond that.
        assert not self.applied or self.applied[-1][0] <= index, (self.applied[-1][0], index)

    def on_leadership(self, is_leader: bool, term: int) -> None:
        self.leader = is_leader

    def transfer_snapshot(self) -> bytes | None:
        return None  # the snapshot file holds everything

    def discard(self) -> None:
        self.discarded = True


class StoreConsumer(ListConsumer):
    """Keeps its state in a file of its own, like the shard store: its snapshot is a manifest,
    a peer in need gets a copy of the file, and a replay of entries the file already holds
    (the copy may be ahead of the manifest it travels with) is skipped."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.images_installed = 0
        if os.path.exists(path):
            with open(path, "rb") as f:
                self.applied = [(i, d) for i, d in msgpack.unpackb(f.read(), raw=False)]

    def apply_entry(self, index: int, data: bytes) -> None:
        if self.applied and index <= self.applied[-1][0]:
            return  # already in the file
        super().apply_entry(index, data)

    def _save(self) -> None:
        with open(self.path, "wb") as f:
            f.write(bytes(msgpack.packb(self.applied, use_bin_type=True)))

    def take_snapshot(self) -> bytes:
        self._save()
        return b"manifest"

    def transfer_snapshot(self) -> bytes | None:
        return b"image" + super().take_snapshot()

    def restore_snapshot(self, data: bytes, index: int) -> None:
        if data == b"manifest":
            assert self.applied and self.applied[-1][0] >= index, "the file is behind"
            return
        assert data.startswith(b"image"), data[:16]
        self.applied = [(i, d) for i, d in msgpack.unpackb(data[5:], raw=False)]
        self.images_installed += 1
        self._save()


class Cluster:
    def __init__(self, data_dir: str, size: int = 3, groups: int = 1, secret: bytes = b"s",
                 stores: bool = False) -> None:
        self.stores = stores
        self.data_dir = data_dir
        self.groups = groups
        self.secret = secret
        self.addresses = {f"n{i}": ("127.0.0.1", port)
                          for i, port in enumerate(free_ports(size))}
        self.hosts: dict[str, RaftHost] = {}
        self.consumers: dict[tuple[str, int], ListConsumer] = {}
        self.stores = stores

    async def start_node(self, node_id: str, secret: bytes | None = None) -> RaftHost:
        peers = {k: v for k, v in self.addresses.items() if k != node_id}
        host = RaftHost(node_id=node_id, data_dir=f"{self.data_dir}/{node_id}",
                        listen=self.addresses[node_id], peers=peers,
                        secret=self.secret if secret is None else secret)
        await host.start()
        for g in range(self.groups):
            consumer = (StoreConsumer(f"{self.data_dir}/{node_id}/store-{g}") if self.stores
                        else ListConsumer())
            self.consumers[(node_id, g)] = consumer
            host.add_group(ShardId(g), sorted(self.addresses), consumer)
        self.hosts[node_id] = host
        return host

    async def start(self) -> None:
        for node_id in self.addresses:
            await self.start_node(node_id)

    async def stop_node(self, node_id: str) -> None:
        await self.hosts.pop(node_id).stop()

    async def stop(self) -> None:
        for node_id in list(self.hosts):
            await self.stop_node(node_id)

    def leader(self, group: int = 0) -> RaftHost | None:
        leaders = [h for h in self.hosts.values() if h.groups[group].is_leader()]
        return leaders[0] if leaders else None

    async def wait_for(self, predicate: Callable[[], Any], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.01)

    async def wait_leader(self, group: int = 0, timeout_s: float = 10.0) -> RaftHost:
        await self.wait_for(lambda: self.leader(group) is not None, timeout_s)
        leader = self.leader(group)
        assert leader is not None
        return leader
