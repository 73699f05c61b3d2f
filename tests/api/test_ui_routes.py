"""Goal: the UI routes serve only the packaged files, by name, each with the strict headers the
module promises; no request reaches another file, whatever its path says.

Method: the three UI handlers on a bare aiohttp app (the gateway mounts the same ones), asked
through aiohttp's test client for every packaged file, for names that are not among them
(traversals included, raw and percent-encoded), and for `/ui` itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from raftflow.api import ui_routes as ui
from raftflow.protocol.errors import RaftflowError


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except RaftflowError as error:  # what the gateway's error middleware turns into a JSON 4xx
        return web.json_response({"code": error.code}, status=error.http_status)


def _app() -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[ui.UI_FILES_KEY] = ui.load_ui_files()
    app.router.add_get("/ui", ui.ui_redirect)
    app.router.add_get(ui.UI_PATH, ui.ui_index)
    app.router.add_get(ui.UI_FILE_PATH, ui.ui_file)
    return app


async def _with_client(check: Any) -> None:
    client = TestClient(TestServer(_app()))
    await client.start_server()
    try:
        await check(client)
    finally:
        await client.close()


def test_every_packaged_file_is_served_with_the_strict_headers() -> None:
    files = ui.load_ui_files()
    assert ui.INDEX in files and 1 < len(files) <= ui.UI_FILES_MAX

    async def check(client: TestClient[Any, Any]) -> None:
        for name, packaged in files.items():
            path = ui.UI_PATH if name == ui.INDEX else ui.UI_PATH + name
            answer = await client.get(path)
            assert answer.status == 200, name
            assert await answer.read() == packaged.body
            assert answer.content_type == packaged.content_type
            policy = answer.headers["Content-Security-Policy"]
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
        redirect = await client.get("/ui", allow_redirects=False)
        assert redirect.status == 302 and redirect.headers["Location"] == ui.UI_PATH

    asyncio.run(_with_client(check))


def test_no_other_name_reaches_a_file() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        for path in ("/ui/nope.js", "/ui/..%2Fui_routes.py", "/ui/%2E%2E%2F%2E%2E%2Fapp.py",
                     "/ui/..%2F..%2F..%2Fpyproject.toml", "/ui/index.html%00.js"):
            answer = await client.get(path)
            assert answer.status == 404, (path, answer.status)
            assert b"import" not in await answer.read()
        # A path with more segments matches no UI route at all.
        assert (await client.get("/ui/static/index.html")).status == 404

    asyncio.run(_with_client(check))
