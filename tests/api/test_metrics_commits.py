"""Goal: the commit tallies (api/metrics_commits.py) expose exactly what prometheus_client's
`Counter("raftflow_commits")` and `Histogram("raftflow_batch_commands")` labelled by shard
exposed before them, so dashboards, `raftflow bench` and docs/metrics.md see no change.

Method: record the same batches (every bucket edge, beyond the last bound, several shards) into
`CommitTallies` and into a real Counter and Histogram in a second registry; compare the
exposition text line by line, with the `_created` timestamps (wall-clock, per object) masked.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from raftflow.api.metrics_commits import (
    BATCH_HELP,
    BATCH_NAME,
    COMMITS_HELP,
    COMMITS_NAME,
    CommitTallies,
)

BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
BATCHES = [(3, 1), (3, 1), (3, 2), (3, 3), (3, 4), (3, 5), (0, 17), (0, 4096), (0, 4097),
           (11, 9_999), (3, 64), (3, 65), (0, 1)]


def _masked(body: bytes) -> list[str]:
    return [re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", line)
            for line in body.decode().splitlines()]


def test_the_exposition_matches_a_counter_and_a_histogram() -> None:
    tallies_registry, reference_registry = CollectorRegistry(), CollectorRegistry()
    tallies = CommitTallies(BUCKETS)
    tallies_registry.register(tallies)
    commits = Counter(COMMITS_NAME, COMMITS_HELP, ("shard",), registry=reference_registry)
    batches = Histogram(BATCH_NAME, BATCH_HELP, ("shard",), buckets=BUCKETS,
                        registry=reference_registry)
    for shard, size in BATCHES:
        tallies.record(shard, size)
        commits.labels(str(shard)).inc()
        batches.labels(str(shard)).observe(size)
    ours, reference = generate_latest(tallies_registry), generate_latest(reference_registry)
    assert _masked(ours) == _masked(reference)
    assert tallies_registry.get_sample_value(f"{BATCH_NAME}_sum", {"shard": "3"}) == 145
    assert tallies_registry.get_sample_value(f"{COMMITS_NAME}_total", {"shard": "0"}) == 4


def test_nothing_recorded_exposes_only_the_family_headers() -> None:
    registry = CollectorRegistry()
    registry.register(CommitTallies(BUCKETS))
    reference = CollectorRegistry()
    Counter(COMMITS_NAME, COMMITS_HELP, ("shard",), registry=reference)
    Histogram(BATCH_NAME, BATCH_HELP, ("shard",), buckets=BUCKETS, registry=reference)
    assert generate_latest(registry) == generate_latest(reference)
