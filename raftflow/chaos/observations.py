"""What a chaos run saw: the checker's whole input, as plain frozen values.

Two kinds of evidence meet here. *What clients were told* (acknowledged starts and signals,
results the client received) and *what activities did* (the append-only execution log kept
outside the cluster) come from the harness's own side. *What the cluster reports* (every run's
description and history, each replica's state digest, leaders seen per term) is read from the
nodes once the run is quiescent. The checker (`checker.py`) compares the two; it does no IO, so
a test can hand it doctored evidence and see each violation reported.

Times are seconds since the run started (the harness's monotonic clock), so a report lines up
acknowledgements, fault windows and samples on one axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JsonValue = Any  # a value decoded from JSON (dict, list, str, int, float, bool, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowPlan:
    """What one workload workflow was asked to do (its input, also kept by the harness).

    The workflow runs `sequential` activities one after another, then `parallel` activities at
    once, sleeps `timer_ms`, and waits until it has received `signals` signals (from any
    sender). Its result is `{"activities": [token, ...], "signals": [[sender, seq], ...]}`: the
    activity tokens in schedule order (sequential first, then parallel), then the signals in
    the order the workflow received them.
    """

    workflow_id: str
    sequential: int
    parallel: int
    timer_ms: int
    signals: int
    # Signals the workflow itself sends, from workflow code, to its inbox workflow (`inbox_of`,
    # started by the driver), through the shard outbox; each awaited, a failed one sent again.
    external_signals: int = 0

    @property
    def activity_count(self) -> int:
        return self.sequential + self.parallel

    def to_json(self) -> dict[str, int]:
        return {"sequential": self.sequential, "parallel": self.parallel,
                "timer_ms": self.timer_ms, "signals": self.signals,
                "external_signals": self.external_signals}


@dataclass(frozen=True, slots=True, kw_only=True)
class StartAck:
    """A start the cluster answered 2xx: it must run to completion."""

    plan: WorkflowPlan
    run_id: str
    request_id: str
    acked_at_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalAck:
    """A signal the cluster answered 2xx. `seq` counts 0, 1, 2... per (workflow, sender);
    a sender sends its next signal only after this one was acknowledged."""

    workflow_id: str
    sender: str
    seq: int
    request_id: str
    acked_at_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityExecution:
    """One line of the activity log: an execution of an activity that returned `token`.

    Written (and fsynced) by the activity before it returns, so a token a workflow received
    always has a line; a line without a matching workflow result is a legal retry.
    `activity_index` is the position in the plan (0-based: sequential ones first).
    """

    workflow_id: str
    activity_index: int
    attempt: int
    token: str
    at_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientResult:
    """The result the client received for a workflow (its handle's `result()`)."""

    workflow_id: str
    run_id: str
    result: JsonValue
    at_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One run as the cluster reports it at quiescence: description fields and whole history.

    `history` is the event list in the HTTP API's JSON shape
    (`{"event_id", "event_type", "timestamp", "attributes"}`, see docs/api.md), as recorded:
    JSON, so report.json and test data keep it as is. The checker decodes it once into typed
    events (`history_checks.decode_history`) and reports what does not decode.
    """

    workflow_id: str
    run_id: str
    status: str  # RUNNING, COMPLETED, FAILED, ... (upper case, as the API gives it)
    result: JsonValue
    pending_activity_count: int
    pending_timer_count: int
    pending_workflow_task: bool
    history: tuple[dict[str, JsonValue], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaDigest:
    """One replica's state digest of one shard, read after the cluster went quiet."""

    shard: int
    node: str
    applied_index: int
    digest: str
    outbox_messages: int = 0  # waiting in the replica's outbox: 0 at quiescence


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderSample:
    """A node claimed, at `at_s`, to lead `shard` in `term`."""

    at_s: float
    node: str
    shard: int
    term: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementReading:
    """The cluster status (`GET /api/v1/cluster/status`) read after the run settled.

    `members` are (node id, state, alive) as the status lists them; `shards` are (shard,
    replica node ids); `moves` counts the moves in progress. `expected_members` are the
    nodes the harness holds as members (joined, never removed); `waited_s` is how long the
    collector waited for moves to finish before this reading."""

    members: tuple[tuple[str, str, bool], ...]
    shards: tuple[tuple[int, tuple[str, ...]], ...]
    moves: int
    expected_members: tuple[str, ...]
    waited_s: float

    @staticmethod
    def of_status(status: dict[str, JsonValue], *, expected_members: tuple[str, ...],
                  waited_s: float) -> PlacementReading:
        return PlacementReading(
            members=tuple((str(n["id"]), str(n.get("state", "active")), bool(n.get("alive")))
                          for n in status.get("nodes", [])),
            shards=tuple((int(s["shard"]), tuple(str(r) for r in s.get("replicas", [])))
                         for s in status.get("shards", [])),
            moves=len(status.get("moves", [])), expected_members=expected_members,
            waited_s=round(waited_s, 3))


@dataclass(frozen=True, slots=True, kw_only=True)
class Observations:
    """Everything the checker reads. Runs are keyed by workflow id (every run of the id)."""

    starts: tuple[StartAck, ...]
    signals: tuple[SignalAck, ...]
    executions: tuple[ActivityExecution, ...]
    client_results: tuple[ClientResult, ...]
    runs: tuple[RunRecord, ...]
    digests: tuple[ReplicaDigest, ...]
    leader_samples: tuple[LeaderSample, ...]
    # Workflow ids the cluster lists at quiescence; a listed id with no start ack is legal
    # (a start whose answer was lost), but it must still be well-formed.
    listed_workflow_ids: tuple[str, ...] = ()
    # The cluster status after the run settled; None when the run did not read it (then the
    # replication invariant has nothing to check).
    placement: PlacementReading | None = None
    # Membership steps that did not complete within their bounds (a stuck drain, a removed
    # node that did not exit 0), as the nemesis saw them: "<fault> at <t> s: <what>".
    membership_failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Violation:
    """A broken invariant. `invariant` is one of `checker.INVARIANTS`' names; `subject` says
    where (a workflow id, `shard 3`, ...); `detail` says what was expected and what was seen."""

    invariant: str
    subject: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"invariant": self.invariant, "subject": self.subject, "detail": self.detail}
