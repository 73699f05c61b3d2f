"""Sample protocol values, one or more per wire type, shared by the codec tests.

Not a test module. `tests/data/protocol-v0.1/codec-values.json` holds the bytes the hand-written
codec of release 0.1 wrote for exactly these values, so the values must never change: add new
samples under new names instead (and regenerate nothing: the old bytes are the point).
Integers cover every msgpack width (fixint, uint8..uint64, negative int8..int64). The history
events are the exception to "never change": their attributes became typed structs, so they are
what 0.1's bytes of the old free-form events decode to (see the comment at EVENT).
"""

from __future__ import annotations

import msgspec

from raftflow.protocol import batches as b
from raftflow.protocol import commands as c
from raftflow.protocol import effects as e
from raftflow.protocol import events as ev
from raftflow.protocol import messages as m
from raftflow.protocol import results as r
from raftflow.protocol import schedule_calendars as cal
from raftflow.protocol import schedule_commands as sc
from raftflow.protocol import schedules as sp
from raftflow.protocol import search_attributes as sa
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.updates import UpdateStage, WorkflowUpdateRequest

NOW_MS = 1_765_000_000_123  # a real epoch-ms clock reading: packed as uint64

TOKEN = c.TaskToken(namespace="ns", workflow_id="wf", run_id="r1", scheduled_event_id=2,
                    attempt=3, kind=c.TaskKind.ACTIVITY)
WORKFLOW_TOKEN = c.TaskToken(namespace="default", workflow_id="order-42",
                             run_id="0192f1d2-7a1b-7c3d-8e4f-5a6b7c8d9e0f",
                             scheduled_event_id=300, attempt=1, kind=c.TaskKind.WORKFLOW)
FAILURE = c.Failure(message="boom", type="IOError", non_retryable=True, details=b"\x00\xff")
POLICY = c.RetryPolicy(initial_interval_ms=5, backoff_coefficient=1.5, maximum_interval_ms=50,
                       maximum_attempts=4, non_retryable_error_types=("A", "B"))

WORKFLOW_COMMANDS: dict[str, c.WorkflowCommand] = {
    "ScheduleActivityTask.full": c.ScheduleActivityTask(
        activity_id="a", activity_type="t", task_queue="q", input=b"1",
        schedule_to_close_timeout_ms=90_000, schedule_to_start_timeout_ms=200,
        start_to_close_timeout_ms=70_000, heartbeat_timeout_ms=6, retry_policy=POLICY),
    "ScheduleActivityTask.defaults": c.ScheduleActivityTask(activity_id="b", activity_type="t"),
    "RequestCancelActivityTask": c.RequestCancelActivityTask(scheduled_event_id=65_536),
    "StartTimer": c.StartTimer(timer_id="t", start_to_fire_timeout_ms=86_400_000),
    "CancelTimer": c.CancelTimer(timer_id="t"),
    "RecordMarker": c.RecordMarker(marker_name="m", details=b"d" * 300),
    "CompleteWorkflowExecution": c.CompleteWorkflowExecution(result=b'{"ok": true}'),
    "FailWorkflowExecution": c.FailWorkflowExecution(failure=FAILURE),
    "CancelWorkflowExecution": c.CancelWorkflowExecution(details=b"x"),
    "ContinueAsNewWorkflowExecution": c.ContinueAsNewWorkflowExecution(
        workflow_type="w", task_queue="q", input=b"i", run_timeout_ms=5, task_timeout_ms=None),
}

