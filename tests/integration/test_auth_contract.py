"""Issue 14's contract for auth, on real `raftflow node --auth-tokens FILE` processes.

Goal: with a TOML tokens file (one key kept only as its SHA-256), a start without a token is
401, with a reader token 403, with a writer token of another namespace 403, with the right
writer token 201 — on every node, so forwarded calls too; a forged task token is refused (4xx)
and the task is then completed by its real worker, an SDK worker holding a worker key; the CLI
works with `--token` and `RAFTFLOW_TOKEN` and fails clearly without; a SIGHUP reloads the file
(a new key works, a removed one stops), and a broken file keeps the keys in force; `raftflow
dev --auth-tokens` secures its nodes.
Method: three node processes on loopback (LocalCluster with --auth-tokens), plain HTTP, the SDK
and the CLI as a subprocess; then `raftflow dev` as a user runs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from raftflow.cluster.launcher import LocalCluster, free_port_block, load_or_create_dev_config
from raftflow.sdk import Client, Worker, activity, workflow
from raftflow.sdk.errors import RPCError
from tests.http_retry import retrying_503
from tests.integration.test_task_token_forgery import _forgeries

SHOP = "/api/v1/namespaces/shop"
KEYS = {"admin": ["admin"], "shop-writer": ["writer:shop"], "shop-reader": ["reader:shop"],
        "shop-worker": ["worker:shop"], "other-writer": ["writer:other"]}
HASHED = "shop-worker"  # kept in the file as key_sha256 only
QUEUE = "secured"


def _tokens_file(keys: dict[str, list[str]]) -> str:
    entries = []
    for name, roles in keys.items():
        secret = f"key-{name}"
        field = (f'key_sha256 = "{hashlib.sha256(secret.encode()).hexdigest()}"'
                 if name == HASHED else f'key = "{secret}"')
        entries.append(f'[[token]]\nname = "{name}"\n{field}\nroles = {json.dumps(roles)}\n')
    return "\n".join(entries)


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{name}"}


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[LocalCluster, Path]]:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(_tokens_file(KEYS))
    config = load_or_create_dev_config(tmp_path, nodes=3, shards=8,
                                       http_port=free_port_block(3, random.Random()))
    cluster = LocalCluster(config, tmp_path, node_args={
        n.id: ["--auth-tokens", str(tokens)] for n in config.nodes})
    cluster.start()
    try:
        cluster.wait_ready()  # asks status with the node credential
        yield cluster, tokens
    finally:
        cluster.stop()


# The "box" attempt hands its task to the test and waits until the forgeries are refused.
_HELD: dict[str, Any] = {}


@activity.defn
async def pack(item: str) -> str:
    if item == "box":
        info = activity.info()
        _HELD["task"] = {"task_token": info.task_token, "namespace": info.namespace,
                         "workflow_id": info.workflow_id, "run_id": info.run_id}
        _HELD["seen"].set()
        await _HELD["refused"].wait()
    return f"packed {item}"


@workflow.defn
class Parcel:
    @workflow.run
    async def run(self, item: str) -> str:
        return str(await workflow.execute_activity(
            pack, item, start_to_close_timeout=timedelta(seconds=10)))


async def _call(session: aiohttp.ClientSession, method: str, url: str, who: str | None = None,
                body: Any = None) -> tuple[int, Any]:
    """One call's (status, body); a 503 (a leadership moving) is sent again after its
    Retry-After, as docs/api.md tells clients (tests/http_retry.py). Bodies that change state carry
    a request_id, so a resend is safe."""
    headers = _auth(who) if who else {}

    async def once() -> tuple[int, Any, str | None]:
        async with session.request(method, url, json=body, headers=headers) as answer:
            text = await answer.text()
            return (answer.status, json.loads(text) if text else None,
                    answer.headers.get("Retry-After"))

    return await retrying_503(once)


def _cli(cluster: LocalCluster, *args: str, token: str | None = None,
         env_token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAFTFLOW_TOKEN"}
    if env_token:
        env["RAFTFLOW_TOKEN"] = env_token
    flags = ["--token", token] if token else []
    return subprocess.run([sys.executable, "-m", "raftflow", *args, "--json", "--address",
                           cluster.address(cluster.node_ids[1]), *flags],
                          capture_output=True, text=True, timeout=60, env=env, check=False)


def test_tokens_roles_forgery_cli_and_reload(secured: tuple[LocalCluster, Path]) -> None:
    cluster, tokens = secured
    addresses = [cluster.address(n) for n in cluster.node_ids]

    # The CLI: --token for the admin, nothing (401, said clearly) without one.
    refused = _cli(cluster, "namespace", "create", "shop")
    assert refused.returncode == 1 and "unauthenticated" in refused.stderr, refused.stderr
    created = _cli(cluster, "namespace", "create", "shop", token="key-admin")
    assert created.returncode == 0 and json.loads(created.stdout)["name"] == "shop", created

    async def contract() -> None:
        async with aiohttp.ClientSession() as session:
            for n, address in enumerate(addresses):
                body = {"workflow_id": f"c-{n}", "workflow_type": "Parcel", "task_queue": QUEUE,
                        "input": "x", "request_id": f"r-{n}"}
                for who, expected in ((None, 401), ("shop-reader", 403), ("other-writer", 403),
                                      ("shop-worker", 403), ("shop-writer", 201)):
                    status, answer = await _call(session, "POST", address + SHOP + "/workflows",
                                                 who, body)
                    assert status == expected, (address, who, status, answer)
                    assert (status == 201) == ("run_id" in answer), answer
                    if status == 401:
                        assert answer["error"]["code"] == "unauthenticated", answer
                    elif status == 403:
                        assert answer["error"]["code"] == "permission_denied", answer
            status, _ = await _call(session, "GET", addresses[0] + "/healthz")
            assert status == 200

        worker_client = await Client.connect(addresses, namespace="shop", api_key="key-shop-worker")
        writer = await Client.connect(addresses, namespace="shop", api_key="key-shop-writer")
        reader = await Client.connect(addresses, namespace="shop", api_key="key-shop-reader")
        try:
            _HELD.update(seen=asyncio.Event(), refused=asyncio.Event())
            async with Worker(worker_client, task_queue=QUEUE, workflows=[Parcel],
                              activities=[pack]):
                forge = await writer.start_workflow(Parcel.run, "box", id="forge",
                                                    task_queue=QUEUE)
                await asyncio.wait_for(_HELD["seen"].wait(), 30)
                await _forgeries_refused(addresses, _HELD["task"])
                _HELD["refused"].set()  # now the real worker completes its task
                assert await forge.result() == "packed box"
                for n in range(3):
                    assert await writer.get_workflow_handle(f"c-{n}").result() == "packed x"
            with pytest.raises(RPCError) as denied:
                await reader.start_workflow(Parcel.run, "y", id="by-reader", task_queue=QUEUE)
            assert denied.value.status == 403
        finally:
            for client in (worker_client, writer, reader):
                await client.close()

    asyncio.run(contract())

    described = _cli(cluster, "workflow", "describe", "-n", "shop", "-w", "forge",
                     env_token="key-shop-reader")
    assert described.returncode == 0 and json.loads(described.stdout)["status"] == "COMPLETED"

    # SIGHUP: the new file's keys work on every node, the removed one does not.
    tokens.write_text(_tokens_file({**{k: v for k, v in KEYS.items() if k != "shop-reader"},
                                    "late-reader": ["reader:shop"]}))
    for process in cluster.processes.values():
        os.kill(process.pid, signal.SIGHUP)
    _until_cli(cluster, "late", "key-late-reader", 0)
    _until_cli(cluster, "gone", "key-shop-reader", 1)
    tokens.write_text("[[token]]\nthis is not TOML")
    for process in cluster.processes.values():
        os.kill(process.pid, signal.SIGHUP)
    time.sleep(1.0)  # nothing to wait for: the point is that nothing changes
    assert _cli(cluster, "workflow", "describe", "-n", "shop", "-w", "forge",
                token="key-late-reader").returncode == 0
    logs = "".join((cluster.log_dir / f"{n}.log").read_text() for n in cluster.node_ids)
    assert logs.count("tokens file not reloaded") == 3, logs[-2000:]


async def _forgeries_refused(addresses: list[str], task: dict[str, Any]) -> None:
    """Altered, unsigned and other-cluster tokens of the held activity task, sent by a caller
    who may complete shop's tasks: 400 invalid_task_token on every node, nothing recorded."""
    async with aiohttp.ClientSession() as session:
        path = f"{SHOP}/workflows/forge/history"
        _, before = await _call(session, "GET", addresses[0] + path, "shop-reader")
        for n, forged in enumerate(_forgeries(task["task_token"], task, "activity")):
            status, answer = await _call(
                session, "POST", addresses[n % 3] + "/api/v1/tasks/activity/complete",
                "shop-worker", {"task_token": forged, "result": "forged"})
            assert status == 400 and answer["error"]["code"] == "invalid_task_token", answer
        _, after = await _call(session, "GET", addresses[1] + path, "shop-reader")
        assert after["events"] == before["events"]


