"""Cluster fixtures for the gateway tests: `one` (1 node, 2 shards), `three` (3 nodes, 4 shards).

Module-scoped, as they were when one module held all gateway tests: Raft keeps ticking between
the tests of a module, and each module starts from fresh clusters. A module that needs another
shape defines its own fixture of the same name, which takes precedence over these.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.gateway_harness import LiveCluster, _cluster


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    yield from _cluster(tmp_path_factory, 1, 2)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    yield from _cluster(tmp_path_factory, 3, 4)