COMMANDS: dict[str, c.Command] = {
    "StartWorkflow": c.StartWorkflow(
        now_ms=NOW_MS, namespace="ns", workflow_id="wf", workflow_type="W", task_queue="q",
        input=b"{}", request_id="req", run_id="r1",
        id_reuse_policy=c.IdReusePolicy.TERMINATE_IF_RUNNING, execution_timeout_ms=100,
        run_timeout_ms=None, task_timeout_ms=5, eager_task_queue="q", eager_identity="w@host"),
    "StartWorkflow.defaults": c.StartWorkflow(
        now_ms=0, namespace="ns", workflow_id="w" * 40, workflow_type="W", task_queue="q",
        request_id="req", run_id="r" * 300),
    "SignalWorkflow": c.SignalWorkflow(now_ms=2, namespace="ns", workflow_id="wf", run_id=None,
                                       signal_name="s", input=b"1", request_id="q"),
    "RequestCancelWorkflow": c.RequestCancelWorkflow(
        now_ms=3, namespace="ns", workflow_id="wf", run_id="r1", reason="why", request_id="q2"),
    "TerminateWorkflow": c.TerminateWorkflow(now_ms=4, namespace="ns", workflow_id="wf",
                                             reason="x", request_id="q3"),
    "RecordWorkflowTaskStarted": c.RecordWorkflowTaskStarted(
        now_ms=NOW_MS, namespace="ns", workflow_id="wf", run_id="r1", scheduled_event_id=2,
        identity="w", request_id="p", sticky_queue="sq"),
    "RespondWorkflowTaskCompleted": c.RespondWorkflowTaskCompleted(
        now_ms=NOW_MS, token=WORKFLOW_TOKEN, commands=tuple(WORKFLOW_COMMANDS.values()),
        identity="w", sticky_queue="sq", eager_task_queue="q", eager_activities_max=3),
    "RespondWorkflowTaskFailed": c.RespondWorkflowTaskFailed(
        now_ms=7, token=WORKFLOW_TOKEN, cause="c", failure=b"f", identity="w"),
    "RecordActivityTaskStarted": c.RecordActivityTaskStarted(
        now_ms=8, namespace="ns", workflow_id="wf", run_id="r1", scheduled_event_id=5,
        attempt=2, identity="w", request_id="p"),
    "RespondActivityTaskCompleted": c.RespondActivityTaskCompleted(
        now_ms=9, token=TOKEN, result=b"r", identity="w", eager_task_queue="q",
        sticky_queue="sq"),
    "RespondActivityTaskFailed": c.RespondActivityTaskFailed(now_ms=10, token=TOKEN,
                                                             failure=FAILURE, identity="w"),
    "RespondActivityTaskCanceled": c.RespondActivityTaskCanceled(
        now_ms=11, token=TOKEN, details=b"d", identity="w"),
    "RecordActivityTaskHeartbeat": c.RecordActivityTaskHeartbeat(now_ms=2**32, token=TOKEN,
                                                                 details=b"h"),
    "FireTimers": c.FireTimers(now_ms=2**64 - 1),
    "Barrier": c.Barrier(now_ms=14, leader_node="n1", term=3),
}

PROPOSAL = c.Proposal(proposer="node-1", incarnation=7, seq=70_000,
                      commands=tuple(COMMANDS.values()))
# Commands added after 0.1 (no 0.1 bytes to compare with): round-tripped in the current layout.
# Workflow commands added after 0.1: round-tripped inside a completion of COMMANDS_SINCE_0_1.
WORKFLOW_COMMANDS_SINCE_0_1: dict[str, c.WorkflowCommand] = {
    "UpsertWorkflowSearchAttributes": sa.UpsertWorkflowSearchAttributes(search_attributes={
        "CustomerId": "c-1", "Amount": 7, "Score": 0.5, "Vip": True,
        "DueAt": "2026-12-06T10:00:00Z"}),
    "SignalExternalWorkflowExecution": c.SignalExternalWorkflowExecution(
        workflow_id="inbox-7", signal_name="add", input=b'["x"]'),
    "RequestCancelExternalWorkflowExecution": c.RequestCancelExternalWorkflowExecution(
        namespace="default", workflow_id="inbox-7", run_id="r9", reason="done"),
    "StartChildWorkflowExecution": c.StartChildWorkflowExecution(
        workflow_id="child-1", workflow_type="Child", task_queue="q", input=b"[1]",
        execution_timeout_ms=60_000, parent_close_policy=c.ParentClosePolicy.REQUEST_CANCEL),
    "CompleteWorkflowUpdate": c.CompleteWorkflowUpdate(update_id="u1", result=b'"ok"'),
    "CompleteWorkflowUpdate.failure": c.CompleteWorkflowUpdate(update_id="u2", failure=FAILURE),
}
SIGNAL_ENTRY = m.OutboxEntry(
    message_id="r1/5", created_ms=NOW_MS, source_namespace="default",
    source_workflow_id="order-42", source_run_id="r1", initiated_event_id=5,
    body=m.SignalMessage(namespace="default", workflow_id="inbox-7", signal_name="add",
                         input=b'["x"]'))
