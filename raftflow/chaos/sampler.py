"""Watches every node's own status during a chaos run: leaders per term, and recovery.

Every SAMPLE_S each node is asked for `/api/v1/node/status` directly (not through another
node), with a short timeout: a paused or partitioned node simply has no fresh view. From the
answers the sampler keeps
- every (shard, term, node) leadership claim, with the first time it was seen (the checker's
  "at most one leader per term"), a small set since claims change only at elections;
- each node's latest view, for `all_led`: is every shard led by a node outside a given set
  (the nodes under fault), by a view taken after a given time? That is the recovery test.
- the commit index per shard, to find the busiest shard for the `leader` fault.
Membership faults change the nodes to ask: `follow` replaces them (a joined node is asked from
the next round on, a removed one no more, and its last view is dropped, so it neither leads
for `all_led` nor gets picked by the `leader` fault). Claims already seen are kept: the
checker's "one leader per term" spans the whole run, moves included.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp

from raftflow.bench.credentials import Credentials
from raftflow.chaos.observations import LeaderSample

SAMPLE_S = 0.2
REQUEST_TIMEOUT_S = 0.5
CLAIMS_MAX = 100_000  # bound: elections are rare; a run that elects this often is broken


@dataclass(slots=True)
class NodeView:
    at_s: float
    leading: dict[int, int] = field(default_factory=dict)  # shard -> term it claims to lead
    commit_index: dict[int, int] = field(default_factory=dict)


class Sampler:
    def __init__(self, addresses: dict[str, str], shard_count: int, t0_monotonic: float,
                 credentials: Credentials | None = None) -> None:
        self._addresses = addresses
        self._credentials = credentials or Credentials()
        self._shards = range(shard_count)
        self._t0 = t0_monotonic
        self._views: dict[str, NodeView] = {}
        self._claims: dict[tuple[int, int, str], float] = {}
        self.polls_failed = 0

    def now_s(self) -> float:
        return time.monotonic() - self._t0

    def follow(self, addresses: dict[str, str]) -> None:
        """Ask these nodes from now on (the current members)."""
        self._addresses = dict(addresses)
        for node in [n for n in self._views if n not in addresses]:
            del self._views[node]

    async def run(self) -> None:
        """Sample until cancelled."""
        async with self._credentials.observer_session() as session:
            while True:
                await asyncio.gather(*(self._sample(session, node, address)
                                       for node, address in list(self._addresses.items())))
                await asyncio.sleep(SAMPLE_S)

    async def _sample(self, session: aiohttp.ClientSession, node: str, address: str) -> None:
        try:
            async with session.get(f"{address}/api/v1/node/status",
                                   timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as r:
                body = await r.json() if r.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            body = None
        if body is None:
            self.polls_failed += 1
            return
        self.record(node, body, self.now_s())

    def record(self, node: str, body: dict[str, object], at_s: float) -> None:
        """Take one node status answer (public for tests)."""
        view = NodeView(at_s=at_s)
        shards = body.get("shards")
        assert isinstance(shards, list)
        for shard in shards:
            number, term = int(shard["shard"]), int(shard["term"])
            view.commit_index[number] = int(shard["commit_index"])
            if shard["is_leader"]:
                view.leading[number] = term
                key = (number, term, node)
                if key not in self._claims and len(self._claims) < CLAIMS_MAX:
                    self._claims[key] = at_s
        if node in self._addresses:  # a claim counts always; a view only of a member
            self._views[node] = view

    def leader_samples(self) -> tuple[LeaderSample, ...]:
        return tuple(LeaderSample(at_s=at, node=node, shard=shard, term=term)
                     for (shard, term, node), at in sorted(self._claims.items()))

    def all_led(self, *, excluded: set[str], since_s: float) -> bool:
        """Every shard is claimed by a node not in `excluded`, in a view newer than `since_s`."""
        led: set[int] = set()
        for node, view in self._views.items():
            if node not in excluded and view.at_s > since_s:
                led.update(view.leading)
        return all(shard in led for shard in self._shards)

    def leader_of_busiest_shard(self) -> str | None:
        """The node leading the shard with the highest commit index, as last seen."""
        best: tuple[int, str] | None = None
        fresh_s = self.now_s() - 2.0  # a dead node's last view still claims its shards
        for node, view in self._views.items():
            if view.at_s < fresh_s:
                continue
            for shard in view.leading:
                index = view.commit_index.get(shard, 0)
                if best is None or index > best[0]:
                    best = (index, node)
        return None if best is None else best[1]
