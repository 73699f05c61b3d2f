"""The membership commands retry 503/504 answers (idempotent commands) and nothing else.

Found by the contract test in CI: `cluster remove --force`, sent right after the node that led
the cluster map was killed, got 503 not_leader from the node it asked (whose forward to the
dead leader failed) and the CLI gave up, though a second later the map had a new leader.
Method: a fake API that answers a scripted sequence; the retry pause is patched to zero.
"""

from __future__ import annotations

import argparse
import io

import pytest

from raftflow import cli_membership
from raftflow.cli_output import CliError, JsonObject


class ScriptedApi:
    def __init__(self, *answers: JsonObject | CliError) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, dict[str, str] | None]] = []

    def call(self, method: str, path: str, body: JsonObject | None = None,
             query: dict[str, str] | None = None) -> JsonObject:
        self.calls.append((method, path, query))
        answer = self.answers.pop(0)
        if isinstance(answer, CliError):
            raise answer
        return answer


def _args(**fields: object) -> argparse.Namespace:
    return argparse.Namespace(json=True, node="node-2", force=True, **fields)


def test_a_remove_answered_not_leader_is_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_membership, "RETRY_PAUSE_S", 0.0)
    api = ScriptedApi(CliError("not_leader", "no leader of the cluster map known yet"),
                      CliError("timeout", "may still apply"), {"node_id": "node-2", "epoch": 9})
    answer = cli_membership.cluster_remove(_args(), api, io.StringIO())
    assert answer == {"node_id": "node-2", "epoch": 9}
    assert [c[1] for c in api.calls] == ["/api/v1/cluster/nodes/node-2/remove"] * 3
    assert all(c[2] == {"force": "true"} for c in api.calls)


def test_a_refusal_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_membership, "RETRY_PAUSE_S", 0.0)
    api = ScriptedApi(CliError("failed_precondition", "cannot drain node node-2: ..."))
    with pytest.raises(CliError) as refused:
        cli_membership.cluster_drain(_args(wait=False, wait_timeout=1.0), api, io.StringIO())
    assert refused.value.code == "failed_precondition" and len(api.calls) == 1