def _until_cli(cluster: LocalCluster, what: str, token: str, returncode: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        done = _cli(cluster, "workflow", "describe", "-n", "shop", "-w", "forge", token=token)
        if done.returncode == returncode:
            return
        assert time.monotonic() < deadline, (what, done.stderr)
        time.sleep(0.2)


def test_dev_passes_auth_tokens_to_its_nodes(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(_tokens_file({"admin": ["admin"]}))
    port = free_port_block(3, random.Random())
    process = subprocess.Popen(
        [sys.executable, "-m", "raftflow", "dev", "--nodes", "3", "--data-dir",
         str(tmp_path / "data"), "--http-port", str(port), "--shards", "4",
         "--auth-tokens", str(tokens)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while not any("stop with Ctrl-C" in line for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, lines
            lines.append(process.stdout.readline())
        assert any("auth: on" in line for line in lines), lines

        async def check() -> None:
            async with aiohttp.ClientSession() as session:
                for n in range(3):
                    url = f"http://127.0.0.1:{port + n}/api/v1/namespaces/default/workflows"
                    body = {"workflow_id": f"dev-{n}", "workflow_type": "T", "task_queue": "q",
                            "request_id": f"dev-r-{n}"}
                    status, _ = await _call(session, "POST", url, None, body)
                    assert status == 401
                    status, answer = await _call(session, "POST", url, "admin", body)
                    assert status == 201, answer

        asyncio.run(check())
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
