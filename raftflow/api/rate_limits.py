"""Per-namespace rate limits: a token bucket for starts and signals, one for task polls.

Theory of operation. A namespace's limits are cluster-wide rates, calls per second, kept in the
cluster map (`start_rate_per_s`, `poll_rate_per_s`; cluster/namespace_specs.py); a namespace
without its own takes the cluster's default, the nodes' `--default-start-rate` and
`--default-poll-rate` (RateDefaults; none: unlimited). Each node admits its share, the rate
divided by the members of its map, from buckets of its own, so the cluster admits about the
rate without the nodes talking to each other about it; a client that spreads its calls over the
nodes (the SDK moves to the next node on a 429) gets the whole rate, and one that calls a single
node gets that node's share. A bucket holds BURST_S seconds of its share (at least one call):
a limit smooths a burst instead of refusing its first call.

The check runs on the node a call first reaches, after the access and namespace checks (a
stranger spends no namespace's budget and an unknown namespace is a 404), and never on a call
another node forwarded (that node admitted it already). A refused call is a 429 `rate_limited`
with Retry-After and changes nothing. The buckets of one namespace are its own: a namespace
that floods spends only its own tokens, which is the noisy-neighbour guarantee (measured in
docs/benchmarks.md, "Rate limits").

A new limit takes effect on each node when its copy of the map reaches the change (within a
heartbeat); a bucket whose rate changes keeps its tokens, capped at the new size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web
from aiohttp.typedefs import Handler

from raftflow.api.errors import RateLimitedError
from raftflow.api.routing import FORWARDED_HEADER
from raftflow.cluster.cluster_map import ClusterMap
from raftflow.cluster.namespace_specs import all_namespaces
from raftflow.protocol.namespaces import NAMESPACES_MAX, RATE_PER_S_MAX, RATE_PER_S_MIN

# Seconds of its rate a bucket holds when full: a client may send this much at once.
BURST_S = 1.0


class LimitKind(StrEnum):
    """What a route spends; the value names it in a refusal."""

    STARTS = "starts and signals"
    POLLS = "task polls"


# One bucket per namespace and kind, so the table is bounded by the namespaces a map may hold.
BUCKETS_MAX = NAMESPACES_MAX * len(LimitKind)


@dataclass(frozen=True, slots=True)
class RateDefaults:
    """The cluster's default limits (each node's flags; every node should be given the same).
    None: unlimited."""

    start_rate_per_s: float | None = None
    poll_rate_per_s: float | None = None

    def __post_init__(self) -> None:
        for rate in (self.start_rate_per_s, self.poll_rate_per_s):
            assert rate is None or RATE_PER_S_MIN <= rate <= RATE_PER_S_MAX, rate


UNLIMITED = RateDefaults()


class TokenBucket:
    """`rate_per_s` tokens a second, up to `capacity`; a call takes one (pure: the caller
    passes the time)."""

    __slots__ = ("capacity", "rate_per_s", "tokens", "updated_s")

    def __init__(self, rate_per_s: float, now_s: float) -> None:
        self.rate_per_s = rate_per_s
        self.capacity = max(1.0, rate_per_s * BURST_S)
        self.tokens = self.capacity  # a new limit starts full: its first burst is allowed
        self.updated_s = now_s

    def _refill(self, now_s: float) -> None:
        # A clock that steps back adds nothing (monotonic clocks do not, but stay safe).
        elapsed_s = max(0.0, now_s - self.updated_s)
        self.tokens = min(self.capacity, self.tokens + elapsed_s * self.rate_per_s)
        self.updated_s = max(self.updated_s, now_s)

    def set_rate(self, rate_per_s: float, now_s: float) -> None:
        self._refill(now_s)
        self.rate_per_s = rate_per_s
        self.capacity = max(1.0, rate_per_s * BURST_S)
        self.tokens = min(self.tokens, self.capacity)

    def take(self, now_s: float) -> float:
        """0.0 if a token was taken, else the seconds until one will be there."""
        self._refill(now_s)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


class NamespaceRateLimiter:
    """This node's buckets, sized from the map it follows (`cluster_map()`) and the defaults."""

    def __init__(self, cluster_map: Callable[[], ClusterMap], defaults: RateDefaults,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._cluster_map = cluster_map
        self._defaults = defaults
        self._clock = clock
        self._buckets: dict[tuple[str, LimitKind], TokenBucket] = {}
        # The map's limits by namespace and the node count, read again when the epoch moves.
        self._epoch = -1
        self._limits: dict[str, tuple[float | None, float | None]] = {}
        self._nodes = 1

    def _refresh(self) -> None:
        current = self._cluster_map()
        if current.epoch == self._epoch:
            return
        self._limits = {n.name: (n.start_rate_per_s, n.poll_rate_per_s)
                        for n in all_namespaces(current.namespaces)}
        self._nodes = max(1, len(current.members))
        self._epoch = current.epoch

    def cluster_rate_per_s(self, namespace: str, kind: LimitKind) -> float | None:
        """The namespace's rate over the cluster (its own, else the default); None: unlimited."""
        self._refresh()
        start, poll = self._limits.get(namespace, (None, None))
        if kind is LimitKind.STARTS:
            return start if start is not None else self._defaults.start_rate_per_s
        return poll if poll is not None else self._defaults.poll_rate_per_s

    def check(self, namespace: str, kind: LimitKind) -> None:
        """Spend one call of `namespace`'s `kind` on this node, or raise RateLimitedError."""
        rate_per_s = self.cluster_rate_per_s(namespace, kind)
        if rate_per_s is None:
            return
        share_per_s = rate_per_s / self._nodes
        now_s = self._clock()
        key = (namespace, kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            assert len(self._buckets) < BUCKETS_MAX, "more buckets than namespaces allow"
            bucket = self._buckets[key] = TokenBucket(share_per_s, now_s)
        elif bucket.rate_per_s != share_per_s:
            bucket.set_rate(share_per_s, now_s)
        wait_s = bucket.take(now_s)
        if wait_s > 0.0:
            raise RateLimitedError(
                f"namespace {namespace}: {kind.value} are limited to {rate_per_s:g}/s over the "
                f"cluster, {share_per_s:g}/s on this node of {self._nodes}; retry after "
                f"Retry-After", wait_s)


def rate_limited(limiter: NamespaceRateLimiter, kind: LimitKind, handler: Handler) -> Handler:
    """`handler`, spending its namespace's `kind` bucket first (see the module text). A wrapper
    of the limited routes only, not a middleware: every other call pays nothing for limits."""

    async def check(request: web.Request) -> web.StreamResponse:
        if not request.headers.get(FORWARDED_HEADER):
            limiter.check(request.match_info["namespace"], kind)
        return await handler(request)

    return check
