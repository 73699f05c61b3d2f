"""With `--log-format json`: every line logged while a call is served names the workflow the
call addresses (json_logs.py). Installed only with JSON logs, so text logs cost nothing here."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from raftflow.observability.json_logs import RequestFields, bind_request, unbind_request


@web.middleware
async def log_fields_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Only what the path and query name: bodies are decoded by the handlers, once.
    path = request.match_info
    namespace = path.get("namespace", "")
    if not namespace:
        return await handler(request)
    token = bind_request(RequestFields(namespace=namespace,
                                       workflow_id=path.get("workflow_id", ""),
                                       run_id=request.query.get("run_id", "")))
    try:
        return await handler(request)
    finally:
        unbind_request(token)
