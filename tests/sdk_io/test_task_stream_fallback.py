"""A worker meets a node without the task stream route (an earlier release): it long-polls
that node over HTTP instead, and keeps polling until it shuts down.

Method: an in-process aiohttp server on loopback that knows no `/stream` (404, as an earlier
node answers) and answers every poll 204 after a short wait, recording each path it served.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from raftflow.sdk import Client, Worker, activity


@activity.defn
async def noop() -> None:
    return None


def test_a_node_without_streams_is_polled_over_http() -> None:
    seen: list[str] = []

    async def poll(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        await asyncio.sleep(0.05)
        return web.Response(status=204)

    async def other(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        if request.path == "/healthz":
            return web.json_response({"status": "ok", "node_id": "old"})
        return web.json_response({"error": {"code": "not_found", "message": "no route"}},
                                 status=404)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/api/v1/namespaces/default/task-queues/q/activity-tasks/poll",
                            poll)
        app.router.add_route("*", "/{tail:.*}", other)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            client = await Client.connect(f"http://127.0.0.1:{port}")
            async with client, Worker(client, task_queue="q", activities=[noop]):
                for _ in range(200):
                    if seen.count(
                            "/api/v1/namespaces/default/task-queues/q/activity-tasks/poll") >= 3:
                        break
                    await asyncio.sleep(0.05)
        finally:
            await runner.cleanup()

    asyncio.run(main())
    assert "/api/v1/namespaces/default/task-queues/q/stream" in seen
    polls = seen.count("/api/v1/namespaces/default/task-queues/q/activity-tasks/poll")
    assert polls >= 3, seen
