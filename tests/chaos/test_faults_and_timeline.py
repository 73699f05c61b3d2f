"""The fault schedule is a pure function of the seed; the load timeline buckets correctly."""

from __future__ import annotations

import pytest

from raftflow.chaos.faults import (
    FAULT_KINDS,
    HOLD_S,
    QUIET_S,
    FaultPlanError,
    parse_kinds,
    plan_faults,
)
from raftflow.chaos.timeline import Timeline, buckets


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    first = plan_faults(seed=7, duration_s=300, kinds=FAULT_KINDS, node_count=3)
    assert first == plan_faults(seed=7, duration_s=300, kinds=FAULT_KINDS, node_count=3)
    assert first != plan_faults(seed=8, duration_s=300, kinds=FAULT_KINDS, node_count=3)


@pytest.mark.parametrize("seed", range(20))
def test_faults_do_not_overlap_fit_the_run_and_respect_their_bounds(seed: int) -> None:
    duration_s = 240.0
    plan = plan_faults(seed=seed, duration_s=duration_s, kinds=FAULT_KINDS, node_count=5)
    assert plan, "a 4-minute run injects faults"
    end_s = 0.0
    for fault in plan:
        assert fault.start_s >= end_s + QUIET_S[0] - 0.01  # one at a time, with a quiet gap
        low, high = HOLD_S[fault.kind]
        assert low - 0.01 <= fault.hold_s <= high + 0.01
        end_s = fault.start_s + fault.hold_s
        assert all(0 <= n < 5 for n in fault.nodes)
        if fault.kind == "partition" and fault.variant == "split":
            assert len(fault.nodes) == 2  # the minority of 5
    assert end_s <= duration_s


def test_every_kind_is_injected_once_the_run_holds_a_round() -> None:
    plan = plan_faults(seed=3, duration_s=600, kinds=FAULT_KINDS, node_count=3)
    assert {f.kind for f in plan} == set(FAULT_KINDS)
    first_round = [f.kind for f in plan[:len(FAULT_KINDS)]]
    assert sorted(first_round) == sorted(FAULT_KINDS)


def test_only_the_requested_kinds_are_planned() -> None:
    plan = plan_faults(seed=1, duration_s=120, kinds=("kill", "latency"), node_count=3)
    assert plan and {f.kind for f in plan} <= {"kill", "latency"}


def test_kind_parsing_names_the_bad_kind() -> None:
    assert parse_kinds("all") == FAULT_KINDS
    assert parse_kinds("kill, pause,kill") == ("kill", "pause")
    with pytest.raises(FaultPlanError, match="explode"):
        parse_kinds("kill,explode")
    with pytest.raises(FaultPlanError):
        plan_faults(seed=1, duration_s=60, kinds=("kill",), node_count=2)


def test_timeline_buckets_count_and_take_percentiles() -> None:
    timeline = Timeline(start_acks_s=[0.1, 0.2, 1.5, 9.0], errors_s=[1.1],
                        completions=[(1.2, 0.100), (1.9, 0.300), (2.5, 1.0)])
    result = buckets(timeline, end_s=3.0)
    assert [b.start_s for b in result] == [0.0, 1.0, 2.0]
    assert [b.starts for b in result] == [2, 1, 0]  # 9.0 is past the end
    assert [b.errors for b in result] == [0, 1, 0]
    assert [b.completions for b in result] == [0, 2, 1]
    assert result[0].latency_p50_ms is None
    assert result[1].latency_p50_ms == 100.0 and result[1].latency_p99_ms == 300.0
    assert result[2].latency_p50_ms == 1000.0


def test_a_long_run_widens_its_buckets_to_stay_bounded() -> None:
    result = buckets(Timeline(start_acks_s=[5.0]), end_s=100_000.0)
    assert len(result) <= 10_000 and sum(b.starts for b in result) == 1
