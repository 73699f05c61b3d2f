"""Reads the cluster's side of the evidence once a chaos run is quiet: runs, histories, digests.

Runs are read through the public API (linearizable reads on each shard's leader): the run of
every acknowledged start, and the latest run of every workflow id the cluster lists as still
RUNNING (that catches a run nobody was told about, and a second run of one id).

Replica digests are only comparable at the same applied index. Committed entries reach the
followers a heartbeat or so after the leader, so the collector asks every node until, for every
shard, all its replicas report one applied index twice in a row (or the wait runs out, and the
checker then reports the replicas that never converged).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import aiohttp
import msgspec

from raftflow.bench.credentials import Credentials
from raftflow.chaos.observations import ReplicaDigest, RunRecord, StartAck
from raftflow.protocol.history_json import event_json, payload_json
from raftflow.protocol.http_answers import NodeDigests
from raftflow.sdk import Client
from raftflow.sdk.errors import RPCError

READ_CONCURRENCY = 16
DIGEST_WAIT_S = 30.0
DIGEST_POLL_S = 0.5
LIST_LIMIT = 1000  # the API's maximum; more open runs at quiescence is a failed run anyway


async def read_runs(client: Client, starts: Iterable[StartAck],
                    others: Iterable[tuple[str, str]] = ()) -> tuple[list[RunRecord], list[str]]:
    """Every run worth checking (those of `starts`, the `others` (workflow id, run id), and
    every open one), and the ids of the workflows the cluster lists as open."""
    listed = await client.list_workflows("ExecutionStatus = 'Running'", page_size=LIST_LIMIT)
    listed_ids = sorted({execution.id for execution in listed})
    wanted: dict[tuple[str, str | None], None] = {(wid, None): None for wid in listed_ids}
    for start in starts:
        wanted[(start.plan.workflow_id, start.run_id)] = None
    for workflow_id, run_id in others:
        wanted[(workflow_id, run_id)] = None
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def one(workflow_id: str, run_id: str | None) -> RunRecord | None:
        async with gate:
            return await _read_run(client, workflow_id, run_id)

    found = await asyncio.gather(*(one(wid, rid) for wid, rid in wanted))
    unique = {(r.workflow_id, r.run_id): r for r in found if r is not None}
    return sorted(unique.values(), key=lambda r: (r.workflow_id, r.run_id)), listed_ids


async def _read_run(client: Client, workflow_id: str, run_id: str | None) -> RunRecord | None:
    try:
        described = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    except RPCError as error:
        if error.code == "not_found":  # a run the cluster cannot find is evidence
            return None
        raise
    history = await client.get_workflow_handle(workflow_id, run_id=described.run_id).history()
    d = described.description
    return RunRecord(
        workflow_id=workflow_id, run_id=described.run_id, status=described.status.value,
        result=None if d.result is msgspec.UNSET else payload_json(d.result),
        pending_activity_count=d.pending_activity_count,
        pending_timer_count=d.pending_timer_count,
        pending_workflow_task=d.workflow_task_pending,
        history=tuple(event_json(e) for e in history.events))


async def read_digests(addresses: dict[str, str], credentials: Credentials | None = None,
                       ) -> list[ReplicaDigest]:
    """Digests of every replica, once each shard's replicas agree on the applied index."""
    deadline = time.monotonic() + DIGEST_WAIT_S
    previous: list[ReplicaDigest] | None = None
    async with (credentials or Credentials()).observer_session() as session:
        while True:
            current = await _digests_once(session, addresses)
            if previous is not None and _converged(previous, current):
                return current
            if time.monotonic() > deadline:
                return current
            previous = current
            await asyncio.sleep(DIGEST_POLL_S)


async def _digests_once(session: aiohttp.ClientSession,
                        addresses: dict[str, str]) -> list[ReplicaDigest]:
    async def one(node: str, address: str) -> list[ReplicaDigest]:
        try:
            async with session.get(f"{address}/api/v1/node/digests",
                                   timeout=aiohttp.ClientTimeout(total=10)) as answer:
                body = msgspec.json.decode(await answer.read(), type=NodeDigests)
        except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError):
            return []  # a node that does not answer (or not yet as itself) has no digests
        return [ReplicaDigest(shard=s.shard, node=node, applied_index=s.applied_index,
                              digest=s.digest, outbox_messages=s.outbox_messages)
                for s in body.shards]

    per_node = await asyncio.gather(*(one(n, a) for n, a in addresses.items()))
    return sorted((d for digests in per_node for d in digests), key=lambda d: (d.shard, d.node))


def _converged(previous: list[ReplicaDigest], current: list[ReplicaDigest]) -> bool:
    """Same readings twice, and within each shard one applied index."""
    if [(d.shard, d.node, d.applied_index) for d in previous] != [
            (d.shard, d.node, d.applied_index) for d in current]:
        return False
    by_shard: dict[int, set[int]] = {}
    for digest in current:
        by_shard.setdefault(digest.shard, set()).add(digest.applied_index)
    return all(len(indexes) == 1 for indexes in by_shard.values())
