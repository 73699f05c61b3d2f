"""Goal: the protocol codec round-trips every command, result and effect exactly.

Method: one sample value per type (nested ones included) is encoded and decoded and compared
for equality; a hypothesis strategy then draws whole proposals from the command types; error
codes are checked to map to exactly one HTTP status.
"""

from __future__ import annotations

import typing

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.protocol import batches as b
from raftflow.protocol import codec
from raftflow.protocol import commands as c
from raftflow.protocol import effects as e
from raftflow.protocol import messages as m
from raftflow.protocol import results as r
from raftflow.protocol.errors import ErrorCode, RaftflowError, http_status
from raftflow.protocol.events import HistoryEvent, WorkflowExecutionStartedEventAttributes
from raftflow.protocol.search_attributes import UpsertWorkflowSearchAttributes
from raftflow.protocol.updates import UpdateStage
from tests.protocol import samples

TOKEN = c.TaskToken(namespace="ns", workflow_id="wf", run_id="r1", scheduled_event_id=2,
                    attempt=3, kind=c.TaskKind.ACTIVITY)
FAILURE = c.Failure(message="boom", type="IOError", non_retryable=True, details=b"\x00\xff")
POLICY = c.RetryPolicy(initial_interval_ms=5, backoff_coefficient=1.5, maximum_interval_ms=50,
                       maximum_attempts=4, non_retryable_error_types=("A", "B"))
