"""The sample app in examples/ (what `make run` starts) works as its docstring says.

Method: load examples/order_app.py as a module, run its worker against a real 3-node cluster
and place an order with its own `place_order`, which queries, signals and awaits the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from raftflow.cluster.launcher import LocalCluster

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order_app.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("order_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["order_app"] = module  # as when run as a script: classes are found by module
    spec.loader.exec_module(module)
    return module


def test_sample_order_app_completes(cluster: LocalCluster, capsys: Any) -> None:
    app = _load()
    addresses = [cluster.address(n) for n in cluster.node_ids]

    async def main() -> None:
        worker = asyncio.create_task(app.run_worker(addresses))
        try:
            await asyncio.wait_for(app.place_order(addresses, "sample-order-1"), timeout=60)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    asyncio.run(main())
    out = capsys.readouterr().out
    assert "status: waiting for approval" in out
    assert "'receipt': 'receipt-sample-order-1'" in out
    assert "parcel for sample-order-1 with 2 items" in out
