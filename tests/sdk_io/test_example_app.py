"""The sample apps in examples/ work as their docstrings say: the order app (what `make run`
starts) and the encryption codec example.

Method: load each example as a module, run its worker against a real 3-node cluster and drive
it with its own client function (`place_order`, `send_letter`), which queries, signals and
awaits the result.
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

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str = "order_app") -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as when run as a script: classes are found by module
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


def test_encryption_example_round_trips_through_ciphertext(cluster: LocalCluster,
                                                            capsys: Any) -> None:
    app = _load("encryption_codec")
    addresses = [cluster.address(n) for n in cluster.node_ids]
    codec = app.AesGcmCodec({"k1": app.AesGcmCodec.new_key()}, encrypt_with="k1")

    async def main() -> None:
        worker = asyncio.create_task(app.run_worker(addresses, codec))
        try:
            await asyncio.wait_for(app.send_letter(addresses, codec, "sample-letter-1",
                                                   "meet at noon"), timeout=60)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    asyncio.run(main())
    out = capsys.readouterr().out
    assert "'letter': 'meet at noon (stamped)'" in out
    assert "status: countersigned by the sender" in out
    held = out.split("the server holds the input as:")[1]
    assert "_raftflow_payload" in held and "meet at noon" not in held
