"""Goal: resets keep a store-backed shard state identical to the in-memory reference: the base
run read from the archive's rows (a closed one) or from an evicted open-run row, the new run's
copied history and pending work written as rows, the open run terminated into the archive.

Method: the store walk of test_store_matches_reference.py (`StoreWalk`: commits, reopenings,
image installs, evicting and caching open runs) with resets among its steps; digests compared
every 50 steps and at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from raftflow.protocol.commands import ResetWorkflow
from raftflow.protocol.results import WorkflowStartedResult
from raftflow.shards.core.digest import state_digest
from tests.store.test_store_matches_reference import STEPS, StoreWalk
from tests.store.test_store_matches_reference import cached as cached  # a fixture


class StoreResetWalk(StoreWalk):
    RESET_WEIGHT = 3
    accepted = 0

    def apply(self, command):  # type: ignore[no-untyped-def]
        result = super().apply(command)
        if isinstance(command, ResetWorkflow) and isinstance(result, WorkflowStartedResult):
            self.accepted += 1
        return result


@pytest.mark.parametrize("seed", range(3))
def test_the_store_and_the_reference_agree_with_resets(seed: int, tmp_path: Path,
                                                       cached: int) -> None:
    walk = StoreResetWalk(seed, tmp_path)
    try:
        for index in range(STEPS):
            walk.step()
            if index % 50 == 49:
                assert state_digest(walk.replica) == state_digest(walk.state), index
                (walk.reopen if index % 100 == 49 else walk.move)()
                assert state_digest(walk.replica) == state_digest(walk.state), index
        assert state_digest(walk.replica) == state_digest(walk.state)
        assert walk.accepted >= 5, walk.accepted
    finally:
        walk.store.close()