WORKFLOW_COMMANDS: tuple[c.WorkflowCommand, ...] = (
    c.ScheduleActivityTask(activity_id="a", activity_type="t", task_queue="q", input=b"1",
                           schedule_to_close_timeout_ms=9, schedule_to_start_timeout_ms=8,
                           start_to_close_timeout_ms=7, heartbeat_timeout_ms=6,
                           retry_policy=POLICY),
    c.ScheduleActivityTask(activity_id="b", activity_type="t"),
    c.RequestCancelActivityTask(scheduled_event_id=5),
    c.StartTimer(timer_id="t", start_to_fire_timeout_ms=10),
    c.CancelTimer(timer_id="t"),
    c.RecordMarker(marker_name="m", details=b"d"),
    c.CompleteWorkflowExecution(result=b"r"),
    c.FailWorkflowExecution(failure=FAILURE),
    c.CancelWorkflowExecution(details=b"x"),
    c.ContinueAsNewWorkflowExecution(workflow_type="w", task_queue="q", input=b"i",
                                     run_timeout_ms=5, task_timeout_ms=None),
    UpsertWorkflowSearchAttributes(search_attributes={"CustomerId": "c1", "Amount": 3}),
    c.SignalExternalWorkflowExecution(workflow_id="x", run_id="r", signal_name="s", input=b"1"),
    c.RequestCancelExternalWorkflowExecution(namespace="ns", workflow_id="x", reason="why"),
    c.StartChildWorkflowExecution(workflow_id="child", workflow_type="W", input=b"[1]",
                                  run_timeout_ms=5, id_reuse_policy="reject_duplicate",
                                  parent_close_policy=c.ParentClosePolicy.ABANDON),
    c.CompleteWorkflowUpdate(update_id="u1", result=b"r", failure=FAILURE),
)
COMMANDS: tuple[c.Command, ...] = (
    c.StartWorkflow(now_ms=1, namespace="ns", workflow_id="wf", workflow_type="W",
                    task_queue="q", input=b"{}", request_id="req", run_id="r1",
                    id_reuse_policy=c.IdReusePolicy.TERMINATE_IF_RUNNING,
                    execution_timeout_ms=100, run_timeout_ms=None, task_timeout_ms=5),
    c.SignalWorkflow(now_ms=2, namespace="ns", workflow_id="wf", run_id=None, signal_name="s",
                     input=b"1", request_id="q"),
    c.RequestCancelWorkflow(now_ms=3, namespace="ns", workflow_id="wf", run_id="r1",
                            reason="why", request_id="q2"),
    c.TerminateWorkflow(now_ms=4, namespace="ns", workflow_id="wf", reason="x", request_id="q3"),
    c.RecordWorkflowTaskStarted(now_ms=5, namespace="ns", workflow_id="wf", run_id="r1",
                                scheduled_event_id=2, identity="w", request_id="p",
                                sticky_queue="sq"),
    c.RespondWorkflowTaskCompleted(now_ms=6, token=TOKEN, commands=WORKFLOW_COMMANDS,
                                   identity="w", sticky_queue="sq", eager_task_queue="q",
                                   eager_activities_max=3),
    c.RespondWorkflowTaskFailed(now_ms=7, token=TOKEN, cause="c", failure=b"f", identity="w"),
    c.RecordActivityTaskStarted(now_ms=8, namespace="ns", workflow_id="wf", run_id="r1",
                                scheduled_event_id=5, attempt=2, identity="w", request_id="p"),
    c.RespondActivityTaskCompleted(now_ms=9, token=TOKEN, result=b"r", identity="w",
                                   eager_task_queue="q", sticky_queue="sq"),
    c.RespondActivityTaskFailed(now_ms=10, token=TOKEN, failure=FAILURE, identity="w"),
    c.RespondActivityTaskCanceled(now_ms=11, token=TOKEN, details=b"d", identity="w"),
    c.RecordActivityTaskHeartbeat(now_ms=12, token=TOKEN, details=b"h"),
    c.FireTimers(now_ms=13),
    c.Barrier(now_ms=14, leader_node="n1", term=3),
    c.ConfigureNamespace(now_ms=15, namespace="shop", retention_ms=20_000),
    m.DeliverMessages(now_ms=16, entries=(m.OutboxEntry(
        message_id="r1/5", created_ms=16, source_namespace="ns", source_workflow_id="wf",
        source_run_id="r1", initiated_event_id=5,
        body=m.SignalMessage(namespace="ns", workflow_id="x", signal_name="s", input=b"1")),)),
    m.AckMessages(now_ms=17, outcomes=(
        m.MessageOutcome(message_id="r1/5"),
        m.MessageOutcome(message_id="r1/6", error=ErrorCode.NOT_FOUND, detail="d"))),
    c.ResetWorkflow(now_ms=18, namespace="ns", workflow_id="wf", run_id="r1", new_run_id="r2",
                    reset_type=c.ResetType.LAST_WORKFLOW_TASK, reason="why", request_id="q"),
    c.RequestWorkflowUpdate(now_ms=16, namespace="ns", workflow_id="wf", update_id="u",
                            name="n", input=b"1"),
    b.StartBatch(now_ms=19, namespace="ns", job_id="j", query="ExecutionStatus = 'Running'",
                 operation=b.BatchOperation(type=b.BatchOperationType.SIGNAL, signal_name="s",
                                            input=b"[1]"), rps=5, request_id="q"),
    b.RecordBatchProgress(now_ms=20, namespace="ns", job_id="j", cursor="", next_cursor="t",
                          done=False, succeeded=3, failed=1, errors=("e",)),
    b.StopBatch(now_ms=21, namespace="ns", job_id="j", reason="r", request_id="q2"),
    *(samples.COMMANDS_SINCE_0_1[name] for name in (
        "CreateSchedule", "UpdateSchedule", "PatchSchedule", "DeleteSchedule", "ScheduleTick")),
)
EVENT = HistoryEvent(event_id=1, time_ms=5, attributes=WorkflowExecutionStartedEventAttributes(
    workflow_type="W", task_queue="q", input=b"x", workflow_id="wf", namespace="ns",
    request_id="req", execution_timeout_ms=None, run_timeout_ms=5, task_timeout_ms=10,
    continued_execution_run_id=None, first_execution_run_id="r1"))
WF_INFO = r.WorkflowTaskInfo(token=TOKEN, namespace="ns", workflow_id="wf", run_id="r1",
                             workflow_type="W", task_queue="q", attempt=1, scheduled_event_id=2,
                             started_event_id=3, previous_started_event_id=0, history=(EVENT,))
ACT_INFO = r.ActivityTaskInfo(token=TOKEN, namespace="ns", workflow_id="wf", run_id="r1",
                              workflow_type="W", activity_id="a", activity_type="t",
                              task_queue="q", input=b"i", attempt=2, heartbeat_details=b"h",
                              scheduled_time_ms=1, current_attempt_scheduled_time_ms=2,
                              started_time_ms=3, schedule_to_close_timeout_ms=None,
                              start_to_close_timeout_ms=4, heartbeat_timeout_ms=5)
