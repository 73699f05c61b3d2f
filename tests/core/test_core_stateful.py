"""Goal: under any command sequence the shard core keeps its invariants (I2, I3, I5), refusals
change nothing, and replicas fed the same log stay byte-identical.

Method: a hypothesis RuleBasedStateMachine proposes random commands - starts with every reuse
policy and retried request ids, signals, cancels, terminates, task hand-outs, completions with
random workflow commands, activity answers, heartbeats, and FireTimers with an increasing clock.
Worker answers reuse any token ever handed out, so stale and duplicate answers are frequent.
Each command is applied to the primary state and, after a codec round trip, to a replica; after
every step: `check_invariants`, equal outputs and digests, a refusal (other than
unhandled_command) left the digest unchanged; snapshots are round-tripped along the way.
Derandomized, so a failure reproduces on every run; hypothesis prints the failing steps.
"""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from raftflow.protocol import codec
from raftflow.protocol.commands import (
    Command,
    Failure,
    FailWorkflowExecution,
    FireTimers,
    IdReusePolicy,
    RecordActivityTaskHeartbeat,
    RecordActivityTaskStarted,
    RecordWorkflowTaskStarted,
    RequestCancelWorkflow,
    ResetType,
    ResetWorkflow,
    RespondActivityTaskCanceled,
    RespondActivityTaskCompleted,
    RespondActivityTaskFailed,
    RespondWorkflowTaskCompleted,
    RespondWorkflowTaskFailed,
    RetryPolicy,
    SignalWorkflow,
    StartWorkflow,
    TaskToken,
    TerminateWorkflow,
    WorkflowCommand,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import WorkflowExecutionSignaledEventAttributes
from raftflow.protocol.messages import (
    AckMessages,
    DeliverMessages,
    MessageOutcome,
    OutboxEntry,
)
from raftflow.protocol.results import (
    ActivityTaskCompletedResult,
    ActivityTaskStartedResult,
    MessagesDelivered,
    Rejected,
    Result,
    WorkflowStartedResult,
    WorkflowTaskCompletedResult,
    WorkflowTaskInfo,
    WorkflowTaskStartedResult,
)
from raftflow.shards.core import ShardState, apply, snapshot
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.invariants import check_invariants
from tests.core.core_driver import history_events
from tests.core.stateful_strategies import (
    EAGER,
    EAGER_QUEUES,
    FAILURES,
    NS,
    POLICIES,
    REQUEST_IDS,
    SCHEDULE,
    STICKY_QUEUES,
    TASK_COMMANDS,
    WORKFLOW_IDS,
    check_messages_once,
    folded_task,
)
from tests.core.update_steps import (
    UPDATE_IDS,
    UpdateOutcomes,
    answer_updates,
    check_update_answer,
    update_request,
)


class ShardMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = ShardState.empty(3)
        self.replica = ShardState.empty(3)
        self.now_ms = 1_000
        self.runs = 0
        self.workflow_tokens: list[TaskToken] = []
        self.activity_tokens: list[TaskToken] = []
        # Model of I5: the first accepted answer per (command kind, workflow id, request id).
        self.answers: dict[tuple[str, str, str], Result] = {}
        self.eager_tasks: dict[tuple[str, str, str], WorkflowTaskInfo] = {}
        # Every outbox entry seen, and every outcome a delivery answered: a courier may send
        # any of them again, late, or never.
        self.sent: dict[str, OutboxEntry] = {}
        self.outcomes: list[MessageOutcome] = []
        # Workflow updates: the ids each handed-out task carried, and each update's outcome.
        self.carried: dict[TaskToken, tuple[str, ...]] = {}
        self.update_outcomes: UpdateOutcomes = {}

    def _client(self, kind: str, command: Command, workflow_id: str, request_id: str) -> None:
        """Apply a client command; a retried request id must get its first answer, unchanged."""
        key = (kind, workflow_id, request_id)
        events_before = history_events(self.state)
        result = self._apply(command)
        if isinstance(result, WorkflowStartedResult) and result.workflow_task is not None:
            # An eager start: the first answer carries the task it started; a retry of the same
            # eager start gets that same task again while it is still started (its first
            # answer may have been lost), and never another one.
            if key in self.answers:
                assert result.workflow_task == self.eager_tasks[key], key
            else:
                assert result.workflow_task.started_event_id == 3
                self.eager_tasks[key] = result.workflow_task
                self.workflow_tokens.append(result.workflow_task.token)
            result = msgspec.structs.replace(result, workflow_task=None)
        if key in self.answers:
            assert result == self.answers[key], (key, result)
            assert history_events(self.state) == events_before
        elif not isinstance(result, Rejected):
            self.answers[key] = result

    def _apply(self, command: Command) -> Result:
        self.state.applied_index += 1
        before = state_digest(self.state)
        self.state.applied_index -= 1
        output = apply(self.state, command)
        replayed = apply(self.replica, codec.decode_command(codec.encode_command(command)))
        assert replayed == output
        unchanged_expected = (isinstance(output.result, Rejected)
                              and output.result.code is not ErrorCode.UNHANDLED_COMMAND)
        if unchanged_expected:
            assert not output.events and not output.effects
            assert state_digest(self.state) == before, f"refusal changed state: {command}"
        return output.result

    @staticmethod
    def _pick(data: st.DataObject, tokens: list[TaskToken]) -> TaskToken:
        """Mostly the newest token (likely current), sometimes any older one (stale)."""
        if data.draw(st.booleans()):
            return tokens[-1]
        return data.draw(st.sampled_from(tokens))

    def _open_run(self, workflow_id: str) -> str | None:
        return self.state.open_runs.get((NS, workflow_id))

    @rule(workflow_id=WORKFLOW_IDS, request_id=REQUEST_IDS,
          policy=st.sampled_from(IdReusePolicy),
          run_timeout_ms=st.sampled_from([None, None, None, 30_000, 200_000]),
          eager_queue=EAGER_QUEUES, retry_policy=POLICIES,
          execution_timeout_ms=st.sampled_from([None, None, 60_000]))
    def start(self, workflow_id: str, request_id: str, policy: IdReusePolicy,
              run_timeout_ms: int | None, eager_queue: str, retry_policy: RetryPolicy | None,
              execution_timeout_ms: int | None) -> None:
        self.runs += 1
        command = StartWorkflow(now_ms=self.now_ms, namespace=NS, workflow_id=workflow_id,
                                workflow_type="W", task_queue="q", request_id=request_id,
                                run_id=f"run-{self.runs}", id_reuse_policy=policy,
                                run_timeout_ms=run_timeout_ms, task_timeout_ms=5_000,
                                eager_task_queue=eager_queue, eager_identity="me",
                                retry_policy=retry_policy,
                                execution_timeout_ms=execution_timeout_ms)
        self._client("start", command, workflow_id, request_id)

    @rule(workflow_id=WORKFLOW_IDS, request_id=REQUEST_IDS,
          policy=st.sampled_from(IdReusePolicy))
    def signal_with_start(self, workflow_id: str, request_id: str,
                          policy: IdReusePolicy) -> None:
        """A start carrying a signal: its own request key is the start's, and a first accepted
        answer leaves exactly one signal of its request id in the run it names."""
        self.runs += 1
        fresh = ("start", workflow_id, request_id) not in self.answers
        command = StartWorkflow(now_ms=self.now_ms, namespace=NS, workflow_id=workflow_id,
                                workflow_type="W", task_queue="q", request_id=request_id,
                                run_id=f"run-{self.runs}", id_reuse_policy=policy,
                                task_timeout_ms=5_000, signal_name="sws", signal_input=b'"x"')
        self._client("start", command, workflow_id, request_id)
        answer = self.answers.get(("start", workflow_id, request_id))
        if fresh and isinstance(answer, WorkflowStartedResult):
            execution = self.state.executions[answer.run_id]  # open: it was just signalled
            events = [*execution.history, *execution.buffered]
            # A plain signal ("s") may share the request id: it is another request.
            assert [e.attributes.request_id for e in events
                    if isinstance(e.attributes, WorkflowExecutionSignaledEventAttributes)
                    and e.attributes.signal_name == "sws"].count(request_id) == 1

    @rule(workflow_id=WORKFLOW_IDS, request_id=REQUEST_IDS, kind=st.sampled_from(
        ["signal", "cancel", "terminate"]))
    def client_request(self, workflow_id: str, request_id: str, kind: str) -> None:
        fields = {"now_ms": self.now_ms, "namespace": NS, "workflow_id": workflow_id,
                  "request_id": request_id}
        command: Command
        if kind == "signal":
            command = SignalWorkflow(**fields, signal_name="s")  # type: ignore[arg-type]
        elif kind == "cancel":
            command = RequestCancelWorkflow(**fields)  # type: ignore[arg-type]
        else:
            command = TerminateWorkflow(**fields)  # type: ignore[arg-type]
        self._client(kind, command, workflow_id, request_id)

    @rule(workflow_id=WORKFLOW_IDS, request_id=REQUEST_IDS,
          reset_type=st.sampled_from([None, *ResetType]),
          event_id=st.integers(min_value=0, max_value=14))
    def reset(self, workflow_id: str, request_id: str, reset_type: ResetType | None,
              event_id: int) -> None:
        """A reset by kind or by event id (often not a workflow task's: refused); a retry
        answers the first new run again, and a fresh one leaves that run open."""
        self.runs += 1
        key = ("reset", workflow_id, request_id)
        events_before = history_events(self.state)
        result = self._apply(ResetWorkflow(
            now_ms=self.now_ms, namespace=NS, workflow_id=workflow_id,
            new_run_id=f"run-{self.runs}", event_id=0 if reset_type else event_id,
            reset_type=reset_type, reason="r", request_id=request_id))
        first = self.answers.get(key)
        if isinstance(first, WorkflowStartedResult):
            assert result == first
            assert history_events(self.state) == events_before
        elif isinstance(result, WorkflowStartedResult):
            assert result.created and self._open_run(workflow_id) == result.run_id
            self.answers[key] = result

    @rule(workflow_id=WORKFLOW_IDS, request_id=REQUEST_IDS, skew=st.sampled_from([0, 0, 0, 1]),
          sticky=STICKY_QUEUES)
    def poll_workflow_task(self, workflow_id: str, request_id: str, skew: int,
                           sticky: str = "") -> None:
        run_id = self._open_run(workflow_id)
        if run_id is None:
            return
        task = self.state.executions[run_id].workflow_task
        scheduled = (task.scheduled_event_id if task is not None else 2) + skew
        result = self._apply(RecordWorkflowTaskStarted(
            now_ms=self.now_ms, namespace=NS, workflow_id=workflow_id, run_id=run_id,
            scheduled_event_id=scheduled, request_id=request_id, sticky_queue=sticky))
        if isinstance(result, WorkflowTaskStartedResult):
            self._check_task_history(run_id, result.task)
            self.workflow_tokens.append(result.task.token)
            self.carried[result.task.token] = tuple(u.update_id for u in result.task.updates)

    def _check_task_history(self, run_id: str, task: WorkflowTaskInfo) -> None:
        """A task's history is the run's from event 1, or (sticky) from the event after the
        previous task's WorkflowTaskStarted, and always ends with this task's start."""
        history = self.state.executions[run_id].history
        first = task.history[0].event_id
        assert first in (1, task.previous_started_event_id + 1), (first, task)
        assert list(task.history) == history[first - 1:task.started_event_id]

    def _complete(self, token: TaskToken, commands: tuple[WorkflowCommand, ...],
                  eager: tuple[str, int, str]) -> None:
        eager_queue, eager_max, sticky = eager
        responses, commands = answer_updates(self.state, self.carried.get(token, ()), token,
                                             commands)
        result = self._apply(RespondWorkflowTaskCompleted(
            now_ms=self.now_ms, token=token, commands=commands, sticky_queue=sticky,
            eager_task_queue=eager_queue, eager_activities_max=eager_max,
            update_responses=responses))
        if isinstance(result, WorkflowTaskCompletedResult):
            assert len(result.activity_tasks) <= eager_max
            assert eager_queue or not result.activity_tasks
            assert result.activity_tasks or result.events
            self.activity_tokens.extend(t.token for t in result.activity_tasks)
            if result.events:  # a sticky worker's: what the completion wrote to the open run
                execution = self.state.executions[token.run_id]
                first = result.events[0]
                assert sticky and first.event_type == "WorkflowTaskCompleted"
                assert list(result.events) == execution.history[
                    first.event_id - execution.spilled_events - 1:]

    @rule(workflow_id=WORKFLOW_IDS, update_id=UPDATE_IDS)
    def request_update(self, workflow_id: str, update_id: str) -> None:
        """An update (dedup by update id): once completed, every request gets that outcome."""
        result = self._apply(update_request(self.now_ms, NS, workflow_id, update_id))
        check_update_answer(self.update_outcomes, (workflow_id, update_id), result)

    @rule(workflow_id=WORKFLOW_IDS, request_id=REQUEST_IDS, commands=TASK_COMMANDS,
          eager=EAGER)
    def run_workflow_task(self, workflow_id: str, request_id: str,
                          commands: tuple[WorkflowCommand, ...],
                          eager: tuple[str, int, str]) -> None:
        """A well-behaved worker: hand-out then completion, so runs make progress."""
        self.poll_workflow_task(workflow_id, request_id, 0, eager[2])
        run_id = self._open_run(workflow_id)
        token = self.workflow_tokens[-1] if self.workflow_tokens else None
        if run_id is not None and token is not None and token.run_id == run_id:
            self._complete(token, commands, eager)

    @rule(workflow_id=WORKFLOW_IDS, request_id=REQUEST_IDS, failure=st.builds(
        Failure, message=st.just("x"), type=st.sampled_from(["E", "E", "Fatal"])))
    def fail_the_run(self, workflow_id: str, request_id: str, failure: Failure) -> None:
        """The workflow code raises: with a retry policy, often the next attempt starts, and
        the rules go on with it (its back-off, signals and updates meanwhile, its own close)."""
        self.run_workflow_task(workflow_id, request_id, (FailWorkflowExecution(failure=failure),),
                               ("", 0, ""))

    @precondition(lambda self: bool(self.workflow_tokens))
    @rule(data=st.data(), commands=TASK_COMMANDS, eager=EAGER)
    def complete_workflow_task(self, data: st.DataObject,
                               commands: tuple[WorkflowCommand, ...],
                               eager: tuple[str, int, str]) -> None:
        self._complete(self._pick(data, self.workflow_tokens), commands, eager)

    @precondition(lambda self: bool(self.workflow_tokens))
    @rule(data=st.data())
    def fail_workflow_task(self, data: st.DataObject) -> None:
        token = self._pick(data, self.workflow_tokens)
        self._apply(RespondWorkflowTaskFailed(now_ms=self.now_ms, token=token))

    @rule(workflow_id=WORKFLOW_IDS, request_id=REQUEST_IDS, data=st.data())
    def poll_activity(self, workflow_id: str, request_id: str, data: st.DataObject) -> None:
        run_id = self._open_run(workflow_id)
        if run_id is None or not self.state.executions[run_id].activities:
            return
        activities = self.state.executions[run_id].activities
        sid = data.draw(st.sampled_from(sorted(activities)))
        attempt = activities[sid].attempt + data.draw(st.sampled_from([0, 0, 0, -1]))
        result = self._apply(RecordActivityTaskStarted(
            now_ms=self.now_ms, namespace=NS, workflow_id=workflow_id, run_id=run_id,
            scheduled_event_id=sid, attempt=attempt, request_id=request_id))
        if isinstance(result, ActivityTaskStartedResult):
            self.activity_tokens.append(result.task.token)

    @rule(workflow_id=WORKFLOW_IDS, request_id=REQUEST_IDS, data=st.data(),
          answer=st.sampled_from(["completed", "failed", "canceled", "beat"]), failure=FAILURES)
    def run_activity(self, workflow_id: str, request_id: str, data: st.DataObject, answer: str,
                     failure: Failure) -> None:
        """A well-behaved activity worker: hand-out of a current attempt, then an answer."""
        count = len(self.activity_tokens)
        self.poll_activity(workflow_id, request_id, data)
        if len(self.activity_tokens) > count:
            self.answer_activity(data, answer, failure)

    @precondition(lambda self: bool(self.activity_tokens))
    @rule(data=st.data(), answer=st.sampled_from(["completed", "failed", "canceled", "beat"]),
          failure=FAILURES)
    def answer_activity(self, data: st.DataObject, answer: str, failure: Failure) -> None:
        token = self._pick(data, self.activity_tokens)
        now_ms = self.now_ms
        if answer == "completed":
            self._complete_activity(data, token, data.draw(EAGER_QUEUES),
                                    data.draw(STICKY_QUEUES), data.draw(st.booleans()))
        elif answer == "failed":
            self._apply(RespondActivityTaskFailed(now_ms=now_ms, token=token, failure=failure))
        elif answer == "canceled":
            self._apply(RespondActivityTaskCanceled(now_ms=now_ms, token=token))
        else:
            self._apply(RecordActivityTaskHeartbeat(now_ms=now_ms, token=token, details=b"h"))

    @rule(workflow_id=WORKFLOW_IDS, request_id=REQUEST_IDS, data=st.data())
    def step_with_folded_task(self, workflow_id: str, request_id: str,
                              data: st.DataObject) -> None:
        """A sticky worker's step: a workflow task schedules an activity, started eagerly for
        the worker, which completes it with the workflow task it makes, run in advance
        (on_folded_task.py), valid or not."""
        count = len(self.activity_tokens)
        self.run_workflow_task(workflow_id, request_id, (data.draw(SCHEDULE),), ("q", 1, "s1"))
        if len(self.activity_tokens) > count:
            self._complete_activity(data, self.activity_tokens[-1], "q", "s1", True)

    def _complete_activity(self, data: st.DataObject, token: TaskToken, eager_queue: str,
                           sticky: str, fold: bool) -> None:
        execution = self.state.executions.get(token.run_id)
        result = self._apply(RespondActivityTaskCompleted(
            now_ms=self.now_ms, token=token, result=b"r", eager_task_queue=eager_queue,
            sticky_queue=sticky, workflow_task_completion=(
                folded_task(data, execution, self.now_ms) if fold else None)))
        if isinstance(result, ActivityTaskCompletedResult) and result.workflow_task_completed:
            # The folded task went in with it: the activities it started are the worker's
            # now, and what it wrote is the run's history tail.
            assert eager_queue == "q" and result.workflow_task is None
            self.activity_tokens.extend(t.token for t in result.activity_tasks)
            if result.events:
                run = self.state.find_run(token.run_id)
                assert run is not None and run.is_open and sticky
                first = result.events[0].event_id - run.spilled_events - 1
                assert list(result.events) == run.history[first:]
        elif isinstance(result, ActivityTaskCompletedResult):
            assert result.workflow_task is not None and eager_queue == "q"
            self._check_task_history(token.run_id, result.workflow_task)
            self.workflow_tokens.append(result.workflow_task.token)

    @rule(advance_ms=st.sampled_from([0, 1, 500, 1_000, 5_000, 20_000, 100_000]))
    def fire_timers(self, advance_ms: int) -> None:
        self.now_ms += advance_ms
        self._apply(FireTimers(now_ms=self.now_ms))
        earliest = self.state.earliest_timer()
        assert earliest is None or earliest[0] > self.now_ms

    @precondition(lambda self: self.state.outbox or self.sent)
    @rule(data=st.data())
    def deliver_messages(self, data: st.DataObject) -> None:
        self.sent.update(self.state.outbox)
        entries = data.draw(st.lists(st.sampled_from(list(self.sent.values())), min_size=1,
                                     max_size=4))
        result = self._apply(DeliverMessages(now_ms=self.now_ms, entries=tuple(entries)))
        assert isinstance(result, MessagesDelivered), result
        assert [o.message_id for o in result.outcomes] == [e.message_id for e in entries]
        self.outcomes.extend(result.outcomes)

    @precondition(lambda self: self.outcomes)
    @rule(data=st.data())
    def ack_messages(self, data: st.DataObject) -> None:
        outcomes = data.draw(st.lists(st.sampled_from(self.outcomes), min_size=1, max_size=4))
        self._apply(AckMessages(now_ms=self.now_ms, outcomes=tuple(outcomes)))
        assert not {o.message_id for o in outcomes} & set(self.state.outbox)

    @rule()
    def restore_replica_from_snapshot(self) -> None:
        data = snapshot.to_bytes(self.replica)
        self.replica = snapshot.from_bytes(data)
        assert snapshot.to_bytes(self.replica) == data

    @invariant()
    def replicas_agree_and_invariants_hold(self) -> None:
        check_invariants(self.state)
        check_invariants(self.replica)
        assert state_digest(self.state) == state_digest(self.replica)
        check_messages_once(self.state)


ShardMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestShardCore = ShardMachine.TestCase
