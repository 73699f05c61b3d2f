"""Goal: the token buckets and the limiter do what api/rate_limits.py promises: a full bucket
admits a burst of BURST_S seconds of its rate, then one call per 1/rate seconds; a refusal says
how long to wait and spends nothing; each node admits its share (rate / members); a namespace's
own limit beats the default; namespaces never share a bucket; a rate change applies at the
map's next epoch.

Method: a hand-driven clock and a map built with the cluster map's own commands; a hypothesis
property bounds what any sequence of calls can get through.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftflow.api.errors import RateLimitedError
from raftflow.api.rate_limits import (
    BURST_S,
    UNLIMITED,
    LimitKind,
    NamespaceRateLimiter,
    RateDefaults,
    TokenBucket,
)
from raftflow.cluster.cluster_map import ClusterMap, genesis_map
from raftflow.cluster.map_machine import apply_map_command
from raftflow.cluster.namespace_specs import CreateNamespace, UpdateNamespace
from raftflow.protocol.errors import ErrorCode, http_status


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def three_nodes() -> ClusterMap:
    return genesis_map("c1", 4, [(f"n{i}", f"http://127.0.0.1:{8000 + i}", "127.0.0.1", 9000 + i)
                                 for i in (1, 2, 3)])


def with_namespace(cluster_map: ClusterMap, name: str, start: float | None = None,
                   poll: float | None = None) -> ClusterMap:
    after, _ = apply_map_command(cluster_map, CreateNamespace(
        request_id=f"create-{name}", name=name, retention_ms=20_000, start_rate_per_s=start,
        poll_rate_per_s=poll))
    assert after.namespace(name) is not None
    return after


def admitted(limiter: NamespaceRateLimiter, namespace: str, kind: LimitKind, calls: int) -> int:
    passed = 0
    for _ in range(calls):
        try:
            limiter.check(namespace, kind)
            passed += 1
        except RateLimitedError:
            pass
    return passed


def test_a_bucket_admits_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(10.0, now_s=0.0)
    assert [bucket.take(0.0) for _ in range(int(10 * BURST_S))] == [0.0] * int(10 * BURST_S)
    wait_s = bucket.take(0.0)
    assert wait_s == pytest.approx(0.1)  # one token comes back in 1/rate
    assert bucket.take(0.05) == pytest.approx(0.05)  # a refusal spends nothing
    assert bucket.take(0.1) == 0.0
    assert bucket.take(0.1) > 0.0


def test_a_slow_rate_still_admits_one_call() -> None:
    bucket = TokenBucket(0.01, now_s=0.0)
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(100.0)


def test_a_rate_change_keeps_the_tokens_capped_at_the_new_size() -> None:
    bucket = TokenBucket(100.0, now_s=0.0)
    bucket.set_rate(2.0, now_s=0.0)
    assert bucket.tokens == pytest.approx(2.0)
    bucket.take(0.0)
    bucket.take(0.0)
    bucket.set_rate(100.0, now_s=0.0)  # a raise gives no tokens at once...
    assert bucket.take(0.0) > 0.0
    assert bucket.take(0.01) == 0.0  # ...but they come back at the new rate


def test_a_clock_that_steps_back_adds_no_tokens() -> None:
    bucket = TokenBucket(1.0, now_s=10.0)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(5.0) > 0.0
    assert bucket.take(10.5) > 0.0


@given(rate=st.floats(0.5, 500.0),
       gaps=st.lists(st.floats(0.0, 0.2), min_size=1, max_size=300))
def test_no_sequence_of_calls_gets_more_than_burst_plus_rate_times_time(
        rate: float, gaps: list[float]) -> None:
    bucket = TokenBucket(rate, now_s=0.0)
    now_s, taken = 0.0, 0
    for gap in gaps:
        now_s += gap
        taken += bucket.take(now_s) == 0.0
    assert taken <= max(1.0, rate * BURST_S) + rate * now_s + 1e-6


def test_unlimited_by_default_and_limited_by_the_defaults() -> None:
    clock = Clock()
    cluster_map = three_nodes()
    free = NamespaceRateLimiter(lambda: cluster_map, UNLIMITED, clock)
    assert admitted(free, "default", LimitKind.STARTS, 1000) == 1000
    limited = NamespaceRateLimiter(lambda: cluster_map, RateDefaults(start_rate_per_s=30.0),
                                   clock)
    # 30/s over 3 nodes: this node admits 10/s, with a burst of BURST_S of that.
    assert admitted(limited, "default", LimitKind.STARTS, 100) == int(10 * BURST_S)
    assert admitted(limited, "default", LimitKind.POLLS, 100) == 100  # polls: no default
    clock.now_s += 1.0
    assert admitted(limited, "default", LimitKind.STARTS, 100) == 10


def test_a_namespace_limit_beats_the_default_and_namespaces_do_not_share() -> None:
    clock = Clock()
    cluster_map = with_namespace(with_namespace(three_nodes(), "noisy", start=3.0, poll=6.0),
                                 "quiet")
    limiter = NamespaceRateLimiter(lambda: cluster_map, RateDefaults(start_rate_per_s=300.0),
                                   clock)
    assert admitted(limiter, "noisy", LimitKind.STARTS, 50) == 1  # 1/s on this node
    assert admitted(limiter, "noisy", LimitKind.POLLS, 50) == 2
    # The flood spent only noisy's tokens.
    assert admitted(limiter, "quiet", LimitKind.STARTS, 50) == 50


def test_the_refusal_is_a_429_naming_the_namespace_the_rate_and_the_wait() -> None:
    clock = Clock()
    cluster_map = with_namespace(three_nodes(), "shop", start=1.5)
    limiter = NamespaceRateLimiter(lambda: cluster_map, UNLIMITED, clock)
    limiter.check("shop", LimitKind.STARTS)
    with pytest.raises(RateLimitedError) as refusal:
        limiter.check("shop", LimitKind.STARTS)
    error = refusal.value
    assert error.code is ErrorCode.RATE_LIMITED and http_status(error.code) == 429
    assert error.field == "namespace"
    assert "namespace shop" in error.message and "1.5/s" in error.message
    assert "0.5/s on this node of 3" in error.message
    assert error.retry_after_s == pytest.approx(2.0)


def test_a_change_in_the_map_applies_at_its_next_epoch() -> None:
    clock = Clock()
    maps = [with_namespace(three_nodes(), "shop", start=3.0)]
    limiter = NamespaceRateLimiter(lambda: maps[-1], UNLIMITED, clock)
    assert admitted(limiter, "shop", LimitKind.STARTS, 10) == 1
    after, _ = apply_map_command(maps[-1], UpdateNamespace(
        request_id="raise", name="shop", start_rate_per_s=300.0))
    maps.append(after)
    assert admitted(limiter, "shop", LimitKind.STARTS, 50) == 0  # the bucket is empty...
    clock.now_s += 0.125  # ...and refills at 100/s on this node now: 12.5 tokens
    assert admitted(limiter, "shop", LimitKind.STARTS, 50) == 12
    back, _ = apply_map_command(after, UpdateNamespace(
        request_id="unlimit", name="shop", start_rate_per_s=None))
    maps.append(back)
    assert admitted(limiter, "shop", LimitKind.STARTS, 50) == 50
