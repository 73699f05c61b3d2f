"""The aiohttp application of one node: routes, error mapping, metrics. Frozen after start-up."""

from __future__ import annotations

import logging
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from raftflow.api import admin_handlers as admin
from raftflow.api import batch_handlers as batches
from raftflow.api import membership_handlers as membership
from raftflow.api import message_handlers as messages
from raftflow.api import namespace_handlers as namespaces
from raftflow.api import query_handlers as query
from raftflow.api import reset_handlers as resets
from raftflow.api import schedule_handlers as schedules
from raftflow.api import task_handlers as tasks
from raftflow.api import ui_routes as ui
from raftflow.api import update_handlers as updates
from raftflow.api import visibility_handlers as visibility
from raftflow.api import workflow_handlers as workflows
from raftflow.api.access import (
    ADMIN,
    METRICS,
    OPEN,
    READ,
    SEE_NAMESPACE,
    SIGNED_IN,
    WORK,
    WORK_ON_TASK,
    WRITE,
    Authenticator,
    Rule,
    access_middleware,
)
from raftflow.api.errors import InternalError, PayloadTooLargeError, error_response
from raftflow.api.handouts import HANDOUT_PATH
from raftflow.api.message_courier import DELIVER_BODY_BYTES_MAX, MESSAGES_PATH
from raftflow.api.metrics import Metrics, metrics_handler, metrics_middleware
from raftflow.api.metrics_cluster import ClusterSource
from raftflow.api.polling import TaskPoller
from raftflow.api.query_broker import QueryBroker
from raftflow.api.rate_limits import (
    UNLIMITED,
    LimitKind,
    NamespaceRateLimiter,
    RateDefaults,
    rate_limited,
)
from raftflow.api.request_logs import log_fields_middleware
from raftflow.api.request_traces import TRACER_KEY, tracing_middleware
from raftflow.api.routing import Gateway
from raftflow.api.task_calls import TASK_CALLS
from raftflow.api.task_stream_handler import task_stream
from raftflow.matching.matcher import Matcher
from raftflow.observability.config import DEFAULT_OBSERVABILITY, ObservabilityConfig
from raftflow.observability.tracing import NodeTracer
from raftflow.protocol.errors import RaftflowError
from raftflow.protocol.limits import ID_LENGTH_MAX
from raftflow.visibility.limits import QUERY_CHARS_MAX
from raftflow.visibility.paging import PAGE_TOKEN_LENGTH_MAX

log = logging.getLogger(__name__)

NS = "/api/v1/namespaces/{namespace}"
WF = NS + "/workflows/{workflow_id}"
TQ = NS + "/task-queues/{task_queue}"
# aiohttp's own body bound, above validation.BODY_BYTES_MAX so that our check answers first.
CLIENT_MAX_SIZE_BYTES = 4 * 1024 * 1024
assert DELIVER_BODY_BYTES_MAX < CLIENT_MAX_SIZE_BYTES
# aiohttp refuses a request line or header above 8190 bytes with a text/plain 400 before any
# handler runs. The longest valid request line holds three ids (namespace, workflow id, run
# id) of ID_LENGTH_MAX characters, or a namespace, a visibility query of QUERY_CHARS_MAX and
# a page token, each character up to 12 bytes percent-encoded (a 4-byte UTF-8 character is
# %XX%XX%XX%XX), plus the route and the other query parameters. Both are counted, so a line
# the OpenAPI document allows always reaches a handler (and its JSON answer).
REQUEST_LINE_BYTES_MAX = (12 * (3 * ID_LENGTH_MAX + QUERY_CHARS_MAX + PAGE_TOKEN_LENGTH_MAX)
                          + 4 * 1024)


