"""Goal: every map command does exactly what cluster_map.py and map_machine.py promise, and
refuses, as a value with the right code and a message naming the node or group, what it must.

Method: table-like unit tests over small maps built by `genesis_map` and by the commands
themselves; each apply is followed by `check_map_invariants`, and a refusal must leave the map
unchanged except for the remembered answer.
"""

from __future__ import annotations

from itertools import count

import msgspec
import pytest

from raftflow.cluster.cluster_map import (
    META_GROUP_ID,
    REMOVED_IDS_MAX,
    REQUEST_ANSWERS_MAX,
    AbortMove,
    ActivateMember,
    AdmitMember,
    ClusterMap,
    DrainMember,
    FinishMove,
    GroupReplicas,
    MapApplied,
    MapCommand,
    MapRefused,
    MemberState,
    PromoteLearner,
    RefusalCode,
    RemoveMember,
    StartMove,
    decode_map,
    decode_map_command,
    encode_map,
    encode_map_command,
    genesis_map,
)
from raftflow.cluster.config import NODES_MAX
from raftflow.cluster.map_machine import apply_map_command, check_map_invariants
from raftflow.cluster.ring import place_replicas

_request_ids = count()


def rid() -> str:
    return f"r{next(_request_ids)}"


def node(index: int) -> tuple[str, str, str, int]:
    return (f"node-{index}", f"http://127.0.0.1:{8000 + index}", "127.0.0.1", 9000 + index)


def cluster(nodes: int = 3, shard_count: int = 16) -> ClusterMap:
    genesis = genesis_map("c1", shard_count, [node(i) for i in range(1, nodes + 1)])
    check_map_invariants(genesis)
    return genesis


def admit(index: int) -> AdmitMember:
    node_id, http_address, raft_host, raft_port = node(index)
    return AdmitMember(request_id=rid(), node_id=node_id, http_address=http_address,
                       raft_host=raft_host, raft_port=raft_port)


def ok(cluster_map: ClusterMap, command: MapCommand) -> ClusterMap:
    after, result = apply_map_command(cluster_map, command)
    check_map_invariants(after)
    assert isinstance(result, MapApplied), result
    assert result.epoch == after.epoch
    return after


def refused(cluster_map: ClusterMap, command: MapCommand, code: RefusalCode,
            *words: str) -> MapRefused:
    after, result = apply_map_command(cluster_map, command)
    check_map_invariants(after)
    assert isinstance(result, MapRefused), result
    assert result.code == code, result
    for word in words:
        assert word in result.message, (word, result.message)
    assert msgspec.structs.replace(after, answers=cluster_map.answers) == cluster_map
    return result


def joined(cluster_map: ClusterMap, *indexes: int) -> ClusterMap:
    for index in indexes:
        cluster_map = ok(ok(cluster_map, admit(index)),
                         ActivateMember(request_id=rid(), node_id=f"node-{index}"))
    return cluster_map


# --- genesis and codec ------------------------------------------------------------------------


def test_genesis_places_shards_as_nodes_did_before_the_map() -> None:
    genesis = genesis_map("c1", 16, [node(3), node(1), node(2)])
    placement = place_replicas(["node-3", "node-1", "node-2"], 16, 3)
    assert [g.voters for g in genesis.shards] == [placement[s] for s in range(16)]
    assert [m.id for m in genesis.members] == ["node-1", "node-2", "node-3"]
    assert all(m.state == MemberState.ACTIVE and m.joined_epoch == 0 for m in genesis.members)
    assert genesis.meta.voters == ("node-3", "node-1", "node-2")  # configuration order
    assert genesis.epoch == 0 and genesis.moves_in_progress() == 0


def test_genesis_meta_has_at_most_five_voters() -> None:
    genesis = cluster(nodes=7)
    assert genesis.meta.voters == tuple(f"node-{i}" for i in range(1, 6))


def test_genesis_is_the_same_whichever_node_computes_it() -> None:
    nodes = [node(i) for i in range(1, 6)]
    assert genesis_map("c1", 8, nodes) == genesis_map("c1", 8, nodes)


def test_map_and_commands_round_trip_through_msgpack_and_json() -> None:
    cluster_map = ok(joined(cluster(), 4), StartMove(request_id=rid(), group=META_GROUP_ID,
                                                     add="node-4", remove="node-3"))
    assert decode_map(encode_map(cluster_map)) == cluster_map
    assert msgspec.json.decode(msgspec.json.encode(cluster_map), type=ClusterMap) == cluster_map
    commands: list[MapCommand] = [
        admit(9), ActivateMember(request_id="a", node_id="n"), DrainMember(request_id="b",
                                                                           node_id="n"),
        RemoveMember(request_id="c", node_id="n", force=True),
        StartMove(request_id="d", group=3, add="x", remove=None),
        PromoteLearner(request_id="e", group=-1), FinishMove(request_id="f", group=0),
        AbortMove(request_id="g", group=1),
    ]
    for command in commands:
        assert decode_map_command(encode_map_command(command)) == command
    assert msgspec.json.decode(msgspec.json.encode(commands[0]))["type"] == "AdmitMember"


