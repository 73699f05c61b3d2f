"""ConfigureNamespace: a shard's copy of a namespace's settings decides its runs' retention.

Goal: a run closing in a configured namespace is deleted its retention after closing, one in a
namespace the shard was never told of keeps the default (3 days); a later change applies to runs
closing after it; bad settings and too many namespaces are refused and change nothing; the same
settings again change nothing. Method: the core driver (pure core, no IO).
"""

from __future__ import annotations

import pytest

from raftflow.protocol.commands import CompleteWorkflowExecution, ConfigureNamespace
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.limits import ID_LENGTH_MAX
from raftflow.protocol.results import Ack, Rejected
from raftflow.shards.core import limits
from raftflow.shards.core.state import NamespaceConfig
from tests.core.core_driver import Shard


def _configure(shard: Shard, namespace: str, retention_ms: int) -> object:
    return shard.run(ConfigureNamespace(now_ms=shard.now_ms, namespace=namespace,
                                        retention_ms=retention_ms)).result


def _close(shard: Shard, workflow_id: str, namespace: str) -> str:
    run_id = shard.start(workflow_id, namespace=namespace)
    shard.decide(run_id, CompleteWorkflowExecution(result=b'"ok"'))
    return run_id


def test_a_configured_namespace_deletes_closed_runs_after_its_retention() -> None:
    shard = Shard()
    assert _configure(shard, "shop", 20_000) == Ack()
    shop_run = _close(shard, "a", "shop")
    default_run = _close(shard, "b", "default")
    unknown_run = _close(shard, "c", "elsewhere")
    closed_at = shard.now_ms
    wakeup = shard.state.next_wakeup_ms()
    assert wakeup == closed_at + 20_000 + limits.EXPIRY_BATCHING_MS
    shard.advance(19_999)
    assert shard.state.find_run(shop_run) is not None
    shard.advance(1 + limits.EXPIRY_BATCHING_MS)
    assert shard.state.find_run(shop_run) is None
    assert shard.state.find_run(default_run) is not None
    assert shard.state.find_run(unknown_run) is not None
    shard.advance(limits.DEFAULT_RETENTION_MS)
    assert shard.state.find_run(default_run) is None and shard.state.find_run(unknown_run) is None


def test_a_change_applies_to_runs_that_close_after_it() -> None:
    shard = Shard()
    _configure(shard, "shop", 20_000)
    early = _close(shard, "a", "shop")
    assert _configure(shard, "shop", 120_000) == Ack()
    late = _close(shard, "b", "shop")
    shard.advance(30_000)
    assert shard.state.find_run(early) is None
    assert shard.state.find_run(late) is not None
    shard.advance(100_000)
    assert shard.state.find_run(late) is None


def test_the_same_settings_again_change_nothing() -> None:
    shard = Shard()
    _configure(shard, "shop", 20_000)
    before = shard.state.namespaces.copy()
    assert _configure(shard, "shop", 20_000) == Ack()
    assert shard.state.namespaces == before == {"shop": NamespaceConfig(retention_ms=20_000)}


@pytest.mark.parametrize(("namespace", "retention_ms", "field"), [
    ("shop", 0, "retention_ms"), ("shop", -5, "retention_ms"), ("", 1_000, "namespace"),
    ("x" * (ID_LENGTH_MAX + 1), 1_000, "namespace")])
def test_bad_settings_are_refused_and_change_nothing(namespace: str, retention_ms: int,
                                                     field: str) -> None:
    shard = Shard()
    refused = shard.run_unchanged(ConfigureNamespace(now_ms=shard.now_ms, namespace=namespace,
                                                     retention_ms=retention_ms))
    assert refused.code is ErrorCode.INVALID_ARGUMENT and refused.field == field


def test_namespaces_per_shard_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from raftflow.shards.core import on_namespace
    monkeypatch.setattr(on_namespace, "NAMESPACES_MAX", 2)
    shard = Shard()
    assert _configure(shard, "a", 1_000) == Ack() and _configure(shard, "b", 1_000) == Ack()
    refused = shard.run_unchanged(ConfigureNamespace(now_ms=shard.now_ms, namespace="c",
                                                     retention_ms=1_000))
    assert isinstance(refused, Rejected) and refused.code is ErrorCode.LIMIT_EXCEEDED
    assert _configure(shard, "a", 2_000) == Ack()  # changing a known one is still allowed