class NodeForApp(admin.NodeView, membership.MembershipNode, ClusterSource, Protocol):
    @property
    def metrics(self) -> Metrics: ...

    def mailbox_depths(self) -> dict[int, int]: ...

    @property
    def matcher(self) -> Matcher: ...


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one catch boundary of the HTTP shell: typed errors become their JSON answer."""
    try:
        return await handler(request)
    except RaftflowError as error:
        return error_response(error)
    except web.HTTPRequestEntityTooLarge:
        # aiohttp refuses bodies above client_max_size before our own check sees them; the
        # caller still gets the JSON error of every other refusal (DESIGN §5).
        return error_response(PayloadTooLargeError(
            f"request body is larger than {CLIENT_MAX_SIZE_BYTES} bytes"))
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(InternalError())


def _metrics(node: NodeForApp) -> Handler:
    render = metrics_handler(node.metrics)

    async def handle(request: web.Request) -> web.StreamResponse:
        # Gauges are read at scrape time rather than updated on every enqueue.
        node.metrics.sample(node)
        return await render(request)

    return handle


async def _close_gateway(app: web.Application) -> None:
    await app[workflows.GATEWAY_KEY].close()


def make_app(*, gateway: Gateway, poller: TaskPoller, node: NodeForApp,
             auth: Authenticator | None = None,
             rate_defaults: RateDefaults = UNLIMITED,
             observability: ObservabilityConfig = DEFAULT_OBSERVABILITY,
             tracer: NodeTracer | None = None) -> web.Application:
    """The node's application; `auth` None: every route open (`raftflow dev`'s default);
    `rate_defaults`: the namespaces' rate limits where they set none (default: unlimited);
    `observability`: JSON logs add the middleware naming each call's workflow in its lines;
    `tracer` (--otel-exporter): one server span per call (request_traces.py)."""
    rules: dict[web.AbstractRoute, Rule] = {}
    limiter = NamespaceRateLimiter(lambda: node.cluster_map, rate_defaults)
    # Outermost first: the error middleware catches what the access and namespace checks
    # raise; access is checked before the namespace, so a stranger learns no namespace names.
    middlewares = [metrics_middleware(node.metrics), error_middleware]
    if observability.json_logs:  # outermost: the error middleware's lines carry the fields
        middlewares.insert(0, log_fields_middleware)
    if tracer is not None:  # outermost: the span covers the whole call and sees its status
        middlewares.insert(0, tracing_middleware(tracer))
    if auth is not None:
        middlewares.append(access_middleware(auth, rules))
    app = web.Application(middlewares=[*middlewares, namespaces.namespace_middleware],
                          client_max_size=CLIENT_MAX_SIZE_BYTES,
                          handler_args={"max_line_size": REQUEST_LINE_BYTES_MAX,
                                        "max_field_size": REQUEST_LINE_BYTES_MAX})

    def add(method: str, path: str, handler: Handler, rule: Rule,
            limit: LimitKind | None = None) -> None:
        # Every route names who may call it (access.py refuses a route without a rule). No
        # HEAD twins: a GET answers only GET, so no route exists without its rule.
        if limit is not None:
            # Spends its namespace's `limit` bucket after the middlewares ran: a call is
            # counted once it is allowed and its namespace exists (rate_limits.py).
            handler = rate_limited(limiter, limit, handler)
        rules[app.router.add_route(method, path, handler)] = rule

    app[workflows.GATEWAY_KEY] = gateway
    if tracer is not None:
        app[TRACER_KEY] = tracer
    app[tasks.POLLER_KEY] = poller
    app[admin.NODE_KEY] = node
    app[admin.SECURED_KEY] = auth is not None
    app[membership.MEMBERSHIP_KEY] = node
    app[namespaces.FOLLOWER_KEY] = node
    app[query.MATCHER_KEY] = node.matcher
    app[query.BROKER_KEY] = QueryBroker(node.node_id, node.matcher)
    app[updates.WAITERS_KEY] = updates.UpdateWaiters()
    app.on_cleanup.append(_close_gateway)
    add("GET", namespaces.NAMESPACES, namespaces.list_namespaces, SIGNED_IN)
    add("POST", namespaces.NAMESPACES, namespaces.create_namespace, ADMIN)
    add("GET", namespaces.NAMESPACE, namespaces.describe_namespace, SEE_NAMESPACE)
    add("PATCH", namespaces.NAMESPACE, namespaces.update_namespace, ADMIN)
    add("POST", namespaces.SEARCH_ATTRIBUTES, namespaces.add_search_attribute, ADMIN)
    # Internal (namespace_handlers.py): forwarded with the create's or update's own method.
    add("POST", namespaces.SHARD_CONFIGURE, namespaces.configure_shard, ADMIN)
    add("PATCH", namespaces.SHARD_CONFIGURE, namespaces.configure_shard, ADMIN)
    # Internal (namespace_handlers.py): relayed with whatever method the checked call has, and
    # with that call's caller, who holds a role in the namespace (or the call was refused).
    add("*", namespaces.NAMESPACE_KNOWN, namespaces.namespace_known, SEE_NAMESPACE)
    add("POST", NS + "/workflows", workflows.start_workflow, WRITE, LimitKind.STARTS)
    add("GET", NS + "/workflows", visibility.list_workflows, READ)
    add("GET", NS + "/workflow-count", visibility.count_workflows, READ)
    # Internal (visibility_handlers.py): one shard's part of a list or a count.
    add("GET", NS + "/shards/{shard}/workflows", visibility.list_shard_workflows, READ)
    add("GET", NS + "/shards/{shard}/workflow-count", visibility.count_shard_workflows, READ)
    add("GET", WF, workflows.describe_workflow, READ)
    add("GET", WF + "/history", workflows.workflow_history, READ)
    add("POST", WF + "/signal", workflows.signal_workflow, WRITE, LimitKind.STARTS)
    # One token of the start bucket, like a start or a signal alone.
    add("POST", WF + "/signal-with-start", workflows.signal_with_start_workflow, WRITE,
        LimitKind.STARTS)
    add("POST", WF + "/cancel", workflows.cancel_workflow, WRITE)
    add("POST", WF + "/terminate", workflows.terminate_workflow, WRITE)
    add("POST", WF + "/reset", resets.reset_workflow, WRITE)
    add("GET", WF + "/result", query.workflow_result, READ)
    add("POST", WF + "/query", query.query_workflow, READ)
    # One token of the start bucket, like a signal: an update is a write the worker runs.
    add("POST", WF + "/updates", updates.update_workflow, WRITE, LimitKind.STARTS)
    add("GET", WF + "/updates/{update_id}", updates.update_outcome, READ)
    add("POST", NS + "/batches", batches.start_batch, WRITE)
    add("GET", NS + "/batches", batches.list_batches, READ)
    add("GET", NS + "/batches/{job_id}", batches.describe_batch, READ)
    add("POST", NS + "/batches/{job_id}/stop", batches.stop_batch, WRITE)
    add("POST", "/api/v1/tasks/query/respond", query.respond_query, WORK_ON_TASK)
    add("POST", TQ + "/workflow-tasks/poll", tasks.poll_workflow_task, WORK, LimitKind.POLLS)
    add("POST", TQ + "/activity-tasks/poll", tasks.poll_activity_task, WORK, LimitKind.POLLS)
    # The SDK's worker protocol (protocol/task_stream.py): one WebSocket per worker and node.
    add("GET", TQ + "/stream", task_stream, WORK, LimitKind.POLLS)
    add("POST", "/api/v1/tasks/poll/end", tasks.end_polls, ADMIN)  # internal (polling.py)
    add("POST", HANDOUT_PATH, tasks.retry_handout, ADMIN)  # internal (handouts.py)
    add("POST", MESSAGES_PATH, messages.deliver_messages, ADMIN)  # internal (message_courier.py)
    add("POST", schedules.SCHEDULES, schedules.create_schedule, WRITE)
    add("GET", schedules.SCHEDULES, schedules.list_schedules, READ)
    add("GET", schedules.SCHEDULE, schedules.describe_schedule, READ)
    add("POST", schedules.SCHEDULE + "/update", schedules.update_schedule, WRITE)
    add("POST", schedules.SCHEDULE + "/patch", schedules.patch_schedule, WRITE)
    add("DELETE", schedules.SCHEDULE, schedules.delete_schedule, WRITE)
    # Internal (schedule_handlers.py): one shard's part of the schedule list.
    add("GET", schedules.SHARD_SCHEDULES, schedules.list_shard_schedules, READ)
    for task_call_path in TASK_CALLS:  # complete, fail, cancel, heartbeat (task_calls.py)
        add("POST", task_call_path, tasks.task_route(task_call_path), WORK_ON_TASK)
    add("GET", "/api/v1/cluster/status", admin.cluster_status, SIGNED_IN)
    add("GET", "/api/v1/cluster/map", membership.cluster_map, ADMIN)
    add("POST", "/api/v1/cluster/join", membership.join, ADMIN)
    add("POST", "/api/v1/cluster/nodes/{node_id}/drain", membership.drain_node, ADMIN)
    add("POST", "/api/v1/cluster/nodes/{node_id}/remove", membership.remove_node, ADMIN)
    add("POST", "/api/v1/cluster/rebalance", membership.rebalance, ADMIN)
    add("GET", "/api/v1/node/status", admin.node_status, ADMIN)  # also asked by other nodes
    add("GET", "/api/v1/node/digests", admin.node_digests, ADMIN)
    add("GET", "/api/v1/openapi.json", admin.openapi, OPEN)
    add("GET", "/healthz", admin.healthz, OPEN)
    add("GET", "/metrics", _metrics(node), METRICS)
    # The web UI's files (docs/ui.md): no data in them, the pages call the API with a token.
    app[ui.UI_FILES_KEY] = ui.load_ui_files()
    add("GET", "/ui", ui.ui_redirect, OPEN)
    add("GET", ui.UI_PATH, ui.ui_index, OPEN)
    add("GET", ui.UI_FILE_PATH, ui.ui_file, OPEN)
    assert len(rules) == len(app.router.routes()), "every route has its access rule"
    app.freeze()
    return app