RESULTS: tuple[r.Result, ...] = (
    r.Ack(), r.Rejected(code=ErrorCode.STALE_TASK, message="m", field="f"),
    r.WorkflowStartedResult(run_id="r", created=False),
    r.WorkflowTaskStartedResult(task=WF_INFO), r.ActivityTaskStartedResult(task=ACT_INFO),
    r.HeartbeatResult(cancel_requested=True),
    r.WorkflowTaskCompletedResult(activity_tasks=(ACT_INFO, ACT_INFO)),
    r.ActivityTaskCompletedResult(workflow_task=WF_INFO),
    r.ActivityTaskCompletedResult(workflow_task=None),
    r.MessagesDelivered(outcomes=(m.MessageOutcome(message_id="r1/5"),)),
    r.WorkflowUpdateResult(run_id="r", update_id="u", stage=UpdateStage.COMPLETED, value=b"1",
                           failure=FAILURE),
)
EFFECTS: tuple[e.Effect, ...] = (
    e.DispatchWorkflowTask(namespace="ns", task_queue="q", workflow_id="wf", run_id="r",
                           scheduled_event_id=2),
    e.DispatchActivityTask(namespace="ns", task_queue="q", workflow_id="wf", run_id="r",
                           scheduled_event_id=5, attempt=2),
    e.ArmTimer(fire_at_ms=7), e.WorkflowClosed(namespace="ns", workflow_id="wf", run_id="r"),
    e.MessageQueued(message_id="r1/5", namespace="ns", workflow_id="x"),
    e.BatchActive(namespace="ns", job_id="j"),
)


def test_every_command_type_has_a_sample() -> None:
    assert {type(x) for x in COMMANDS} == set(typing.get_args(c.Command))
    assert {type(x) for x in WORKFLOW_COMMANDS} == set(typing.get_args(c.WorkflowCommand))
    assert {type(x) for x in RESULTS} == set(typing.get_args(r.Result))
    assert {type(x) for x in EFFECTS} == set(typing.get_args(e.Effect))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda x: type(x).__name__)
def test_command_round_trip(command: c.Command) -> None:
    decoded = codec.decode_command(codec.encode_command(command))
    assert decoded == command
    assert type(decoded) is type(command)


@pytest.mark.parametrize("result", RESULTS, ids=lambda x: type(x).__name__)
def test_result_round_trip(result: r.Result) -> None:
    assert codec.decode_result(codec.encode_result(result)) == result


@pytest.mark.parametrize("effect", EFFECTS, ids=lambda x: type(x).__name__)
def test_effect_round_trip(effect: e.Effect) -> None:
    assert codec.decode_effect(codec.encode_effect(effect)) == effect


def test_proposal_round_trip_keeps_order_and_enums() -> None:
    proposal = c.Proposal(proposer="node-1", incarnation=7, seq=42, commands=COMMANDS)
    decoded = codec.decode_proposal(codec.encode_proposal(proposal))
    assert decoded == proposal
    start = decoded.commands[0]
    assert isinstance(start, c.StartWorkflow)
    assert start.id_reuse_policy is c.IdReusePolicy.TERMINATE_IF_RUNNING


def test_decoding_garbage_is_refused() -> None:
    with pytest.raises((AssertionError, KeyError, ValueError, TypeError)):
        codec.decode_command(codec.encode_value(EVENT))


