"""`raftflow workflow replay`: a saved history against current code, as users run it in CI.

Method: the golden history of the Order workflow (recorded on a real cluster) replayed with the
code that wrote it (passes), and with a changed version registered under the same type name
(ships before charging: must fail naming the diverging event), through the library call and
through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from raftflow.cli import main
from raftflow.sdk import errors, workflow
from raftflow.sdk.replayer import replay_history
from tests.sdk.sample_workflows import FAST, Order, charge, ship

HISTORY = Path(__file__).resolve().parents[1] / "data" / "histories" / "order_retry.json"


@workflow.defn(name="Order")
class ReorderedOrder:
    @workflow.run
    async def run(self, order: str) -> dict[str, str]:
        shipped = await workflow.execute_activity(ship, order, start_to_close_timeout=FAST)
        charged = await workflow.execute_activity(charge, order, start_to_close_timeout=FAST)
        return {"charge": charged, "ship": shipped}


def test_the_code_that_wrote_a_history_replays_it() -> None:
    result = replay_history(json.loads(HISTORY.read_text()), [Order])
    assert result.workflow_type == "Order" and result.closed and result.next_commands == []


def test_changed_code_is_reported_with_the_diverging_event() -> None:
    with pytest.raises(errors.NondeterminismError) as caught:
        replay_history(json.loads(HISTORY.read_text()), [ReorderedOrder])
    message = str(caught.value)
    assert "ship" in message and "charge" in message


def test_cli_exit_codes(capsys: Any) -> None:
    ok = main(["workflow", "replay", "--history", str(HISTORY),
               "--workflows", "tests.sdk.sample_workflows:Order", "--json"])
    assert ok == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["closed"] is True
    diverged = main(["workflow", "replay", "--history", str(HISTORY),
                     "--workflows", "tests.sdk.test_replayer:ReorderedOrder"])
    assert diverged == 1
    assert "nondeterminism" in capsys.readouterr().err
