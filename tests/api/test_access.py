"""Goal: with auth on, every kind of route answers exactly the callers its rule allows — no
credentials or bad ones 401 (JSON body, WWW-Authenticate), a valid caller without the role
403, the right role passes — on every node, forwarded calls included; a task completion is
authorized by the namespace inside its signed token; only the cluster's node credential makes
a caller header believed; JWTs work beside API keys; `/healthz` and the OpenAPI document stay
open and `/metrics` is protected only when asked.
Method: three in-process nodes sharing one `Authenticator` (tokens file + HS256 JWT key), plain
HTTP calls with each token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from raftflow.api.access import Authenticator
from raftflow.api.api_keys import load_api_keys
from raftflow.api.jwt_auth import JwtSettings, JwtVerifier
from raftflow.api.principals import CALLER_HEADER, encode_caller, principal_of
from raftflow.cluster.node_credential import NODE_CREDENTIAL_HEADER, node_credential
from tests.api.gateway_harness import API, Call, LiveCluster, _drive, _error_code, _wid
from tests.http_retry import retrying_503

SHOP = f"{API}/namespaces/shop"
TOKENS = {  # name -> roles; each key is "key-<name>"
    "admin": ["admin"], "shop-writer": ["writer:shop"], "shop-reader": ["reader:shop"],
    "shop-worker": ["worker:shop"], "other-writer": ["writer:other"],
    "other-worker": ["worker:other"], "scraper": ["metrics"],
}
JWT_SECRET = b"0123456789abcdef0123456789abcdef"


def _bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{name}"}


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Authenticator:
    directory = tmp_path_factory.mktemp("auth")
    tokens = directory / "tokens.toml"
    tokens.write_text("".join(f'[[token]]\nname = "{name}"\nkey = "key-{name}"\nroles = {roles}\n'
                              for name, roles in TOKENS.items()).replace("'", '"'))
    secret = directory / "jwt.key"
    secret.write_bytes(JWT_SECRET)
    return Authenticator(node_credential=node_credential("test-secret"),
                         api_keys=load_api_keys(tokens),
                         jwt=JwtVerifier(JwtSettings(hs256_secret_file=secret)),
                         protect_metrics=False)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, auth: Authenticator,
            ) -> Iterator[LiveCluster]:
    cluster = LiveCluster(tmp_path_factory.mktemp("secured"), 3, 4, auth=auth)
    cluster.start()
    try:
        async def create(call: Call) -> None:
            for name in ("shop", "other"):
                async def once(name: str = name) -> tuple[int, Any, str | None]:
                    status, body, headers = await call(
                        "POST", f"{API}/namespaces", json={"name": name},
                        headers=_bearer("admin"))
                    return status, body, headers.get("Retry-After")
                # The map's leader may still be moving just after start-up: a 503 is sent
                # again after its Retry-After (a create is idempotent), as docs/api.md says.
                status, body = await retrying_503(once)
                assert status in (200, 201), body
        _drive(cluster, cluster.url(cluster.nodes[0]), create)
        yield cluster
    finally:
        cluster.stop()


def _start(workflow_id: str) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "workflow_type": "T", "task_queue": "q", "input": 1}


async def _expect(call: Call, method: str, path: str, allowed: tuple[str, ...],
                  denied: tuple[str, ...], **kwargs: Any) -> None:
    status, body, headers = await call(method, path, **kwargs)
    assert status == 401 and _error_code(body) == "unauthenticated", (path, status, body)
    assert headers["WWW-Authenticate"].startswith("Bearer"), headers
    for name in denied:
        status, body, _ = await call(method, path, headers=_bearer(name), **kwargs)
        assert status == 403 and _error_code(body) == "permission_denied", (path, name, body)
        assert name in body["error"]["message"], body
    for name in allowed:  # past the access check: the call's own answer (a repeated start: 409)
        status, body, _ = await call(method, path, headers=_bearer(name), **kwargs)
        assert status < 300 or status == 409, (path, name, status, body)


def test_each_route_kind_admits_exactly_its_roles(secured: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        await _expect(call, "POST", f"{SHOP}/workflows", ("shop-writer", "admin"),
                      ("shop-reader", "shop-worker", "other-writer", "scraper"),
                      json=_start(_wid("rules")))
        status, _, _ = await call("POST", f"{SHOP}/workflows", json=_start("seen"),
                                  headers=_bearer("shop-writer"))
        assert status in (200, 201)
        await _expect(call, "GET", f"{SHOP}/workflows/seen", ("shop-reader", "shop-writer"),
                      ("shop-worker", "other-writer"))
        await _expect(call, "GET", f"{SHOP}/workflows/seen/history", ("shop-reader",),
                      ("other-writer",))
        await _expect(call, "GET", f"{SHOP}/workflow-count", ("shop-reader",), ("shop-worker",))
        await _expect(call, "GET", f"{SHOP}/workflows", ("shop-reader",), ("other-writer",))
        await _expect(call, "POST", f"{SHOP}/workflows/seen/signal", ("shop-writer",),
                      ("shop-reader",), json={"signal_name": "s"})
        await _expect(call, "POST", f"{SHOP}/task-queues/q/activity-tasks/poll",
                      ("shop-worker",), ("shop-writer", "other-worker"), json={"wait_ms": 0})
        await _expect(call, "GET", SHOP, ("shop-worker", "shop-reader"), ("other-writer",))
        await _expect(call, "PATCH", SHOP, ("admin",), ("shop-writer",),
                      json={"description": "d"})
        await _expect(call, "POST", f"{API}/namespaces", ("admin",), ("shop-writer",),
                      json={"name": "shop"})
        await _expect(call, "GET", f"{API}/namespaces", ("shop-worker", "scraper"), ())
        await _expect(call, "GET", f"{API}/cluster/status", ("shop-worker",), ())
        await _expect(call, "GET", f"{API}/cluster/map", ("admin",), ("shop-writer",))
        await _expect(call, "GET", f"{API}/node/digests", ("admin",), ("shop-reader",))
        await _expect(call, "POST", f"{API}/tasks/poll/end", ("admin",), ("shop-worker",),
                      json={"poll_ids": []})
        await _expect(call, "POST", f"{API}/cluster/rebalance?dry_run=true", ("admin",),
                      ("shop-writer",))
        for open_path in ("/healthz", f"{API}/openapi.json", "/metrics"):
            status, _, _ = await call("GET", open_path)
            assert status == 200, open_path

    _drive(secured, secured.url(secured.nodes[0]), scenario)


def test_bad_credentials_are_401_and_unknown_routes_404(secured: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        path = f"{SHOP}/workflows"
        for headers in ({"Authorization": "Basic a2V5LWFkbWluOg=="},
                        {"Authorization": "Bearer"}, {"Authorization": "Bearer key-nobody"},
                        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA"},
                        # a caller header alone is not believed: only a node may send one
                        {CALLER_HEADER: encode_caller(principal_of("x", ["admin"]))},
                        {NODE_CREDENTIAL_HEADER: node_credential("another-cluster")}):
            status, body, _ = await call("POST", path, json=_start(_wid("bad")), headers=headers)
            assert status == 401 and _error_code(body) == "unauthenticated", (headers, body)
        status, _, _ = await call("GET", f"{API}/no-such-route")
        assert status == 404
        status, _, _ = await call("HEAD", f"{SHOP}/workflows/seen")  # no GET twin left open
        assert status == 405

    _drive(secured, secured.url(secured.nodes[0]), scenario)


def test_a_node_is_trusted_and_speaks_for_the_caller_it_forwards(secured: LiveCluster) -> None:
    node = {NODE_CREDENTIAL_HEADER: node_credential("test-secret")}

    async def scenario(call: Call) -> None:
        status, _, _ = await call("GET", f"{API}/cluster/map", headers=node)
        assert status == 200
        reader = encode_caller(principal_of("fwd-reader", ["reader:shop"]))
        status, body, _ = await call("POST", f"{SHOP}/workflows", json=_start(_wid("fwd")),
                                     headers={**node, CALLER_HEADER: reader})
        assert status == 403 and "fwd-reader" in body["error"]["message"], body
        status, body, _ = await call("POST", f"{SHOP}/workflows", json=_start(_wid("fwd")),
                                     headers={**node, CALLER_HEADER: "%%"})
        assert status == 401, body
        # The namespace check a lagging node relays to the map's leader goes with the caller
        # of the checked call (any role in the namespace): it must pass for a writer, or a
        # writer would get 403 from a node that has not seen the namespace yet.
        for name, expected in (("shop-writer", 200), ("shop-worker", 200),
                               ("other-writer", 403)):
            who = encode_caller(principal_of(name, TOKENS[name]))
            for method in ("POST", "GET"):
                status, body, _ = await call(method, f"{SHOP}/known",
                                             headers={**node, CALLER_HEADER: who})
                assert status == expected, (name, method, body)

    _drive(secured, secured.url(secured.nodes[1]), scenario)


def test_forwarded_calls_are_authorized_as_their_caller_on_every_node(
        secured: LiveCluster) -> None:
    served_by: set[str] = set()
    for node in secured.nodes:
        async def scenario(call: Call) -> None:
            for n in range(8):
                workflow_id = _wid(f"fwd{n}")
                status, body, _ = await call("POST", f"{SHOP}/workflows",
                                             json=_start(workflow_id), headers=_bearer("shop-reader"))
                assert status == 403, body
                status, body, headers = await call("POST", f"{SHOP}/workflows",
                                                   json=_start(workflow_id),
                                                   headers=_bearer("shop-writer"))
                assert status == 201, body
                served_by.add(headers.get("X-Raftflow-Served-By", ""))

        _drive(secured, secured.url(node), scenario)
    assert len(served_by - {""}) >= 2, served_by  # some calls were forwarded to other leaders


def test_a_task_is_completed_only_by_a_worker_of_its_tokens_namespace(
        secured: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        workflow_id = _wid("task")
        status, _, _ = await call("POST", f"{SHOP}/workflows", json={
            **_start(workflow_id), "task_queue": "tq-auth"}, headers=_bearer("shop-writer"))
        assert status == 201
        task: Any = None
        for _ in range(20):
            status, task, _ = await call(
                "POST", f"{SHOP}/task-queues/tq-auth/workflow-tasks/poll",
                json={"wait_ms": 1000}, headers=_bearer("shop-worker"))
            if status == 200:
                break
        assert status == 200, task
        complete = {"task_token": task["task_token"],
                    "commands": [{"type": "CompleteWorkflowExecution", "result": 1}]}
        for name in ("other-worker", "shop-writer"):
            status, body, _ = await call("POST", f"{API}/tasks/workflow/complete", json=complete,
                                         headers=_bearer(name))
            assert status == 403 and "namespace 'shop'" in body["error"]["message"], body
        status, body, _ = await call("GET", f"{SHOP}/workflows/{workflow_id}",
                                     headers=_bearer("shop-reader"))
        assert body["status"] == "RUNNING", body
        status, body, _ = await call("POST", f"{API}/tasks/workflow/complete", json=complete,
                                     headers=_bearer("shop-worker"))
        assert status == 200, body
        status, body, _ = await call("GET", f"{SHOP}/workflows/{workflow_id}",
                                     headers=_bearer("shop-reader"))
        assert body["status"] == "COMPLETED", body

    _drive(secured, secured.url(secured.nodes[2]), scenario)


def test_jwts_work_beside_api_keys(secured: LiveCluster) -> None:
    def token(**claims: Any) -> dict[str, str]:
        body = {"sub": "ci-bot", "roles": ["writer:shop"], "exp": int(time.time()) + 60, **claims}
        return {"Authorization": f"Bearer {jwt.encode(body, JWT_SECRET, algorithm='HS256')}"}

    async def scenario(call: Call) -> None:
        status, body, _ = await call("POST", f"{SHOP}/workflows", json=_start(_wid("jwt")),
                                     headers=token())
        assert status == 201, body
        status, body, _ = await call("POST", f"{API}/namespaces/other/workflows",
                                     json=_start(_wid("jwt")), headers=token())
        assert status == 403 and "ci-bot" in body["error"]["message"], body
        status, body, _ = await call("POST", f"{SHOP}/workflows", json=_start(_wid("jwt")),
                                     headers=token(exp=int(time.time()) - 600))
        assert status == 401 and "expired" in body["error"]["message"], body

    _drive(secured, secured.url(secured.nodes[1]), scenario)


def test_metrics_are_protected_only_when_asked(secured: LiveCluster,
                                               auth: Authenticator) -> None:
    auth.protect_metrics = True
    try:
        async def scenario(call: Call) -> None:
            status, _, _ = await call("GET", "/metrics")
            assert status == 401
            status, _, _ = await call("GET", "/metrics", headers=_bearer("shop-writer"))
            assert status == 403
            for name in ("scraper", "admin"):
                status, _, _ = await call("GET", "/metrics", headers=_bearer(name))
                assert status == 200, name
            status, _, _ = await call("GET", "/healthz")
            assert status == 200

        _drive(secured, secured.url(secured.nodes[0]), scenario)
    finally:
        auth.protect_metrics = False


def test_keys_can_be_replaced_while_running(secured: LiveCluster, auth: Authenticator,
                                            tmp_path: Path) -> None:
    before = auth.api_keys
    assert before is not None
    path = tmp_path / "rotated.toml"
    path.write_text('[[token]]\nname = "new-writer"\nkey = "rotated"\nroles = ["writer:shop"]\n')
    auth.replace_keys(load_api_keys(path))
    try:
        async def scenario(call: Call) -> None:
            status, _, _ = await call("POST", f"{SHOP}/workflows", json=_start(_wid("rot")),
                                      headers={"Authorization": "Bearer rotated"})
            assert status == 201
            status, _, _ = await call("POST", f"{SHOP}/workflows", json=_start(_wid("rot")),
                                      headers=_bearer("shop-writer"))
            assert status == 401  # the old key went with the old file

        _drive(secured, secured.url(secured.nodes[2]), scenario)
    finally:
        auth.replace_keys(before)
