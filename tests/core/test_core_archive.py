"""Goal: the reference archive (`MemoryArchive`) keeps, answers and deletes exactly what its
protocol promises, and a snapshot carries the whole archive, so a restored replica digests alike.

Method: (1) a hypothesis state machine applies random put_closed / remember / expire / restore
sequences to a `MemoryArchive` and to a model of plain dicts that deletes by sorting everything
due: closed runs in (delete_at_ms, run_id) order, then request ids in (expires_at_ms, key) order,
at most `limit` in all; a run's deletion removes its workflow id's latest pointer only if the
pointer names it. Every read is compared after each rule. (2) seeded random walks of the whole
core (`Walk`) with clock steps long enough to reach retention, so FireTimers deletes closed runs
and request ids (and the walk's I5 model forgets them); every few steps the state is snapshot and
restored, and the restored copy must digest alike (archive included) and keep being driven.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from raftflow.protocol.results import Ack, Result, WorkflowStartedResult, WorkflowStatus
from raftflow.shards.core import limits, snapshot
from raftflow.shards.core.archive import canonical_latest, canonical_request, canonical_run
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.memory_archive import MemoryArchive
from raftflow.shards.core.state import Execution, RequestKey, WorkflowKey
from tests.core.test_core_random_walk import Walk

NAMESPACES = ("ns1", "ns2")
WORKFLOW_IDS = ("a", "b", "c")
CLOSED_STATUSES = (WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.TERMINATED)
KINDS = ("start", "signal", "cancel")
RESULTS: tuple[Result, ...] = (Ack(), WorkflowStartedResult(run_id="r", created=True))
DUE_MS = st.integers(min_value=0, max_value=60)  # small: many rows fall due together


def _closed(namespace: str, workflow_id: str, run_id: str, status: WorkflowStatus,
            start_time_ms: int) -> Execution:
    return Execution(namespace=namespace, workflow_id=workflow_id, run_id=run_id,
                     workflow_type="W", task_queue="q", status=status,
                     start_time_ms=start_time_ms, close_time_ms=start_time_ms + 1,
                     task_timeout_ms=10_000, run_timeout_ms=None, execution_timeout_ms=None,
                     execution_expire_ms=None, first_execution_run_id=run_id)


class ArchiveModel:
    """The archive's contract with no indexes: dicts, and a sort over everything at expiry."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[int, Execution]] = {}  # run_id -> (delete_at_ms, run)
        self.latest: dict[WorkflowKey, str] = {}
        self.requests: dict[RequestKey, tuple[Result, int]] = {}  # key -> (result, expires_at)

    def put_closed(self, execution: Execution, delete_at_ms: int) -> None:
        self.runs[execution.run_id] = (delete_at_ms, execution)
        self.latest[execution.key] = execution.run_id

    def expire(self, now_ms: int, limit: int) -> int:
        runs = sorted((at, run_id) for run_id, (at, _) in self.runs.items() if at <= now_ms)
        requests = sorted((at, key) for key, (_, at) in self.requests.items() if at <= now_ms)
        runs = runs[:limit]
        requests = requests[:limit - len(runs)]
        for _, run_id in runs:
            _, execution = self.runs.pop(run_id)
            if self.latest.get(execution.key) == run_id:
                del self.latest[execution.key]
        for _, key in requests:
            del self.requests[key]
        return len(runs) + len(requests)

    def next_expiry_ms(self) -> int | None:
        due = [at for at, _ in self.runs.values()] + [at for _, at in self.requests.values()]
        return min(due, default=None)


class ArchiveMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.archive = MemoryArchive()
        self.model = ArchiveModel()
        self.now_ms = 0
        self.deleted = 0

    @rule(namespace=st.sampled_from(NAMESPACES), workflow_id=st.sampled_from(WORKFLOW_IDS),
          run_number=st.integers(min_value=0, max_value=9),
          status=st.sampled_from(CLOSED_STATUSES), start_ms=st.integers(0, 5), after_ms=DUE_MS)
    def put_closed(self, namespace: str, workflow_id: str, run_number: int,
                   status: WorkflowStatus, start_ms: int, after_ms: int) -> None:
        run_id = f"run{run_number}"
        if run_id in self.model.runs:  # run ids are unique among retained runs (reuse after)
            return
        execution = _closed(namespace, workflow_id, run_id, status, start_ms)
        self.archive.put_closed(execution, self.now_ms + after_ms)
        self.model.put_closed(execution, self.now_ms + after_ms)

    @rule(kind=st.sampled_from(KINDS), namespace=st.sampled_from(NAMESPACES),
          workflow_id=st.sampled_from(WORKFLOW_IDS), request_number=st.integers(0, 3),
          result=st.sampled_from(RESULTS), after_ms=DUE_MS)
    def remember(self, kind: str, namespace: str, workflow_id: str, request_number: int,
                 result: Result, after_ms: int) -> None:
        key = (kind, namespace, workflow_id, f"req{request_number}")
        if key in self.model.requests:  # the core recalls first and never re-remembers
            assert self.archive.recall(key) == self.model.requests[key][0]
            return
        self.archive.remember(key, result, self.now_ms + after_ms)
        self.model.requests[key] = (result, self.now_ms + after_ms)

    @rule(advance_ms=st.sampled_from([0, 1, 5, 20, 60]), limit=st.integers(0, 4))
    def expire(self, advance_ms: int, limit: int) -> None:
        self.now_ms += advance_ms
        deleted = self.archive.expire(self.now_ms, limit)
        assert deleted == self.model.expire(self.now_ms, limit) <= limit
        self.deleted += deleted

    @rule()
    def restore(self) -> None:
        """What a snapshot restore does: rebuild from `contents`, indexes included."""
        self.archive = MemoryArchive.of(*self.archive.contents())

    @invariant()
    def reads_agree_with_the_model(self) -> None:
        archive, model = self.archive, self.model
        assert archive.closed_count() == len(model.runs)
        for number in range(10):
            run_id = f"run{number}"
            held = model.runs.get(run_id)
            assert archive.has_run(run_id) == (held is not None)
            assert archive.closed_run(run_id) == (None if held is None else held[1])
        for namespace in NAMESPACES:
            for workflow_id in WORKFLOW_IDS:
                key = (namespace, workflow_id)
                assert archive.latest_closed(key) == model.latest.get(key)
        for request_key, (result, _) in model.requests.items():
            assert archive.recall(request_key) == result
        assert archive.recall(("signal", "ns1", "a", "never")) is None
        assert archive.next_expiry_ms() == model.next_expiry_ms()

    @invariant()
    def contents_are_canonical_and_match_the_model(self) -> None:
        runs, latest, requests = self.archive.contents()
        assert [(r.execution.run_id, r.delete_at_ms, r.execution) for r in runs] == [
            (run_id, *self.model.runs[run_id]) for run_id in sorted(self.model.runs)]
        assert latest == sorted(self.model.latest.items())
        assert [(r.key, r.result, r.expires_at_ms) for r in requests] == [
            (key, *self.model.requests[key]) for key in sorted(self.model.requests)]
        rows = ([canonical_run(r) for r in runs] + [canonical_latest(k, v) for k, v in latest]
                + [canonical_request(r) for r in requests])
        assert list(self.archive.canonical_rows()) == rows


ArchiveMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow])
TestArchiveAgainstModel = ArchiveMachine.TestCase


# -- the whole core: retention reached, snapshots carry the archive --------------------------

# A walk's clock steps, plus steps that reach an hour, request-id retention and run retention.
LONG_TICKS_MS = (0, 100, 1_000, 10_000, 40_000, 3_600_000, limits.REQUEST_IDS_RETENTION_MS,
                 limits.DEFAULT_RETENTION_MS)
WALK_SEEDS = range(4)
WALK_STEPS = 400
SNAPSHOT_EVERY_STEPS = 20


def _archive(walk: Walk) -> MemoryArchive:
    assert isinstance(walk.state.archive, MemoryArchive)
    return walk.state.archive


@pytest.mark.parametrize("seed", WALK_SEEDS)
def test_snapshots_carry_the_archive_through_a_walk_that_reaches_retention(seed: int) -> None:
    walk = Walk(seed, ticks_ms=LONG_TICKS_MS)
    runs_deleted = requests_deleted = 0
    try:
        for index in range(WALK_STEPS):
            runs_before = _archive(walk).closed_count()
            requests_before = len(_archive(walk).contents()[2])
            walk.step()
            # Only expiry ever deletes archive rows, and a step adds at most a few.
            runs_deleted += _archive(walk).closed_count() < runs_before
            requests_deleted += len(_archive(walk).contents()[2]) < requests_before
            if index % SNAPSHOT_EVERY_STEPS == SNAPSHOT_EVERY_STEPS - 1:
                data = snapshot.to_bytes(walk.state)
                restored = snapshot.from_bytes(data)
                assert state_digest(restored) == state_digest(walk.state)
                assert isinstance(restored.archive, MemoryArchive)
                assert restored.archive.contents() == _archive(walk).contents()
                assert restored.next_wakeup_ms() == walk.state.next_wakeup_ms()
                assert snapshot.to_bytes(restored) == data
                # The replica goes on from the restored copy; the walk compares them again.
                assert state_digest(walk.replica) == state_digest(walk.state)
                walk.replica = snapshot.from_bytes(snapshot.to_bytes(walk.replica))
        assert state_digest(walk.replica) == state_digest(walk.state)
        assert runs_deleted and requests_deleted, "the walk never reached retention"
    except AssertionError:
        print(f"archive walk failed; reproduce with seed={seed}")
        raise