CANCEL_ENTRY = m.OutboxEntry(
    message_id="r1/6", created_ms=NOW_MS, source_namespace="default",
    source_workflow_id="order-42", source_run_id="r1", initiated_event_id=6,
    body=m.CancelMessage(namespace="default", workflow_id="inbox-7", run_id="r9", reason="done"))
CHILD_ENTRIES = (
    m.OutboxEntry(message_id="r1/7", created_ms=NOW_MS, source_namespace="default",
                  source_workflow_id="order-42", source_run_id="r1", initiated_event_id=7,
                  body=m.StartChildMessage(namespace="default", workflow_id="child-1",
                                           workflow_type="Child", task_queue="q",
                                           input=b"[1]", task_timeout_ms=10_000)),
    m.OutboxEntry(message_id="c1/9", created_ms=NOW_MS, source_namespace="default",
                  source_workflow_id="child-1", source_run_id="c1", initiated_event_id=9,
                  body=m.ChildClosedMessage(
                      namespace="default", workflow_id="order-42", run_id="r1",
                      initiated_event_id=7, child_workflow_id="child-1", child_run_id="c1",
                      child_workflow_type="Child", status="failed",
                      failure=c.Failure(message="boom"))),
    m.OutboxEntry(message_id="r1/7/parent-closed", created_ms=NOW_MS,
                  source_namespace="default", source_workflow_id="order-42",
                  source_run_id="r1", initiated_event_id=7,
                  body=m.TerminateMessage(namespace="default", workflow_id="child-1",
                                          run_id="c1", reason="parent closed")),
)
SCHEDULE = sp.Schedule(
    spec=sp.ScheduleSpec(cron_expressions=("0 * * * *",), intervals=(
        sp.IntervalSpec(every_ms=60_000, offset_ms=1_000),), jitter_ms=500,
        calendars=(cal.CalendarSpec(hour=(cal.ScheduleRange(start=9, end=17, step=2),)),),
        time_zone_name="Europe/Paris"),
    action=sp.ScheduleStartWorkflowAction(workflow_id="report", workflow_type="Report",
                                          task_queue="q", input=b"[1]"),
    policies=sp.SchedulePolicies(overlap=sp.OverlapPolicy.BUFFER_ONE),
    state=sp.ScheduleState(note="n", limited_actions=True, remaining_actions=3))
SCHEDULE_ENTRIES = (
    m.OutboxEntry(message_id="schedule:5:default:nightly/1", created_ms=NOW_MS,
                  source_namespace="default", source_workflow_id="nightly",
                  source_run_id="schedule:5:default:nightly", initiated_event_id=1,
                  body=m.ScheduleStartMessage(
                      namespace="default", workflow_id="report-2026-12-07T05:00:00Z",
                      schedule_id="nightly", workflow_type="Report", task_queue="q",
                      task_timeout_ms=10_000, search_attributes={"CustomerId": "c-1"})),
    m.OutboxEntry(message_id="a1/4", created_ms=NOW_MS, source_namespace="default",
                  source_workflow_id="report-2026-12-07T05:00:00Z", source_run_id="a1",
                  initiated_event_id=4,
                  body=m.ScheduleActionClosedMessage(
                      namespace="default", workflow_id="nightly",
                      action_workflow_id="report-2026-12-07T05:00:00Z", action_run_id="a1",
                      status="completed")),
)
OUTCOMES = (m.MessageOutcome(message_id="r1/5"),
            m.MessageOutcome(message_id="r1/6", error=ErrorCode.NOT_FOUND, detail="gone"))
