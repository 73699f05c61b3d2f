"""Messages between shards: what a shard's outbox holds, and the two log commands that move a
message (`DeliverMessages` on the target's shard, `AckMessages` back on the source's).

Theory of operation (DESIGN §4; shards/core/outbox.py has the core's side). A workflow command
that affects another workflow (signal it, ask it to cancel) cannot change the target's state when
the target lives on another shard: that shard changes only by its own log. So the command puts a
message in its own shard's outbox, in the same commit as the event that caused it. The source
shard's leader then proposes `DeliverMessages` to the target's shard (a command like any other,
from any node) and, with the target's answer, `AckMessages` to its own shard, which removes the
message and writes its outcome to the source run. Every step may be repeated (a lost answer, a
new leader re-sending its whole outbox): the target applies a message id at most once (it
remembers it, like a client's request id) and the source acts on the first acknowledgement only.

A message id is `{source run id}/{initiated event id}`: unique (event ids are never reused in a
run, run ids never in a cluster) and it names its cause. Same wire contract as commands.py.
"""

from __future__ import annotations

import msgspec

from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.search_attributes import JsonAttributeValue
from raftflow.protocol.workflow_commands import Failure, RetryPolicy


class SignalMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                    tag="SignalMessage", tag_field="message"):
    namespace: str
    workflow_id: str
    run_id: str = ""  # "" = the open run
    signal_name: str
    input: bytes = b""


class CancelMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                    tag="CancelMessage", tag_field="message"):
    namespace: str
    workflow_id: str
    run_id: str = ""
    reason: str = ""


class TerminateMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                       tag="TerminateMessage", tag_field="message"):
    """A parent closed with parent close policy TERMINATE: its child must end too."""

    namespace: str
    workflow_id: str
    run_id: str = ""
    reason: str = ""


class StartChildMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                        tag="StartChildMessage", tag_field="message"):
    """Start the child (namespace, workflow_id) of the message's source run, idempotently by
    the message id; the target's shard derives the child's run id from it."""

    namespace: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    input: bytes = b""
    execution_timeout_ms: int | None = None
    run_timeout_ms: int | None = None
    task_timeout_ms: int
    id_reuse_policy: str = ""
    parent_close_policy: str = "terminate"
    retry_policy: RetryPolicy | None = None
    traceparent: str = ""  # the parent task's W3C traceparent, for the child's start


class ChildClosedMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                         tag="ChildClosedMessage", tag_field="message"):
    """A child run closed: tell its parent run (namespace, workflow_id, run_id), whose event
    `initiated_event_id` started it. `close` is the child's close event attributes."""

    namespace: str
    workflow_id: str
    run_id: str
    initiated_event_id: int
    child_workflow_id: str
    child_run_id: str
    child_workflow_type: str
    status: str  # the child's WorkflowStatus value
    result: bytes = b""
    failure: Failure | None = None


class ScheduleStartMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                           tag="ScheduleStartMessage", tag_field="message"):
    """A schedule's action: start (namespace, workflow_id), the action's deterministic id,
    idempotently by the message id (its run id derives from it), and link the run to the
    schedule `schedule_id` (shards/core/schedule_actions.py)."""

    namespace: str
    workflow_id: str
    schedule_id: str
    workflow_type: str
    task_queue: str
    input: bytes = b""
    execution_timeout_ms: int | None = None
    run_timeout_ms: int | None = None
    task_timeout_ms: int
    search_attributes: dict[str, JsonAttributeValue] = msgspec.field(default_factory=dict)
    retry_policy: RetryPolicy | None = None


class ScheduleActionClosedMessage(msgspec.Struct, frozen=True, kw_only=True,
                                  forbid_unknown_fields=True,
                                  tag="ScheduleActionClosedMessage", tag_field="message"):
    """A schedule's action run closed (its last run: continue-as-new keeps the link): tell the
    schedule. `workflow_id` is the schedule's id (messages route by (namespace, workflow_id),
    and schedules live on shard_for(namespace, schedule_id)); `action_workflow_id` the run's."""

    namespace: str
    workflow_id: str
    action_workflow_id: str
    action_run_id: str
    status: str  # the run's WorkflowStatus value


MessageBody = (SignalMessage | CancelMessage | TerminateMessage | StartChildMessage
               | ChildClosedMessage | ScheduleStartMessage | ScheduleActionClosedMessage)


class OutboxEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One message waiting in its source shard's outbox until the target acknowledges it."""

    message_id: str
    created_ms: int  # the now_ms of the command that queued it (its retry horizon counts from it)
    source_namespace: str
    source_workflow_id: str
    source_run_id: str
    initiated_event_id: int
    body: MessageBody


def message_id(source_run_id: str, initiated_event_id: int, suffix: str = "") -> str:
    """`{source run}/{event}`, and a suffix when one event causes several messages (a
    parent's close tells each child, named by the event that started it)."""
    assert source_run_id and initiated_event_id >= 1
    base = f"{source_run_id}/{initiated_event_id}"
    return f"{base}/{suffix}" if suffix else base


class MessageOutcome(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the target's shard did with one message: `error` None = it took effect (now or at
    an earlier delivery of the same id); otherwise why it never will."""

    message_id: str
    error: ErrorCode | None = None
    detail: str = ""
    run_id: str = ""  # a started child's run id (StartChildMessage)


class DeliverMessages(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                      tag="DeliverMessages", tag_field="command"):
    """Apply messages to their targets, all on this shard; each is decided on its own."""

    now_ms: int
    entries: tuple[OutboxEntry, ...]


class AckMessages(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                  tag="AckMessages", tag_field="command"):
    """The outcomes of this shard's outbox messages, as their targets' shards answered."""

    now_ms: int
    outcomes: tuple[MessageOutcome, ...]
