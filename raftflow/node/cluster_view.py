"""What this node knows of the other nodes: their own status reports, refreshed continuously.

Every `REFRESH_S` the node asks each member of the map for `GET /api/v1/node/status` (each
answer is that node's own view of its replicas and of the map epoch it follows). From the
latest answers it learns: the leader of a shard it does not replicate (for routing), what a
group's leader reports of its configuration and of its learner's lag (for the rebalancer and
for dropping a replica that has left), which nodes answer at all, and whether some node follows
a newer map than this one. A node that has not answered for `ALIVE_WITHIN_S` counts as down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import aiohttp

from raftflow.api.admin_handlers import NodeReport
from raftflow.raftlog.interface import LogStatus

REFRESH_S = 0.5
# A node answers within this, or counts as down for this round (a stalled node must not stall
# the refresh of the others).
STATUS_TIMEOUT_S = 1.0
# A report this old no longer proves the node is up (a few missed refreshes).
ALIVE_WITHIN_S = 3.0


@dataclass(frozen=True, slots=True)
class SeenReport:
    report: NodeReport
    at_s: float  # monotonic time of the answer


class ClusterView:
    """The latest status report of every other node (plain dicts; one event loop)."""

    def __init__(self, node_id: str, session: aiohttp.ClientSession,
                 address_of: Callable[[str], str | None]) -> None:
        self._node_id = node_id
        self._session = session
        self._address_of = address_of
        self._seen: dict[str, SeenReport] = {}
        # Each group's leader as the live reports say, rebuilt at every refresh: routing asks
        # it on every forwarded call.
        self._leaders: dict[int, LogStatus] = {}

    async def refresh(self, node_ids: Iterable[str]) -> None:
        """Ask every node once, concurrently; keep each answer that came."""
        others = [n for n in node_ids if n != self._node_id]
        answers = await asyncio.gather(*(self._ask(n) for n in others))
        now_s = time.monotonic()
        for node_id, report in zip(others, answers, strict=True):
            if report is not None:
                self._seen[node_id] = SeenReport(report, now_s)
        for gone in set(self._seen) - set(others):
            del self._seen[gone]
        self._leaders = self._leader_statuses()

    async def _ask(self, node_id: str) -> NodeReport | None:
        address = self._address_of(node_id)
        if address is None:
            return None
        try:
            async with self._session.get(
                f"{address}/api/v1/node/status",
                timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT_S),
            ) as answer:
                if answer.status != 200:
                    return None
                return NodeReport.from_json(node_id, await answer.read())
        except (aiohttp.ClientError, TimeoutError):
            return None

    def alive(self, node_id: str) -> bool:
        seen = self._seen.get(node_id)
        return seen is not None and time.monotonic() - seen.at_s < ALIVE_WITHIN_S

    def group_leader_status(self, group: int) -> LogStatus | None:
        """The status of `group` as its leader (on another node, live at the last refresh)
        reports it; the highest term wins when a deposed leader has not noticed yet."""
        return self._leaders.get(group)

    def _leader_statuses(self) -> dict[int, LogStatus]:
        best: dict[int, LogStatus] = {}
        for node_id, seen in self._seen.items():
            if not self.alive(node_id):
                continue
            for status in seen.report.shards:
                known = best.get(status.shard)
                if status.is_leader and (known is None or status.term > known.term):
                    best[status.shard] = status
        return best

    def newest_map(self) -> tuple[str, int] | None:
        """(node, epoch) of a live node that follows the newest map, if any."""
        best: tuple[str, int] | None = None
        for node_id, seen in self._seen.items():
            epoch = seen.report.map_epoch
            if self.alive(node_id) and (best is None or epoch > best[1]):
                best = (node_id, epoch)
        return best
