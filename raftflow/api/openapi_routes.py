"""The table of raftflow's HTTP routes as the OpenAPI document describes them (`openapi.py`
builds the document from it): for each route, the struct its body decodes into, the struct each
success status answers, and every error status it can answer.

Kept apart from the document builder so that the table, which grows with every feature, can be
read (and reviewed) as one list. A test (tests/api/test_openapi.py) checks that it names exactly
the routes `app.py` serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import msgspec

from raftflow.api.handouts import HANDOUT_PATH, HandoutRequest
from raftflow.api.message_courier import MESSAGES_PATH
from raftflow.api.poll_fanout import POLL_END_PATH
from raftflow.api.validation import QUERY_LIMIT_MAX
from raftflow.api.workflow_handlers import HISTORY_PAGE_SIZE_MAX, HISTORY_PAGE_TOKEN
from raftflow.cluster.cluster_map import ClusterMap
from raftflow.cluster.membership_wire import (
    JoinAnswer,
    JoinRequest,
    MembershipAnswer,
    RebalancePlan,
)
from raftflow.protocol import batches as batch_wire
from raftflow.protocol import http_answers as answers
from raftflow.protocol import http_bodies as bodies
from raftflow.protocol import schedule_http
from raftflow.protocol.limits import ID_LENGTH_MAX
from raftflow.protocol.namespaces import (
    AddSearchAttributeRequest,
    CreateNamespaceRequest,
    NamespaceInfo,
    NamespaceList,
    UpdateNamespaceRequest,
)
from raftflow.protocol.results import WorkflowStatus
from raftflow.protocol.schedules import ScheduleDescription
from raftflow.protocol.task_stream import IDENTITY_LENGTH_MAX
from raftflow.visibility.limits import QUERY_CHARS_MAX
from raftflow.visibility.paging import PAGE_TOKEN_LENGTH_MAX

Schema = dict[str, Any]

READ = (400, 404, 503, 504)
WRITE = (400, 404, 409, 413, 503, 504)
LIMITED_WRITE = (*WRITE, 429)  # starts and signals spend the namespace's rate limit

# One struct per answer; a poll of workflow tasks may also hand out a query task.
_WORKFLOW_POLL = "WorkflowPollAnswer"
_HANDOUT = "HandoutAnswer"
UNIONS: Mapping[str, tuple[type[msgspec.Struct], ...]] = MappingProxyType({
    _WORKFLOW_POLL: (answers.WorkflowTask, answers.QueryTask),
    _HANDOUT: (answers.WorkflowTask, answers.ActivityTask),
})
# Ok answers that are not JSON structs: no body (204), the document itself, Prometheus text,
# the web UI's files (HTML, CSS, JavaScript).
NO_BODY, DOCUMENT, PROMETHEUS, UI_FILE = "none", "document", "prometheus", "ui_file"
Body = type[msgspec.Struct] | str


class Audience(StrEnum):
    PUBLIC = "public"
    # Called by other nodes of the cluster, not by clients: documented so that every route
    # is, and marked `x-internal` so that client generators and docs can leave it out.
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    method: str
    path: str
    summary: str
    ok: Mapping[int, Body]
    request: type[msgspec.Struct] | None = None
    errors: tuple[int, ...] = ()
    query: tuple[Schema, ...] = ()
    audience: Audience = Audience.PUBLIC


def path_id(name: str, description: str = "") -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1, "maxLength": ID_LENGTH_MAX}}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


_RUN_ID = _query("run_id", {"type": "string", "maxLength": ID_LENGTH_MAX},
                 "this run rather than the latest")
NAMESPACES = "/api/v1/namespaces"
NAMESPACE = NAMESPACES + "/{ns}"
SCHEDULES = NAMESPACE + "/schedules"
WF = NAMESPACE + "/workflows"
_VISIBILITY_QUERY = _query("query", {"type": "string", "maxLength": QUERY_CHARS_MAX}, (
    "e.g. WorkflowType = 'Order' AND ExecutionStatus = 'Running' ORDER BY StartTime DESC; "
    "fields WorkflowId, WorkflowType, ExecutionStatus, StartTime, CloseTime, TaskQueue; "
    "empty: every run"))
ONE = WF + "/{workflow_id}"
TQ = "/api/v1/namespaces/{ns}/task-queues/{tq}"


def _task(path: str, summary: str, request: type[msgspec.Struct],
          ok: type[msgspec.Struct] = answers.Empty) -> Route:
    return Route(method="post", path=path, summary=summary, request=request, ok={200: ok},
                 errors=WRITE)


def _poll(kind: str, ok: Body) -> Route:
    return Route(method="post", path=f"{TQ}/{kind}-tasks/poll",
                 summary=f"Long-poll for a {kind} task (204: none arrived within wait_ms)",
                 request=bodies.PollRequest, ok={200: ok, 204: NO_BODY},
                 errors=(400, 413, 429, 503))


ROUTES: tuple[Route, ...] = (
    Route(method="get", path="/healthz", summary="Liveness of this node", ok={200: answers.Health}),
    Route(method="get", path="/metrics", summary="Prometheus metrics", ok={200: PROMETHEUS}),
    Route(method="get", path="/api/v1/openapi.json", summary="This document",
          ok={200: DOCUMENT}),
    # The web UI (docs/ui.md): static files holding no data, open like this document.
    Route(method="get", path="/ui", summary="The web UI (redirects to /ui/)",
          ok={302: NO_BODY}),
    Route(method="get", path="/ui/", summary="The web UI's page", ok={200: UI_FILE}),
    Route(method="get", path="/ui/{file}", summary="One of the web UI's files",
          ok={200: UI_FILE}, errors=(404,)),
    Route(method="get", path="/api/v1/cluster/status", summary=(
        "Nodes, shards, leaders and terms, as every node sees them"),
        ok={200: answers.ClusterStatus}),
    Route(method="get", path="/api/v1/cluster/map", summary=(
        "The cluster map this node follows: members, placement, moves, epoch"),
        ok={200: ClusterMap}),
    Route(method="post", path="/api/v1/cluster/join", summary=(
        "Admit a node (`raftflow node --join`); proven by an HMAC of the cluster secret"),
        request=JoinRequest, ok={200: JoinAnswer}, errors=(400, 403, 409, 413, 503, 504)),
    Route(method="post", path="/api/v1/cluster/nodes/{node_id}/drain", summary=(
        "Drain a node: its leaders, then its replicas, move to the other nodes"),
        ok={200: MembershipAnswer}, errors=(400, 404, 409, 503, 504)),
    Route(method="post", path="/api/v1/cluster/nodes/{node_id}/remove", summary=(
        "Remove a drained node (force: a dead one, whose replicas are rebuilt elsewhere)"),
        ok={200: MembershipAnswer}, errors=(400, 404, 409, 503, 504), query=(
            _query("force", {"type": "string", "enum": ["true", "false", "1", "0"]},
                   "remove the node whatever it still holds (default false)"),)),
    Route(method="post", path="/api/v1/cluster/rebalance", summary=(
        "The replica moves the rebalancer starts next; started now unless dry_run"),
        ok={200: RebalancePlan}, errors=(400, 409, 503, 504), query=(
            _query("dry_run", {"type": "string", "enum": ["true", "false", "1", "0"]},
                   "only show the moves (default false)"),)),
    Route(method="get", path="/api/v1/node/status", summary="This node's own replicas",
          ok={200: answers.NodeStatus}),
    Route(method="get", path="/api/v1/node/digests", summary=(
        "This node's replicas: applied index and state digest (costly; for checks)"),
        ok={200: answers.NodeDigests}),
    Route(method="get", path=NAMESPACES, summary="Every namespace, by name (default included)",
          ok={200: NamespaceList}, errors=(503, 504)),
    Route(method="post", path=NAMESPACES, summary=(
        "Create a namespace (200: it existed with the same settings)"),
          request=CreateNamespaceRequest, ok={201: NamespaceInfo, 200: NamespaceInfo},
          errors=(400, 409, 413, 503, 504)),
    Route(method="get", path=NAMESPACE, summary="Describe a namespace",
          ok={200: NamespaceInfo}, errors=(400, 404, 503, 504)),
    Route(method="patch", path=NAMESPACE, summary=(
        "Change a namespace's retention, description or rate limits"),
          request=UpdateNamespaceRequest, ok={200: NamespaceInfo},
          errors=(400, 404, 413, 503, 504)),
    Route(method="post", path=NAMESPACE + "/search-attributes", summary=(
        "Register a custom search attribute (the same name and type again: a no-op); "
        "answers once every shard has it"),
          request=AddSearchAttributeRequest, ok={200: NamespaceInfo},
          errors=(400, 404, 409, 413, 503, 504)),
    Route(method="post", path=WF, summary="Start a workflow (idempotent by request_id)",
          request=bodies.StartWorkflowRequest,
          ok={201: answers.StartWorkflowAnswer, 200: answers.StartWorkflowAnswer},
          errors=LIMITED_WRITE),
    Route(method="get", path=WF, summary=(
        "List runs a visibility query selects (Temporal's list filter), a page at a time"),
          ok={200: answers.WorkflowList}, errors=(400, 503, 504), query=(
              _VISIBILITY_QUERY,
              _query("page_size", {"type": "integer", "minimum": 1, "maximum": QUERY_LIMIT_MAX},
                     "runs per page (default 100)"),
              _query("next_page_token", {"type": "string", "maxLength": PAGE_TOKEN_LENGTH_MAX},
                     "from the previous page (empty: the first page)"),
              _query("status", {"type": "string", "enum": [
                  s.value.upper() for s in WorkflowStatus] + [""]},
                  "also: only runs in this status (empty: every status)"),
              _query("limit", {"type": "integer", "minimum": 1, "maximum": QUERY_LIMIT_MAX},
                     "page_size's older name"))),
    Route(method="get", path=NAMESPACE + "/workflow-count", summary=(
        "Count the runs a visibility query selects"),
          ok={200: answers.WorkflowCount}, errors=(400, 503, 504), query=(_VISIBILITY_QUERY,)),
    Route(method="get", path=ONE, summary="Describe a workflow's run",
          ok={200: answers.WorkflowDescription}, errors=READ, query=(_RUN_ID,)),
    Route(method="get", path=ONE + "/history", summary="One page of a run's history",
          ok={200: answers.HistoryPage}, errors=READ, query=(
              _RUN_ID,
              _query("next_page_token", {"type": "string",
                                         "pattern": f"^{HISTORY_PAGE_TOKEN.pattern}$"},
                     "from the previous page (empty: the first page)"),
              _query("page_size", {"type": "integer", "minimum": 1,
                                   "maximum": HISTORY_PAGE_SIZE_MAX},
                     "events per page (default 1000)"))),
    Route(method="post", path=ONE + "/signal", summary="Signal a run (idempotent by request_id)",
          request=bodies.SignalWorkflowRequest, ok={200: answers.Empty}, errors=LIMITED_WRITE),
    Route(method="post", path=ONE + "/signal-with-start", summary=(
        "Signal a workflow, starting it first if no run is open (atomic; 201: started, 200: "
        "an open run was signalled; idempotent by request_id)"),
          request=bodies.SignalWithStartWorkflowRequest,
          ok={201: answers.StartWorkflowAnswer, 200: answers.StartWorkflowAnswer},
          errors=LIMITED_WRITE),
    Route(method="post", path=ONE + "/cancel", summary=(
        "Request cancellation (the workflow decides how)"),
        request=bodies.CancelWorkflowRequest, ok={200: answers.Empty}, errors=WRITE),
    Route(method="post", path=ONE + "/terminate", summary="Terminate a run",
          request=bodies.TerminateWorkflowRequest, ok={200: answers.Empty}, errors=WRITE),
    Route(method="post", path=ONE + "/reset", summary=(
        "Reset a workflow to a workflow task: a new run re-executes from there with the "
        "history before it and the signals after it; the open run is terminated (idempotent by request_id: "
        "a retry gets the first answer)"),
          request=bodies.ResetWorkflowRequest, ok={201: answers.StartWorkflowAnswer},
          errors=WRITE),
    Route(method="get", path=ONE + "/result", summary=(
        "Wait for a run to close (long poll): its description once closed, 204 if still "
        "running after wait_ms"),
        ok={200: answers.WorkflowDescription, 204: NO_BODY}, errors=READ, query=(
            _RUN_ID,
            _query("wait_ms", {"type": "integer", "minimum": 0, "maximum": bodies.WAIT_MS_MAX},
                   "how long to wait, in milliseconds (default 30000)"))),
    Route(method="post", path=ONE + "/query", summary=(
        "Query a run through a worker of its task queue (not logged; 504 when no worker "
        "answers within timeout_ms)"),
        request=bodies.QueryWorkflowRequest, ok={200: answers.QueryWorkflowAnswer},
        errors=(400, 404, 413, 503, 504)),
    Route(method="post", path=ONE + "/updates", summary=(
        "Run a workflow update (validator, then handler, in the workflow); answers the stage "
        "reached within wait_ms (ask again with the same update_id for more; idempotent by "
        "update_id)"),
        request=bodies.UpdateWorkflowRequest, ok={200: answers.WorkflowUpdateAnswer},
        errors=LIMITED_WRITE),
    Route(method="get", path=ONE + "/updates/{update_id}", summary=(
        "Where an update stands, waiting up to wait_ms for wait_for_stage (default completed); "
        "409 workflow_not_running if its run closed before it completed"),
        ok={200: answers.WorkflowUpdateAnswer}, errors=(*READ, 409), query=(
            _query("wait_for_stage", {"type": "string", "enum": ["admitted", "accepted",
                                                                 "completed"]},
                   "the stage to wait for (default completed)"),
            _query("wait_ms", {"type": "integer", "minimum": 0, "maximum": bodies.WAIT_MS_MAX},
                   "how long to wait, in milliseconds (default 30000)"))),
    _task("/api/v1/tasks/query/respond", "Answer a query task", bodies.QueryAnswerRequest),
    _poll("workflow", _WORKFLOW_POLL),
    _poll("activity", answers.ActivityTask),
    Route(method="get", path=f"{TQ}/stream", summary=(
        "Open a task stream: a WebSocket (subprotocol raftflow.tasks.v1) of msgpack frames "
        "carrying tasks pushed on grants and task calls with their replies (docs/api.md, "
        "'Task streams'); the SDK's worker protocol"), ok={101: NO_BODY},
        errors=(400, 404, 429, 503), query=(
            _query("identity", {"type": "string", "maxLength": IDENTITY_LENGTH_MAX},
                   "the worker's identity (default: the caller's address)"),
            _query("sticky_queue", {"type": "string", "maxLength": ID_LENGTH_MAX},
                   "the worker's sticky queue: its cached runs get only new events"))),
    _task("/api/v1/tasks/workflow/complete", "Complete a workflow task with commands",
          bodies.CompleteWorkflowTaskRequest, answers.CompleteWorkflowTaskAnswer),
    _task("/api/v1/tasks/workflow/fail", "Fail a workflow task (it is retried)",
          bodies.FailWorkflowTaskRequest),
    _task("/api/v1/tasks/activity/complete", "Complete an activity task",
          bodies.CompleteActivityTaskRequest, answers.CompleteActivityTaskAnswer),
    _task("/api/v1/tasks/activity/fail", "Fail an activity task (retried by its policy)",
          bodies.FailActivityTaskRequest),
    _task("/api/v1/tasks/activity/canceled", "Report an activity canceled",
          bodies.ActivityTaskCanceledRequest),
    _task("/api/v1/tasks/activity/heartbeat", "Heartbeat an activity; learn of cancellation",
          bodies.HeartbeatRequest, answers.HeartbeatAnswer),
    Route(method="post", path=HANDOUT_PATH, summary=(
        "Internal: apply again, on the shard's leader, a task hand-out another node saw fail "
        "in doubt (same request id: the started task if it committed, else 409 stale_task)"),
        request=HandoutRequest, ok={200: _HANDOUT}, errors=(400, 404, 409, 413, 503, 504),
        audience=Audience.INTERNAL),
    Route(method="post", path=NAMESPACE + "/batches", summary=(
        "Start a batch job: one operation (terminate, cancel, signal, reset) on every workflow a "
        "visibility query selects, durable and rate-limited"),
        request=batch_wire.StartBatchRequest, ok={201: batch_wire.BatchJobAnswer},
        errors=WRITE),
    Route(method="get", path=NAMESPACE + "/batches", summary=(
        "The namespace's batch jobs, running and finished, newest first"),
        ok={200: batch_wire.BatchJobList}, errors=READ,
        query=(_query("shard", {"type": "integer", "minimum": 0},
                      "Internal: one shard's jobs only (a list asks each shard's leader)"),)),
    Route(method="get", path=NAMESPACE + "/batches/{job_id}", summary="Describe a batch job",
        ok={200: batch_wire.BatchJobAnswer}, errors=READ),
    Route(method="post", path=NAMESPACE + "/batches/{job_id}/stop", summary=(
        "Stop a batch job (idempotent by request_id; a finished job is left as it is)"),
        request=batch_wire.StopBatchRequest, ok={200: batch_wire.BatchJobAnswer},
        errors=WRITE),
    Route(method="post", path=MESSAGES_PATH, summary=(
        "Internal: apply outbox messages of another shard to this node's shard, if it leads it "
        "(idempotent by message id)"),
        request=bodies.DeliverMessagesRequest, ok={200: answers.DeliverMessagesAnswer},
        errors=(400, 413, 503, 504), audience=Audience.INTERNAL),
    Route(method="post", path=SCHEDULES, summary=(
        "Create a schedule (idempotent by request_id; 409 schedule_already_exists for another "
        "request with the same schedule_id)"),
        request=schedule_http.CreateScheduleRequest, ok={201: schedule_http.ScheduleCreated},
        errors=WRITE),
    Route(method="get", path=SCHEDULES, summary=(
        "Every schedule of the namespace, by schedule id, with its next action times"),
        ok={200: schedule_http.ScheduleList}, errors=(400, 404, 503, 504)),
    Route(method="get", path=SCHEDULES + "/{schedule_id}", summary=(
        "Describe a schedule: its definition, counters, running and recent actions, next "
        "action times"), ok={200: ScheduleDescription}, errors=READ),
    Route(method="post", path=SCHEDULES + "/{schedule_id}/update", summary=(
        "Replace a schedule's spec, action, policies and state (running actions go on)"),
        request=schedule_http.UpdateScheduleRequest, ok={200: answers.Empty}, errors=WRITE),
    Route(method="post", path=SCHEDULES + "/{schedule_id}/patch", summary=(
        "Pause or unpause (with a note), trigger an action now, backfill time ranges"),
        request=schedule_http.PatchScheduleRequest, ok={200: answers.Empty}, errors=WRITE),
    Route(method="delete", path=SCHEDULES + "/{schedule_id}", summary=(
        "Delete a schedule (the runs it started go on)"),
        ok={200: answers.Empty}, errors=(400, 404, 503, 504), query=(_query(
            "request_id", {"type": "string", "maxLength": ID_LENGTH_MAX},
            "makes a retry safe (a retry after the delete answers 200 again)"),)),
    Route(method="get", path=NAMESPACE + "/shards/{shard}/schedules", summary=(
        "Internal: one shard's part of the schedule list"),
        ok={200: schedule_http.ScheduleList}, errors=(400, 404, 503, 504),
        audience=Audience.INTERNAL),
    Route(method="post", path=POLL_END_PATH, summary=(
        "Internal: a gateway poll has its answer; its legs waiting on this node answer now"),
        request=bodies.EndPollsRequest, ok={204: NO_BODY}, errors=(400, 413),
        audience=Audience.INTERNAL),
)