COMMANDS_SINCE_0_1: dict[str, c.Command] = {
    "ConfigureNamespace": c.ConfigureNamespace(now_ms=NOW_MS, namespace="shop",
                                               retention_ms=20_000),
    "ConfigureNamespace.search_attributes": c.ConfigureNamespace(
        now_ms=NOW_MS, namespace="shop", retention_ms=20_000,
        search_attributes={"CustomerId": sa.AttributeType.KEYWORD, "Amount": sa.AttributeType.INT}),
    "StartWorkflow.search_attributes": c.StartWorkflow(
        now_ms=NOW_MS, namespace="ns", workflow_id="wf", workflow_type="W", task_queue="q",
        request_id="req", run_id="r2", search_attributes={"CustomerId": "c-1", "Amount": 2**40}),
    "RespondWorkflowTaskCompleted.upsert": c.RespondWorkflowTaskCompleted(
        now_ms=NOW_MS, token=WORKFLOW_TOKEN,
        commands=tuple(WORKFLOW_COMMANDS_SINCE_0_1.values())),
    "DeliverMessages": m.DeliverMessages(now_ms=NOW_MS, entries=(SIGNAL_ENTRY, CANCEL_ENTRY)),
    "DeliverMessages.children": m.DeliverMessages(now_ms=NOW_MS, entries=CHILD_ENTRIES),
    "AckMessages": m.AckMessages(now_ms=NOW_MS, outcomes=OUTCOMES),
    "StartBatch": b.StartBatch(
        now_ms=NOW_MS, namespace="default", job_id="job-1", query="WorkflowType = 'Order'",
        operation=b.BatchOperation(type=b.BatchOperationType.TERMINATE, reason="cleanup"),
        rps=50, request_id="req"),
    "RecordBatchProgress": b.RecordBatchProgress(
        now_ms=NOW_MS, namespace="default", job_id="job-1", cursor="", next_cursor="tok",
        done=False, succeeded=99, failed=1, errors=("wf-3: not_found",)),
    "StopBatch": b.StopBatch(now_ms=NOW_MS, namespace="default", job_id="job-1",
                             reason="enough", request_id="req-2"),
    "ResetWorkflow": c.ResetWorkflow(now_ms=NOW_MS, namespace="ns", workflow_id="wf",
                                     new_run_id="r3", event_id=4, reason="bad deploy",
                                     request_id="req"),
    "DeliverMessages.schedules": m.DeliverMessages(now_ms=NOW_MS, entries=SCHEDULE_ENTRIES),
    "CreateSchedule": c.CreateSchedule(now_ms=NOW_MS, namespace="default",
                                       schedule_id="nightly", schedule=SCHEDULE,
                                       request_id="req"),
    "UpdateSchedule": c.UpdateSchedule(now_ms=NOW_MS, namespace="default",
                                       schedule_id="nightly", schedule=SCHEDULE,
                                       request_id="req"),
    "PatchSchedule": c.PatchSchedule(
        now_ms=NOW_MS, namespace="default", schedule_id="nightly", request_id="req",
        pause=True, note="maintenance", trigger=True,
        trigger_overlap=sp.OverlapPolicy.ALLOW_ALL,
        backfills=(sp.ScheduleBackfill(start_at_ms=0, end_at_ms=3_600_000),)),
    "DeleteSchedule": c.DeleteSchedule(now_ms=NOW_MS, namespace="default",
                                       schedule_id="nightly", request_id="req"),
    "ScheduleTick": c.ScheduleTick(
        now_ms=NOW_MS, namespace="default", schedule_id="nightly", revision=2,
        from_cursor_ms=NOW_MS - 5_000, processed_through_ms=NOW_MS - 1_000,
        due=(sc.ScheduleDueTime(nominal_ms=NOW_MS - 1_000, actual_ms=NOW_MS - 900),),
        missed=3, next_wake_ms=NOW_MS + 59_000,
        backfill=sc.BackfillTick(backfill_id=1, from_cursor_ms=None,
                                 nominal_times=(60_000,), processed_through_ms=60_000,
                                 done=False)),
    "ResetWorkflow.reset_type": c.ResetWorkflow(
        now_ms=NOW_MS, namespace="ns", workflow_id="wf", run_id="r1", new_run_id="r3",
        reset_type=c.ResetType.FIRST_WORKFLOW_TASK, request_id="req"),
    "RequestWorkflowUpdate": c.RequestWorkflowUpdate(
        now_ms=NOW_MS, namespace="ns", workflow_id="wf", run_id="r1", update_id="u1",
        name="set", input=b'["v"]'),
    "RespondWorkflowTaskCompleted.update_responses": c.RespondWorkflowTaskCompleted(
        now_ms=NOW_MS, token=WORKFLOW_TOKEN, update_responses=(
            c.WorkflowUpdateResponse(update_id="u1"),
            c.WorkflowUpdateResponse(update_id="u2", rejection=FAILURE))),
}
EMPTY_PROPOSAL = c.Proposal(proposer="node-2", incarnation=0, seq=0, commands=())

