"""One real 3-node cluster per test module (starting one takes a few seconds); always stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from raftflow.cluster.launcher import LocalCluster
from tests.live_cluster import running


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running(tmp_path_factory, "sdk-io-cluster") as local:
        yield local
