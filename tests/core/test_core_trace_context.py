"""Goal: the shard core carries a trace context as an opaque string and nothing more: a start's
traceparent reaches WorkflowExecutionStarted; an activity's, its ActivityTaskScheduled and
every attempt's task (retries included); a child's, through the outbox, the child's
WorkflowExecutionStarted; a continue-as-new and a workflow retry hand the starter's to the
next run; a run started without one records "" everywhere.

Method: the driver shard plays client, workflow worker and activity worker; each field is read
back from the typed events and task answers.
"""

from __future__ import annotations

from raftflow.protocol.commands import (
    ContinueAsNewWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    RetryPolicy,
    StartChildWorkflowExecution,
)
from raftflow.protocol.events import (
    ActivityTaskScheduledEventAttributes,
    WorkflowExecutionStartedEventAttributes,
)
from raftflow.protocol.messages import DeliverMessages, StartChildMessage
from raftflow.protocol.results import MessagesDelivered
from tests.core.core_driver import Shard, activity

START_CONTEXT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TASK_CONTEXT = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"


def _started(shard: Shard, run_id: str) -> WorkflowExecutionStartedEventAttributes:
    started = shard.execution(run_id).history[0].attributes
    assert isinstance(started, WorkflowExecutionStartedEventAttributes)
    return started


def test_a_start_and_an_activity_carry_their_trace_contexts() -> None:
    shard = Shard()
    run_id = shard.start(traceparent=START_CONTEXT)
    assert _started(shard, run_id).traceparent == START_CONTEXT
    task = shard.poll_workflow_task(run_id)
    assert task.history[0].attributes == _started(shard, run_id)  # what the worker reads
    shard.complete_task(task.token, activity(
        retry_policy=RetryPolicy(initial_interval_ms=1), traceparent=TASK_CONTEXT))
    (scheduled,) = [e.attributes for e in shard.execution(run_id).history
                    if isinstance(e.attributes, ActivityTaskScheduledEventAttributes)]
    assert scheduled.traceparent == TASK_CONTEXT
    first = shard.poll_activity(run_id)
    assert first.traceparent == TASK_CONTEXT
    shard.fail_activity(first.token, Failure(message="again", type="Transient"))
    shard.advance(1_000)  # the retry timer: attempt 2 is the same activity, same context
    second = shard.poll_activity(run_id)
    assert second.attempt == 2 and second.traceparent == TASK_CONTEXT


def test_no_trace_context_is_recorded_as_empty() -> None:
    shard = Shard()
    run_id = shard.start()
    assert _started(shard, run_id).traceparent == ""
    shard.decide(run_id, activity())
    assert shard.poll_activity(run_id).traceparent == ""


def test_continue_as_new_and_a_workflow_retry_keep_the_starters_context() -> None:
    shard = Shard()
    run_id = shard.start(traceparent=START_CONTEXT,
                         retry_policy=RetryPolicy(initial_interval_ms=1, maximum_attempts=2))
    shard.decide(run_id, ContinueAsNewWorkflowExecution(input=b"[]"))
    (continued,) = [e for e in shard.state.executions.values() if e.run_id != run_id]
    assert _started(shard, continued.run_id).traceparent == START_CONTEXT
    shard.decide(continued.run_id, FailWorkflowExecution(failure=Failure(message="x")))
    (retried,) = [e for e in shard.state.executions.values()
                  if e.run_id not in (run_id, continued.run_id)]
    assert retried.attempt == 2
    assert _started(shard, retried.run_id).traceparent == START_CONTEXT


def test_a_child_is_started_in_its_parent_tasks_trace() -> None:
    parents, kids = Shard(), Shard()
    parent = parents.start("parent", traceparent=START_CONTEXT)
    parents.decide(parent, StartChildWorkflowExecution(workflow_id="kid", workflow_type="Kid",
                                                       traceparent=TASK_CONTEXT))
    (entry,) = parents.state.outbox.values()
    assert isinstance(entry.body, StartChildMessage)
    assert entry.body.traceparent == TASK_CONTEXT
    output = kids.run(DeliverMessages(now_ms=kids.now_ms, entries=(entry,)))
    assert isinstance(output.result, MessagesDelivered), output.result
    (outcome,) = output.result.outcomes
    assert outcome.error is None
    assert _started(kids, outcome.run_id).traceparent == TASK_CONTEXT