# 0.1 wrote these events with free-form attribute maps; the typed attributes are what those bytes
# decode to now: failure and retry-policy maps become structs, keys the type does not have (the
# codec-exercise keys of EVENT: "none", "flag", "nested", ...) are dropped, absent ones default.
EVENT = HistoryEvent(
    event_id=1, time_ms=NOW_MS, attributes=ev.ActivityTaskScheduledEventAttributes(
        input=b"x", retry_policy=c.RetryPolicy(non_retryable_error_types=("Fatal", "Other"))))
CLOSE_EVENT = HistoryEvent(event_id=9, time_ms=10, attributes=ev.WorkflowExecutionFailedEventAttributes(
    failure=c.Failure(message="m"), workflow_task_completed_event_id=8))

WF_INFO = r.WorkflowTaskInfo(token=WORKFLOW_TOKEN, namespace="ns", workflow_id="wf",
                             run_id="r1", workflow_type="W", task_queue="q", attempt=1,
                             scheduled_event_id=2, started_event_id=3,
                             previous_started_event_id=0, history=(EVENT, CLOSE_EVENT))
ACT_INFO = r.ActivityTaskInfo(token=TOKEN, namespace="ns", workflow_id="wf", run_id="r1",
                              workflow_type="W", activity_id="a", activity_type="t",
                              task_queue="q", input=b"i", attempt=2, heartbeat_details=b"h",
                              scheduled_time_ms=1, current_attempt_scheduled_time_ms=2,
                              started_time_ms=NOW_MS, schedule_to_close_timeout_ms=None,
                              start_to_close_timeout_ms=4, heartbeat_timeout_ms=5)

RESULTS: dict[str, r.Result] = {
    "Ack": r.Ack(),
    "Rejected": r.Rejected(code=ErrorCode.STALE_TASK, message="m", field="f"),
    "Rejected.defaults": r.Rejected(code=ErrorCode.NOT_FOUND),
    "WorkflowStartedResult": r.WorkflowStartedResult(run_id="r", created=False),
    "WorkflowStartedResult.eager": r.WorkflowStartedResult(run_id="r", created=True,
                                                           workflow_task=WF_INFO),
    "WorkflowTaskStartedResult": r.WorkflowTaskStartedResult(task=WF_INFO),
    "ActivityTaskStartedResult": r.ActivityTaskStartedResult(task=ACT_INFO),
    "WorkflowTaskCompletedResult": r.WorkflowTaskCompletedResult(
        activity_tasks=(ACT_INFO, ACT_INFO)),
    "WorkflowTaskCompletedResult.empty": r.WorkflowTaskCompletedResult(),
    "ActivityTaskCompletedResult": r.ActivityTaskCompletedResult(workflow_task=WF_INFO),
    "ActivityTaskCompletedResult.none": r.ActivityTaskCompletedResult(workflow_task=None),
    "HeartbeatResult": r.HeartbeatResult(cancel_requested=True),
}

