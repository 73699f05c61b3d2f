"""What `raftflow bench retention` reads of each node: memory, data on disk, restart times.

Memory comes from `/proc/PID/status` (proc(5)): VmRSS (resident), RssAnon (the part that is the
process's own heap, not mapped files: what retained state costs) and VmHWM (the peak resident
size since the process started). The data dir is summed by apparent file size, per top-level
entry of the node's dir (raft log, snapshots, shard stores), so that a growing part shows.

A restart stops every node gracefully (the launcher's SIGTERM, SIGKILL only after its stop
timeout: the exit codes tell which), starts them again on the same ports and data, and times
from the first spawn until the cluster is ready as the launcher defines it (every live node
reports a leader for every shard: `LocalCluster.wait_ready`), and until each node answers its
own `/healthz` (the node has opened its stores and serves HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import uvloop

from raftflow.cluster.launcher import LocalCluster

KIB = 1024
MIB = 1024 * 1024
HEALTHZ_POLL_S = 0.05  # the resolution of the per-node times
HEALTHZ_REQUEST_TIMEOUT_S = 1.0
TOP_LEVEL_FILES = "."  # the part name of files directly in the node's dir
_STATUS_FIELDS = {"VmRSS": "rss", "RssAnon": "rss_anon", "VmHWM": "peak_rss"}


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeMemory:
    rss_bytes: int
    rss_anon_bytes: int
    peak_rss_bytes: int  # since the process started (a restart resets it)

    def to_json(self) -> dict[str, float]:
        return {"rss_mb": round(self.rss_bytes / MIB, 1),
                "rss_anon_mb": round(self.rss_anon_bytes / MIB, 1),
                "peak_rss_mb": round(self.peak_rss_bytes / MIB, 1)}


def read_memory(pid: int) -> NodeMemory:
    """The memory of a live process; raises OSError if it is gone."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in _STATUS_FIELDS:
                number, unit = value.split()
                assert unit == "kB", line  # proc(5): these fields are always in kB
                found[_STATUS_FIELDS[name]] = int(number) * KIB
    assert set(found) == set(_STATUS_FIELDS.values()), (pid, found)
    assert found["rss_anon"] <= found["rss"] <= found["peak_rss"], found
    return NodeMemory(rss_bytes=found["rss"], rss_anon_bytes=found["rss_anon"],
                      peak_rss_bytes=found["peak_rss"])


def data_bytes_by_part(node_dir: Path) -> dict[str, int]:
    """Apparent bytes of the files under `node_dir`, per top-level entry (files directly in
    it under "."); files replaced or removed while we look are skipped."""
    parts: dict[str, int] = {}
    for path in node_dir.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                relative = path.relative_to(node_dir).parts
                part = relative[0] if len(relative) > 1 else TOP_LEVEL_FILES
                parts[part] = parts.get(part, 0) + path.stat().st_size
    return dict(sorted(parts.items()))


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartTiming:
    stop_s: float  # SIGTERM to every node gone
    exit_codes: dict[str, int]  # 0 or -15 is graceful; -9 means the launcher had to SIGKILL
    ready_s: float  # first spawn to every shard led (LocalCluster.wait_ready)
    healthz_s: dict[str, float | None]  # first spawn to the node's first /healthz 200

    @property
    def graceful(self) -> bool:
        return all(code != -9 for code in self.exit_codes.values())

    def to_json(self) -> dict[str, object]:
        return {"stop_s": round(self.stop_s, 2), "exit_codes": self.exit_codes,
                "graceful": self.graceful, "ready_s": round(self.ready_s, 2),
                "healthz_s": {n: None if s is None else round(s, 2)
                              for n, s in self.healthz_s.items()}}


async def _first_healthz(session: aiohttp.ClientSession, address: str, began_s: float,
                         timeout_s: float) -> float | None:
    """Seconds from `began_s` to the first 200 from `address`/healthz, or None at timeout."""
    request_timeout = aiohttp.ClientTimeout(total=HEALTHZ_REQUEST_TIMEOUT_S)
    while time.perf_counter() - began_s < timeout_s:
        with contextlib.suppress(TimeoutError, aiohttp.ClientError):
            async with session.get(f"{address}/healthz", timeout=request_timeout) as answer:
                if answer.status == 200:
                    return time.perf_counter() - began_s
        await asyncio.sleep(HEALTHZ_POLL_S)
    return None


async def _start_and_time(cluster: LocalCluster, timeout_s: float,
                          ) -> tuple[float, dict[str, float | None]]:
    began_s = time.perf_counter()
    cluster.start()

    async def ready() -> float:
        # The launcher's own readiness, polled from a thread (it blocks on urllib and sleeps).
        await asyncio.to_thread(cluster.wait_ready, timeout_s)
        return time.perf_counter() - began_s

    async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as group:
        ready_task = group.create_task(ready())
        healthz = {node_id: group.create_task(_first_healthz(
            session, cluster.address(node_id), began_s, timeout_s))
            for node_id in cluster.node_ids}
    return ready_task.result(), {n: task.result() for n, task in healthz.items()}


def restart_cluster(cluster: LocalCluster, *, timeout_s: float) -> RestartTiming:
    """Stop every node (graceful unless it lingers), start them again, time the way back.
    Raises TimeoutError if the cluster is not ready within `timeout_s`."""
    assert cluster.live_nodes(), "restart of a cluster that is not running"
    stopping_s = time.perf_counter()
    cluster.stop()
    stop_s = time.perf_counter() - stopping_s
    exit_codes = {node_id: process.returncode for node_id, process in cluster.processes.items()}
    assert all(code is not None for code in exit_codes.values()), exit_codes
    ready_s, healthz_s = uvloop.run(_start_and_time(cluster, timeout_s))
    assert ready_s > 0
    return RestartTiming(stop_s=stop_s, exit_codes=exit_codes, ready_s=ready_s,
                         healthz_s=healthz_s)