_names = st.text(min_size=1, max_size=8)
_bytes = st.binary(max_size=16)
_small = st.integers(min_value=0, max_value=2**40)
_commands = st.one_of(
    st.builds(c.FireTimers, now_ms=_small),
    st.builds(c.SignalWorkflow, now_ms=_small, namespace=_names, workflow_id=_names,
              run_id=st.none() | _names, signal_name=_names, input=_bytes, request_id=_names),
    st.builds(c.RespondActivityTaskFailed, now_ms=_small,
              token=st.builds(c.TaskToken, namespace=_names, workflow_id=_names, run_id=_names,
                              scheduled_event_id=_small, attempt=_small,
                              kind=st.sampled_from(c.TaskKind)),
              failure=st.builds(c.Failure, message=_names, type=_names, details=_bytes)),
    st.sampled_from(COMMANDS),
)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(commands=st.lists(_commands, max_size=6), seq=_small)
def test_random_proposals_round_trip(commands: list[c.Command], seq: int) -> None:
    proposal = c.Proposal(proposer="n", incarnation=1, seq=seq, commands=tuple(commands))
    assert codec.decode_proposal(codec.encode_proposal(proposal)) == proposal


@settings(max_examples=100, derandomize=True, deadline=None)
@given(commands=st.lists(_commands, max_size=6), seq=_small, incarnation=_small)
def test_proposal_from_encoded_commands_is_byte_identical(commands: list[c.Command], seq: int,
                                                          incarnation: int) -> None:
    # The shard actor encodes each command once at submit and builds the entry from the parts:
    # every replica must decode exactly the proposal the plain encoder would have written.
    whole = codec.encode_proposal(c.Proposal(proposer="n1", incarnation=incarnation, seq=seq,
                                             commands=tuple(commands)))
    parts = codec.encode_proposal_parts(
        proposer="n1", incarnation=incarnation, seq=seq,
        encoded_commands=[codec.encode_command(command) for command in commands])
    assert parts == whole


def test_every_error_code_has_one_http_status() -> None:
    assert http_status(ErrorCode.PAYLOAD_TOO_LARGE) == 413
    assert http_status(ErrorCode.STALE_TASK) == 409
    assert http_status(ErrorCode.PERMISSION_DENIED) == 403
    assert http_status(ErrorCode.UNAUTHENTICATED) == 401
    assert http_status(ErrorCode.FAILED_PRECONDITION) == 409
    assert http_status(ErrorCode.RATE_LIMITED) == 429
    assert {http_status(code) for code in ErrorCode} <= {400, 401, 403, 404, 409, 413, 429,
                                                         500, 503, 504}
    error = RaftflowError(ErrorCode.NOT_FOUND, "gone")
    assert error.http_status == 404 and error.code is ErrorCode.NOT_FOUND


def _without_keys(data: bytes, *keys: str) -> bytes:
    """The bytes an older version wrote, before its class had the fields `keys`."""
    raw = msgspec.msgpack.decode(data)
    assert set(keys) <= set(raw), keys
    return codec.ENCODER.encode({k: v for k, v in raw.items() if k not in keys})


def test_values_written_before_fields_were_added_decode_with_the_defaults() -> None:
    # Log entries and snapshots outlive the code that wrote them: fields are only ever added
    # with a default, and a map that lacks them gets the defaults.
    completed = c.RespondActivityTaskCompleted(now_ms=9, token=TOKEN, result=b"r", identity="w",
                                               eager_task_queue="q", sticky_queue="sq")
    old = _without_keys(codec.encode_command(completed), "eager_task_queue", "sticky_queue")
    assert codec.decode_command(old) == c.RespondActivityTaskCompleted(
        now_ms=9, token=TOKEN, result=b"r", identity="w")
    started = r.WorkflowStartedResult(run_id="r", created=True)
    old = _without_keys(codec.encode_result(started), "workflow_task")
    assert codec.decode_result(old) == started
    # A field without a default (here the token) cannot be filled in: refused loudly.
    with pytest.raises(msgspec.ValidationError):
        codec.decode_command(_without_keys(codec.encode_command(completed), "token"))


def test_0_1_arrays_without_trailing_fields_decode_with_the_defaults() -> None:
    token = ["TaskToken", "ns", "wf", "r1", 2, 3, "activity"]
    old = codec.ENCODER.encode(["RespondActivityTaskCompleted", 9, token, b"r", "w"])
    assert codec.decode_command(old) == c.RespondActivityTaskCompleted(
        now_ms=9, token=TOKEN, result=b"r", identity="w")
    with pytest.raises(msgspec.ValidationError):
        codec.decode_command(codec.ENCODER.encode(["RespondActivityTaskCompleted", 9]))
