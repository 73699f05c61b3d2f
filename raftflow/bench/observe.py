"""What the benchmark reads besides its own answers: node metrics and CPU time.

Metrics come from each node's `GET /metrics` (Prometheus text); CPU time of a node comes from
`/proc/PID/stat` (utime + stime, all threads), so it is only read for nodes on this machine.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

BATCH_SUM = "raftflow_batch_commands_sum"
BATCH_COUNT = "raftflow_batch_commands_count"
COMMITS = "raftflow_commits_total"
LEADER_CHANGES = "raftflow_leader_changes_total"  # gained or lost, so one election counts twice
FORWARDED = "raftflow_forwarded_calls_total"  # calls a node sent on to their shard's leader
WATCHED_METRICS = (BATCH_SUM, BATCH_COUNT, COMMITS, LEADER_CHANGES, FORWARDED)
SCRAPE_TIMEOUT_S = 5.0
STATUS_TIMEOUT_S = 5.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# /proc/PID/stat fields after the ")" that closes the command name: utime is field 14 of the
# whole line, stime field 15 (proc(5)); the remainder starts at field 3.
_UTIME_INDEX = 14 - 3
_STIME_INDEX = 15 - 3


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A node the benchmark talks to; `pid` is set only when it runs on this machine."""

    node_id: str
    address: str
    pid: int | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Counters read at one instant: client CPU, node CPU and node metrics."""

    taken_s: float
    client_cpu_s: float
    machine_busy_cpu_s: float
    node_cpu_s: dict[str, float | None]
    node_metrics: dict[str, dict[str, float] | None]


def parse_metrics(text: str) -> dict[str, float]:
    """Sum each watched metric over all its label sets."""
    totals = dict.fromkeys(WATCHED_METRICS, 0.0)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0]
        if name in totals:
            totals[name] += float(value)
    return totals


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of `pid` (all threads), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    ticks = int(fields[_UTIME_INDEX]) + int(fields[_STIME_INDEX])
    return ticks / _CLOCK_TICKS_PER_S


def machine_busy_cpu_s() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat), for noise from others."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    idle_ticks = fields[3] + fields[4]  # idle + iowait
    busy_ticks = sum(fields[:8]) - idle_ticks  # user..steal; guest time is inside user
    return busy_ticks / _CLOCK_TICKS_PER_S


def _is_raftflow_process(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"raftflow" in cmdline.read()
    except OSError:
        return False


async def discover_nodes(session: aiohttp.ClientSession, addresses: list[str]) -> list[NodeRef]:
    """Ask the cluster for its nodes and their pids; fall back to the given addresses."""
    timeout = aiohttp.ClientTimeout(total=STATUS_TIMEOUT_S)
    status: dict[str, object] | None = None
    for address in addresses:
        try:
            async with session.get(f"{address}/api/v1/cluster/status", timeout=timeout) as answer:
                if answer.status == 200:
                    status = await answer.json()
                    break
        except (TimeoutError, aiohttp.ClientError, ValueError):
            continue
    raw_nodes = status.get("nodes") if status else None
    if not isinstance(raw_nodes, list):
        return [NodeRef(node_id=a, address=a, pid=None) for a in addresses]
    refs = []
    for node in raw_nodes:
        address, pid = str(node.get("address")), node.get("pid")
        local = urlsplit(address).hostname in LOCAL_HOSTS
        usable = local and isinstance(pid, int) and _is_raftflow_process(pid)
        refs.append(NodeRef(node_id=str(node.get("id")), address=address,
                            pid=pid if usable and isinstance(pid, int) else None))
    return refs


async def cluster_status(session: aiohttp.ClientSession,
                         addresses: list[str]) -> dict[str, Any] | None:
    """`GET /api/v1/cluster/status` from the first node that answers, or None."""
    timeout = aiohttp.ClientTimeout(total=STATUS_TIMEOUT_S)
    for address in addresses:
        try:
            async with session.get(f"{address}/api/v1/cluster/status", timeout=timeout) as answer:
                if answer.status != 200:
                    continue
                status = await answer.json()
        except (TimeoutError, aiohttp.ClientError, ValueError):
            continue
        if isinstance(status, dict):
            return status
    return None


async def shard_leaders(session: aiohttp.ClientSession, addresses: list[str]) -> list[str]:
    """Per shard (index = shard number), the HTTP address of its leader, from cluster status.

    Raises RuntimeError if no node answers or a shard has no leader.
    """
    status = await cluster_status(session, addresses)
    if status is None:
        raise RuntimeError("no node answered /api/v1/cluster/status")
    node_addresses = {str(n["id"]): str(n["address"]) for n in status["nodes"]}
    shards = sorted(status["shards"], key=lambda s: int(s["shard"]))
    assert [int(s["shard"]) for s in shards] == list(range(len(shards)))
    leaders = [node_addresses.get(str(s["leader"])) for s in shards]
    if not all(leaders):
        raise RuntimeError("a shard has no leader; cannot route to leaders")
    return [leader for leader in leaders if leader]


async def _scrape(session: aiohttp.ClientSession, address: str) -> dict[str, float] | None:
    try:
        async with session.get(f"{address}/metrics",
                               timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)) as answer:
            if answer.status != 200:
                return None
            return parse_metrics(await answer.text())
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return None


async def take_snapshot(session: aiohttp.ClientSession, nodes: list[NodeRef]) -> Snapshot:
    """CPU first (an instant), then every node's metrics concurrently."""
    taken_s, client_cpu_s, machine_cpu_s = time.perf_counter(), time.process_time(), \
        machine_busy_cpu_s()
    node_cpu = {n.node_id: None if n.pid is None else process_cpu_s(n.pid) for n in nodes}
    scraped = await asyncio.gather(*(_scrape(session, n.address) for n in nodes))
    return Snapshot(taken_s=taken_s, client_cpu_s=client_cpu_s, machine_busy_cpu_s=machine_cpu_s,
                    node_cpu_s=node_cpu,
                    node_metrics={n.node_id: m for n, m in zip(nodes, scraped, strict=True)})