def test_unknown_fields_are_refused_by_the_decoder() -> None:
    raw = msgspec.msgpack.encode({"type": "DrainMember", "request_id": "r", "node_id": "n",
                                  "urgent": True})
    with pytest.raises(msgspec.ValidationError):
        decode_map_command(raw)


# --- request ids ------------------------------------------------------------------------------


def test_a_retried_request_gets_its_first_answer_whatever_happened_since() -> None:
    genesis = cluster()
    drain = DrainMember(request_id="drain-1", node_id="node-1")
    first, answer = apply_map_command(genesis, drain)
    assert isinstance(answer, MapRefused)  # 3 nodes cannot lose one
    later = joined(first, 4)
    again, second = apply_map_command(later, drain)
    assert second == answer and again == later
    applied = ok(later, DrainMember(request_id="drain-2", node_id="node-1"))
    assert applied.member("node-1").state == MemberState.DRAINING  # type: ignore[union-attr]


def test_answers_are_bounded_oldest_forgotten() -> None:
    cluster_map = cluster()
    for index in range(REQUEST_ANSWERS_MAX + 5):
        cluster_map = ok(cluster_map, ActivateMember(request_id=f"x{index}", node_id="node-1"))
    assert len(cluster_map.answers) == REQUEST_ANSWERS_MAX
    assert cluster_map.answers[0].request_id == "x5"
    assert cluster_map.epoch == 0  # activating an active member changes nothing


def test_an_empty_request_id_is_refused() -> None:
    refused(cluster(), ActivateMember(request_id="", node_id="node-1"), RefusalCode.INVALID)


# --- AdmitMember ------------------------------------------------------------------------------


def test_admit_adds_a_joining_member_and_bumps_the_epoch() -> None:
    after = ok(cluster(), admit(4))
    member = after.member("node-4")
    assert member is not None and member.state == MemberState.JOINING
    assert member.joined_epoch == after.epoch == 1
    assert member.raft_port == 9004 and member.http_address == "http://127.0.0.1:8004"


def test_a_retried_join_is_a_no_op_success() -> None:
    once = ok(cluster(), admit(4))
    again = ok(once, admit(4))
    assert again.epoch == once.epoch and again.members == once.members
    active = ok(once, ActivateMember(request_id=rid(), node_id="node-4"))
    assert ok(active, admit(4)).epoch == active.epoch


@pytest.mark.parametrize(("command", "code", "word"), [
    (AdmitMember(request_id="1", node_id="node-1", http_address="http://other:1",
                 raft_host="127.0.0.1", raft_port=9001), RefusalCode.CONFLICT, "other addresses"),
    (AdmitMember(request_id="2", node_id="node-9", http_address="http://127.0.0.1:8001",
                 raft_host="h", raft_port=1), RefusalCode.CONFLICT, "node-1"),
    (AdmitMember(request_id="3", node_id="node-9", http_address="http://h:1",
                 raft_host="127.0.0.1", raft_port=9002), RefusalCode.CONFLICT, "node-2"),
    (AdmitMember(request_id="4", node_id="bad id", http_address="http://h:1",
                 raft_host="h", raft_port=1), RefusalCode.INVALID, "bad id"),
    (AdmitMember(request_id="5", node_id="n", http_address="h:1",
                 raft_host="h", raft_port=1), RefusalCode.INVALID, "not a URL"),
    (AdmitMember(request_id="6", node_id="n", http_address="http://h:1",
                 raft_host="h", raft_port=70000), RefusalCode.INVALID, "raft address"),
])
def test_admit_refusals(command: AdmitMember, code: RefusalCode, word: str) -> None:
    refused(cluster(), command, code, word)


def test_a_removed_id_never_rejoins() -> None:
    after = ok(cluster(), RemoveMember(request_id=rid(), node_id="node-3", force=True))
    refused(after, admit(3), RefusalCode.CONFLICT, "node-3", "removed")


def test_a_draining_member_cannot_join_again() -> None:
    draining = ok(joined(cluster(), 4), DrainMember(request_id=rid(), node_id="node-4"))
    refused(draining, admit(4), RefusalCode.CONFLICT, "node-4", "draining")


def test_an_id_still_listed_in_a_group_is_refused_even_if_forgotten() -> None:
    gone = ok(cluster(), RemoveMember(request_id=rid(), node_id="node-3", force=True))
    forgotten = msgspec.structs.replace(gone, removed=())
    refused(forgotten, admit(3), RefusalCode.CONFLICT, "node-3", "still listed")


