"""Goal: with custom search attributes in play, the store-backed shard and the in-memory
reference still reach identical digests, and answer every visibility query identically: SQL
over the `search_attributes` table for closed runs in the store, the evaluator over rows in
memory for the reference.

Method: the seeded random walk of the store tests, with the namespace's registry configured
first, starts that carry attributes (sometimes an unregistered one or a wrongly typed value,
which must be refused and change nothing: `Walk.apply` checks the digest of every refusal) and
completions that upsert attributes before their other commands. Values include SQL-looking
and quote-laden keywords, which must be stored and matched literally. At checkpoints the two
states' digests are compared and a fixed set of queries is run on both through
`visibility_reads` (page and count), after reopening and moving the store as the store test
does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from raftflow.protocol.commands import ConfigureNamespace, StartWorkflow, WorkflowCommand
from raftflow.protocol.results import Rejected
from raftflow.protocol.search_attributes import (
    AttributeType,
    JsonAttributeValue,
    UpsertWorkflowSearchAttributes,
)
from raftflow.shards import visibility_reads
from raftflow.shards.core import limits
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.state import ShardState
from raftflow.visibility.query_parser import parse
from tests.core.test_core_random_walk import NS
from tests.store.test_store_matches_reference import StoreWalk

SEEDS = range(4)
STEPS = 500
REGISTRY = {"CustomerId": AttributeType.KEYWORD, "Amount": AttributeType.INT,
            "Score": AttributeType.DOUBLE, "Vip": AttributeType.BOOL,
            "DueAt": AttributeType.DATETIME}
HOSTILE = "c1' OR '1'='1'; DROP TABLE runs; --"
CUSTOMERS = ("c1", "c2", HOSTILE, "")
QUERIES = (
    "",
    "CustomerId = 'c1'",
    "CustomerId = 'c1' AND Amount > 5",
    "CustomerId = 'c1'' OR ''1''=''1''; DROP TABLE runs; --'",
    "CustomerId STARTS_WITH 'c' ORDER BY CloseTime ASC",
    "Amount BETWEEN 0 AND 50 OR Vip = true",
    "Score >= 1.5",
    "DueAt < '2026-06-01T00:00:00Z'",
    "ExecutionStatus = 'Running' AND CustomerId IN ('c2', 'c1')",
    "ExecutionStatus != 'Running' AND Vip = false ORDER BY StartTime ASC",
)


class AttributeWalk(StoreWalk):
    def __init__(self, seed: int, directory: Path) -> None:
        super().__init__(seed, directory)
        self.refused_starts = 0
        self.upserts = 0
        self.closed_with_customer_max = 0
        self.apply(ConfigureNamespace(now_ms=0, namespace=NS,
                                      retention_ms=limits.DEFAULT_RETENTION_MS,
                                      search_attributes=dict(REGISTRY)))

    def values(self) -> dict[str, JsonAttributeValue]:
        rng = self.rng
        given: dict[str, JsonAttributeValue] = {}
        if rng.random() < 0.8:
            given["CustomerId"] = rng.choice(CUSTOMERS)
        if rng.random() < 0.6:
            given["Amount"] = rng.randrange(-3, 60)
        if rng.random() < 0.3:
            given["Score"] = rng.choice([0.5, 1.5, 2, -0.0])
        if rng.random() < 0.3:
            given["Vip"] = rng.random() < 0.5
        if rng.random() < 0.3:
            given["DueAt"] = rng.choice(["2026-01-01T00:00:00Z", "2026-12-06T10:00:00.123+01:00"])
        roll = rng.random()
        if roll < 0.05:
            given["Unregistered"] = "x"
        elif roll < 0.1:
            given["Amount"] = "7"  # a string for an int: refused
        return given

    def start(self) -> None:
        self.runs += 1
        rng = self.rng
        workflow_id, request_id = rng.choice("abcd"), f"s{rng.randrange(30)}"
        result = self.apply(StartWorkflow(
            now_ms=self.now_ms, namespace=NS, workflow_id=workflow_id, workflow_type="W",
            task_queue="q", request_id=f"{request_id}-{self.runs}", run_id=f"run{self.runs}",
            search_attributes=self.values()))
        self.refused_starts += isinstance(result, Rejected)

    def decide(self, run_id: str) -> tuple[WorkflowCommand, ...]:
        commands = super().decide(run_id)
        if self.rng.random() < 0.4:
            self.upserts += 1
            upsert = UpsertWorkflowSearchAttributes(search_attributes=self.values() or {
                "Vip": True})
            return (upsert, *commands)
        return commands


def _answers(state: ShardState) -> list[object]:
    answers: list[object] = []
    for text in QUERIES:
        query = parse(text, REGISTRY)
        page = visibility_reads.page(state, NS, query, None, 1_000)
        answers.append([(row, description) for row, description in page])
        answers.append(visibility_reads.count(state, NS, query))
    return answers


# Closed runs in the store are found only through SQL on `search_attributes`.
CLOSED_WITH_CUSTOMER = "ExecutionStatus != 'Running' AND CustomerId STARTS_WITH ''"


def _check(walk: AttributeWalk, index: int) -> None:
    assert state_digest(walk.replica) == state_digest(walk.state), index
    assert _answers(walk.replica) == _answers(walk.state), index
    found = visibility_reads.count(walk.replica, NS, parse(CLOSED_WITH_CUSTOMER, REGISTRY))
    walk.closed_with_customer_max = max(walk.closed_with_customer_max, found)


@pytest.mark.parametrize("seed", SEEDS)
def test_store_and_reference_agree_on_attributes(seed: int, tmp_path: Path) -> None:
    walk = AttributeWalk(seed, tmp_path)
    try:
        for index in range(STEPS):
            walk.step()
            if index % 50 == 49:
                _check(walk, index)
                (walk.reopen if index % 100 == 49 else walk.move)()
                _check(walk, index)
        _check(walk, STEPS)
        # The walk must have exercised what it claims to: refusals, upserts, closed runs
        # with attributes on disk, and matches by attribute among them.
        assert walk.refused_starts > 0 and walk.upserts > 0
        assert walk.closed_with_customer_max > 0
        hostile = parse(QUERIES[3], REGISTRY)
        matched = visibility_reads.page(walk.replica, NS, hostile, None, 1_000)
        assert all(row.attributes["CustomerId"] == HOSTILE for row, _ in matched)
    except AssertionError:
        print(f"attribute walk failed; reproduce with seed={seed}")
        raise
    finally:
        walk.store.close()
