"""The meta group's consumer (cluster/map_replica.py) over a log that commits on the spot.

Goal: a new leader founds the cluster with its genesis map, and only the first genesis entry
counts; a command's caller gets the machine's answer for its own entry; a follower applies the
same entries to the same map; a snapshot restores the map; a lost leadership fails the waiting
callers with not_leader (their command may still apply: they retry with the same request id).
Method: `InstantLog` appends every proposal to a shared list and applies it to every replica at
once, on the test's event loop; leadership is set by the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from raftflow.actors.errors import NotLeaderError
from raftflow.cluster.cluster_map import (
    AdmitMember,
    ClusterMap,
    DrainMember,
    MapApplied,
    MapRefused,
    genesis_map,
)
from raftflow.cluster.map_replica import MapReplica

NODES = [(f"node-{i}", f"http://127.0.0.1:{8000 + i}", "127.0.0.1", 9000 + i) for i in (1, 2, 3)]
GENESIS = genesis_map("test", 4, NODES)


class InstantLog:
    """Every replica's view of one group whose proposals commit as they are made."""

    def __init__(self, replicas: list[MapReplica]) -> None:
        self.replicas = replicas
        self.entries: list[bytes] = []
        self.leader: MapReplica | None = None
        self.drop_next = False

    def view(self, replica: MapReplica) -> _View:
        return _View(self, replica)


class _View:
    def __init__(self, log: InstantLog, replica: MapReplica) -> None:
        self._log = log
        self._replica = replica

    def propose(self, data: bytes, on_failed: Callable[[str], None]) -> None:
        if self._log.drop_next:
            self._log.drop_next = False
            return  # lost in flight: neither applied nor reported
        self._log.entries.append(data)
        for replica in self._log.replicas:
            replica.apply_entry(len(self._log.entries), data)

    def after_durable(self, callback: Callable[[], None]) -> None:
        callback()

    def is_leader(self) -> bool:
        return self._log.leader is self._replica


def _group(count: int = 2) -> tuple[InstantLog, list[MapReplica], list[ClusterMap]]:
    changes: list[ClusterMap] = []
    replicas = [MapReplica(genesis=GENESIS, on_change=changes.append) for _ in range(count)]
    log = InstantLog(replicas)
    for replica in replicas:
        replica.bind(log.view(replica))  # type: ignore[arg-type]
    return log, replicas, changes


def _lead(log: InstantLog, replica: MapReplica) -> None:
    for other in log.replicas:
        if other is not replica and log.leader is other:
            other.on_leadership(False, 1)
    log.leader = replica
    replica.on_leadership(True, 2)


def _admit(request_id: str = "join-4") -> AdmitMember:
    return AdmitMember(request_id=request_id, node_id="node-4",
                       http_address="http://127.0.0.1:8004", raft_host="127.0.0.1",
                       raft_port=9004)


def test_a_new_leader_founds_the_map_and_commands_get_their_answers() -> None:
    async def scenario() -> None:
        log, (first, second), changes = _group()
        assert first.map is None
        _lead(log, first)
        await asyncio.sleep(0)  # the genesis proposal is made on the next loop turn
        assert first.map == second.map == GENESIS and changes == [GENESIS, GENESIS]
        result = await first.execute(_admit())
        assert isinstance(result, MapApplied) and result.epoch == 1
        assert first.map == second.map and first.map is not None
        assert first.map.member("node-4") is not None
        again = await first.execute(_admit())  # a retry gets the first answer
        assert again == result and first.map.epoch == 1
        refused = await first.execute(DrainMember(request_id="drain-9", node_id="node-9"))
        assert isinstance(refused, MapRefused)
        # A second leader's genesis comes after the first: it changes nothing.
        _lead(log, second)
        await asyncio.sleep(0)
        assert second.map is not None and second.map.epoch == 1
        # genesis, the admit, its retry, the refused drain: and no second genesis
        assert len(log.entries) == 4

    asyncio.run(scenario())


def test_a_follower_cannot_execute_and_lost_leadership_fails_the_waiting_caller() -> None:
    async def scenario() -> None:
        log, (first, second), _ = _group()
        _lead(log, first)
        await asyncio.sleep(0)
        with pytest.raises(NotLeaderError):
            await second.execute(_admit())
        log.drop_next = True
        waiting = asyncio.ensure_future(first.execute(_admit("join-lost")))
        await asyncio.sleep(0)
        first.on_leadership(False, 2)
        with pytest.raises(NotLeaderError):
            await waiting

    asyncio.run(scenario())


def test_a_snapshot_restores_the_map() -> None:
    async def scenario() -> None:
        log, (first, _), _ = _group()
        _lead(log, first)
        await asyncio.sleep(0)
        await first.execute(_admit())
        changes: list[ClusterMap] = []
        joined = MapReplica(genesis=None, on_change=changes.append)
        joined.restore_snapshot(first.take_snapshot(), len(log.entries))
        assert joined.map == first.map and changes == [first.map]

    asyncio.run(scenario())