def test_admission_is_bounded_by_nodes_max() -> None:
    full = cluster(nodes=NODES_MAX)
    refused(full, admit(NODES_MAX + 1), RefusalCode.CONFLICT, str(NODES_MAX))


# --- ActivateMember and DrainMember -----------------------------------------------------------


def test_activate_is_idempotent_and_refuses_unknown_or_draining() -> None:
    after = ok(ok(cluster(), admit(4)), ActivateMember(request_id=rid(), node_id="node-4"))
    assert after.member("node-4").state == MemberState.ACTIVE  # type: ignore[union-attr]
    assert ok(after, ActivateMember(request_id=rid(), node_id="node-4")).epoch == after.epoch
    refused(after, ActivateMember(request_id=rid(), node_id="node-9"), RefusalCode.NOT_FOUND,
            "node-9")
    draining = ok(after, DrainMember(request_id=rid(), node_id="node-4"))
    refused(draining, ActivateMember(request_id=rid(), node_id="node-4"), RefusalCode.CONFLICT,
            "draining")


def test_drain_is_refused_when_the_others_cannot_hold_the_replication_factor() -> None:
    result = refused(cluster(), DrainMember(request_id=rid(), node_id="node-1"),
                     RefusalCode.UNSAFE, "node-1", "replication factor 3", "node-2, node-3")
    assert "join another node" in result.message
    refused(cluster(nodes=1), DrainMember(request_id=rid(), node_id="node-1"),
            RefusalCode.UNSAFE, "replication factor 1")
    refused(cluster(), DrainMember(request_id=rid(), node_id="node-7"), RefusalCode.NOT_FOUND)


def test_drain_of_one_of_four_is_allowed_and_idempotent_but_not_a_second() -> None:
    four = joined(cluster(), 4)
    draining = ok(four, DrainMember(request_id=rid(), node_id="node-1"))
    assert draining.member("node-1").state == MemberState.DRAINING  # type: ignore[union-attr]
    assert draining.epoch == four.epoch + 1
    assert ok(draining, DrainMember(request_id=rid(), node_id="node-1")) .epoch == draining.epoch
    refused(draining, DrainMember(request_id=rid(), node_id="node-2"), RefusalCode.UNSAFE,
            "node-2")


def test_a_joining_member_may_drain_without_the_safety_rule() -> None:
    after = ok(ok(cluster(nodes=1), admit(2)), DrainMember(request_id=rid(), node_id="node-2"))
    assert after.member("node-2").state == MemberState.DRAINING  # type: ignore[union-attr]


# --- RemoveMember -----------------------------------------------------------------------------


def test_remove_without_force_needs_a_drained_member_holding_nothing() -> None:
    four = joined(cluster(), 4)
    refused(four, RemoveMember(request_id=rid(), node_id="node-4"), RefusalCode.UNSAFE,
            "node-4", "drain it first")
    draining = ok(four, DrainMember(request_id=rid(), node_id="node-1"))
    refused(draining, RemoveMember(request_id=rid(), node_id="node-1"), RefusalCode.UNSAFE,
            "node-1", "still holds")
    refused(draining, RemoveMember(request_id=rid(), node_id="node-8"), RefusalCode.NOT_FOUND)
    empty = ok(four, DrainMember(request_id=rid(), node_id="node-4"))  # joined, holds nothing
    removed = ok(empty, RemoveMember(request_id=rid(), node_id="node-4"))
    assert removed.member("node-4") is None and removed.removed == ("node-4",)
    assert ok(removed, RemoveMember(request_id=rid(), node_id="node-4")).epoch == removed.epoch


def test_force_remove_keeps_its_voters_and_aborts_its_learner_moves() -> None:
    four = joined(cluster(), 4)
    moving = ok(four, StartMove(request_id=rid(), group=0, add="node-4", remove="node-1"))
    gone = ok(moving, RemoveMember(request_id=rid(), node_id="node-4", force=True))
    assert gone.shards[0] == GroupReplicas(voters=four.shards[0].voters)
    gone = ok(gone, RemoveMember(request_id=rid(), node_id="node-1", force=True))
    assert "node-1" in gone.shards[0].voters and "node-1" in gone.meta.voters
    assert gone.removed == ("node-4", "node-1")


def test_force_remove_of_the_last_active_member_is_refused() -> None:
    refused(cluster(nodes=1), RemoveMember(request_id=rid(), node_id="node-1", force=True),
            RefusalCode.UNSAFE, "without an active member")


def test_removed_ids_are_bounded() -> None:
    cluster_map = cluster(nodes=1)
    removed = msgspec.structs.replace(
        cluster_map, removed=tuple(f"old-{i}" for i in range(REMOVED_IDS_MAX)))
    after = ok(ok(removed, admit(2)), RemoveMember(request_id=rid(), node_id="node-2",
                                                   force=True))
    assert len(after.removed) == REMOVED_IDS_MAX and after.removed[-1] == "node-2"
    assert "old-0" not in after.removed