# Results added after 0.1: round-tripped in the current layout.
RESULTS_SINCE_0_1: dict[str, r.Result] = {
    "WorkflowUpdateResult": r.WorkflowUpdateResult(run_id="r1", update_id="u1",
                                                   stage=UpdateStage.ADMITTED),
    "WorkflowUpdateResult.completed": r.WorkflowUpdateResult(
        run_id="r1", update_id="u1", stage=UpdateStage.COMPLETED, value=b'"ok"', failure=FAILURE),
    "WorkflowTaskStartedResult.updates": r.WorkflowTaskStartedResult(task=msgspec.structs.replace(
        WF_INFO, updates=(WorkflowUpdateRequest(update_id="u1", name="set", input=b"[1]"),))),
}

EFFECTS: dict[str, e.Effect] = {
    "DispatchWorkflowTask": e.DispatchWorkflowTask(
        namespace="ns", task_queue="q", workflow_id="wf", run_id="r", scheduled_event_id=2),
    "DispatchActivityTask": e.DispatchActivityTask(
        namespace="ns", task_queue="q", workflow_id="wf", run_id="r", scheduled_event_id=5,
        attempt=2),
    "ArmTimer": e.ArmTimer(fire_at_ms=NOW_MS),
    "WorkflowClosed": e.WorkflowClosed(namespace="ns", workflow_id="wf", run_id="r"),
}

# Results and effects added after 0.1: round-tripped in the current layout.
RESULTS_SINCE_0_1["MessagesDelivered"] = r.MessagesDelivered(outcomes=OUTCOMES)
EFFECTS_SINCE_0_1: dict[str, e.Effect] = {
    "MessageQueued": e.MessageQueued(message_id="r1/5", namespace="default",
                                     workflow_id="inbox-7"),
    "BatchActive": e.BatchActive(namespace="default", job_id="job-1"),
}
# Structs added after 0.1 that travel only inside the values above.
NESTED_SINCE_0_1: tuple[type, ...] = (m.OutboxEntry, m.SignalMessage, m.CancelMessage,
                                      m.MessageOutcome, m.StartChildMessage,
                                      m.ChildClosedMessage, m.TerminateMessage,
                                      b.BatchOperation,
                                      m.ScheduleStartMessage, m.ScheduleActionClosedMessage,
                                      sc.ScheduleDueTime, sc.BackfillTick, sp.Schedule,
                                      sp.ScheduleSpec, sp.IntervalSpec, sp.SchedulePolicies,
                                      sp.ScheduleState, sp.ScheduleStartWorkflowAction,
                                      sp.ScheduleBackfill, cal.CalendarSpec,
                                      cal.ScheduleRange)

DESCRIPTION = r.WorkflowDescription(
    namespace="ns", workflow_id="wf", run_id="r1", workflow_type="W", task_queue="q",
    status=r.WorkflowStatus.FAILED, start_time_ms=1, close_time_ms=10, history_length=9,
    pending_activity_count=0, pending_timer_count=0, workflow_task_pending=False,
    first_execution_run_id="r0", continued_execution_run_id="r0", close_event=CLOSE_EVENT)

# Values `encode_value` writes outside the four unions (read-side views, history events).
OTHER_VALUES: dict[str, object] = {
    "HistoryEvent": EVENT,
    "HistoryEvent.close": CLOSE_EVENT,
    "WorkflowDescription": DESCRIPTION,
    "TaskToken": TOKEN,
    "Failure": FAILURE,
    "RetryPolicy": POLICY,
    "RetryPolicy.defaults": c.RetryPolicy(),
}
