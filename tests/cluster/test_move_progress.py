"""The rebalancer's per-round steps (cluster/move_progress.py): activate, promote, finish, abort.

Method: maps from `genesis_map` edited with `msgspec.structs.replace`; group reports as the
leaders would give them; the commands returned are checked by type and group, and then applied
with the real machine to show they are accepted in that state.
"""

from __future__ import annotations

import itertools

import msgspec

from raftflow.cluster.cluster_map import (
    AbortMove,
    ActivateMember,
    ClusterMap,
    FinishMove,
    MapApplied,
    Member,
    MemberState,
    PromoteLearner,
    genesis_map,
)
from raftflow.cluster.map_machine import apply_map_command
from raftflow.cluster.move_progress import CATCH_UP_LAG_MAX, GroupReport, progress_commands

NODES = [(f"node-{i}", f"http://127.0.0.1:{8000 + i}", "127.0.0.1", 9000 + i) for i in (1, 2, 3)]
_ids = itertools.count()


def _request_id() -> str:
    return f"r{next(_ids)}"


def _with_node4(state: MemberState) -> ClusterMap:
    cluster_map = genesis_map("test", 2, NODES)
    node4 = Member(id="node-4", http_address="http://127.0.0.1:8004", raft_host="127.0.0.1",
                   raft_port=9004, state=state, joined_epoch=1)
    return msgspec.structs.replace(cluster_map, members=(*cluster_map.members, node4), epoch=1)


def _with_shard0(cluster_map: ClusterMap, **changes: object) -> ClusterMap:
    shards = list(cluster_map.shards)
    shards[0] = msgspec.structs.replace(shards[0], **changes)
    return msgspec.structs.replace(cluster_map, shards=tuple(shards))


def _report(members: tuple[str, ...], lags: dict[str, int] | None = None) -> GroupReport:
    return GroupReport(leader=members[0], members=members, learner_lags=lags or {})


def _applies(cluster_map: ClusterMap, commands: list[object]) -> None:
    for command in commands:
        cluster_map, result = apply_map_command(cluster_map, command)  # type: ignore[arg-type]
        assert isinstance(result, MapApplied), result


def test_a_joining_member_is_activated_once_it_answers() -> None:
    cluster_map = _with_node4(MemberState.JOINING)
    assert progress_commands(cluster_map, {}, lambda n: False, _request_id) == []
    commands = progress_commands(cluster_map, {}, lambda n: True, _request_id)
    assert [type(c) for c in commands] == [ActivateMember]
    _applies(cluster_map, commands)


def test_a_learner_is_promoted_only_once_caught_up() -> None:
    cluster_map = _with_shard0(_with_node4(MemberState.ACTIVE), learner="node-4",
                               leaving="node-3")
    voters = cluster_map.shards[0].voters
    behind = {0: _report(voters, {"node-4": CATCH_UP_LAG_MAX + 1})}
    assert progress_commands(cluster_map, behind, lambda n: True, _request_id) == []
    assert progress_commands(cluster_map, {}, lambda n: True, _request_id) == []  # no report
    caught_up = {0: _report(voters, {"node-4": 3})}
    commands = progress_commands(cluster_map, caught_up, lambda n: True, _request_id)
    assert commands == [PromoteLearner(request_id=commands[0].request_id, group=0)]
    _applies(cluster_map, commands)


def test_a_move_finishes_only_once_the_leader_counts_the_promoted_node() -> None:
    base = _with_node4(MemberState.ACTIVE)
    old = base.shards[0].voters
    cluster_map = _with_shard0(base, voters=(*old, "node-4"), promoted="node-4", leaving=old[-1])
    assert progress_commands(cluster_map, {0: _report(old)}, lambda n: True, _request_id) == []
    commands = progress_commands(cluster_map, {0: _report((*old, "node-4"))}, lambda n: True,
                                 _request_id)
    assert [type(c) for c in commands] == [FinishMove]
    _applies(cluster_map, commands)


def test_a_move_whose_learner_was_removed_is_aborted() -> None:
    base = genesis_map("test", 2, NODES)
    cluster_map = _with_shard0(base, learner="node-9", leaving=base.shards[0].voters[-1])
    commands = progress_commands(cluster_map, {}, lambda n: True, _request_id)
    assert [type(c) for c in commands] == [AbortMove]


def test_a_learner_the_leader_already_counts_as_a_voter_is_promoted() -> None:
    """A move that raced a removal: Raft still counts the map's learner as a voter, so the
    leader reports no lag for it (it is no learner to Raft); it is promoted at once."""
    cluster_map = _with_shard0(_with_node4(MemberState.ACTIVE), learner="node-4",
                               leaving="node-3")
    voters = (*cluster_map.shards[0].voters, "node-4")
    commands = progress_commands(cluster_map, {0: _report(voters)}, lambda n: True, _request_id)
    assert [type(c) for c in commands] == [PromoteLearner]
    _applies(cluster_map, commands)
