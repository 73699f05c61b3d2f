"""Goal: the move commands (StartMove, PromoteLearner, FinishMove, AbortMove) take a group
through learner, promotion and removal as map_machine.py promises, and refuse, with the right
code and a message naming the group and node, every move that is malformed, conflicts with
another, or would leave a group below its replication factor.

Method: as tests/cluster/test_cluster_map.py (whose helpers these tests share): small maps
built by genesis and commands, invariants checked after every apply, refusals change nothing.
"""

from __future__ import annotations

from raftflow.cluster.cluster_map import (
    META_GROUP_ID,
    AbortMove,
    DrainMember,
    FinishMove,
    GroupReplicas,
    PromoteLearner,
    RefusalCode,
    StartMove,
)
from raftflow.cluster.placement_plan import moves_to_abort
from tests.cluster.test_cluster_map import admit, cluster, joined, ok, refused, rid

# --- moves ------------------------------------------------------------------------------------


def test_a_move_adds_a_learner_promotes_it_then_removes_the_leaving_voter() -> None:
    four = joined(cluster(), 4)
    voters = four.shards[5].voters
    started = ok(four, StartMove(request_id=rid(), group=5, add="node-4", remove=voters[0]))
    assert started.shards[5] == GroupReplicas(voters=voters, learner="node-4",
                                              leaving=voters[0])
    assert started.moves_in_progress() == 1
    refused(started, FinishMove(request_id=rid(), group=5), RefusalCode.CONFLICT, "promote")
    promoted = ok(started, PromoteLearner(request_id=rid(), group=5))
    assert promoted.shards[5] == GroupReplicas(voters=(*voters, "node-4"), leaving=voters[0],
                                               promoted="node-4")
    refused(promoted, AbortMove(request_id=rid(), group=5), RefusalCode.CONFLICT,
            "already promoted")
    finished = ok(promoted, FinishMove(request_id=rid(), group=5))
    assert finished.shards[5] == GroupReplicas(voters=(*voters[1:], "node-4"))
    assert finished.moves_in_progress() == 0 and finished.epoch == four.epoch + 3


def test_an_add_only_move_finishes_too_and_a_shrink_has_no_promotion() -> None:
    four = joined(cluster(), 4)
    meta = four.meta.voters
    grown = ok(ok(four, StartMove(request_id=rid(), group=META_GROUP_ID, add="node-4",
                                  remove=None)), PromoteLearner(request_id=rid(), group=-1))
    assert grown.meta.promoted == "node-4" and grown.moves_in_progress() == 1
    grown = ok(grown, FinishMove(request_id=rid(), group=-1))
    assert grown.meta == GroupReplicas(voters=(*meta, "node-4"))
    refused(grown, StartMove(request_id=rid(), group=-1, add=None, remove="node-2"),
            RefusalCode.UNSAFE, "replication factor 4")  # 4 active members: 4 meta voters
    grown = ok(grown, DrainMember(request_id=rid(), node_id="node-2"))
    shrinking = ok(grown, StartMove(request_id=rid(), group=-1, add=None, remove="node-2"))
    refused(shrinking, PromoteLearner(request_id=rid(), group=-1), RefusalCode.CONFLICT,
            "no learner")
    assert ok(shrinking, AbortMove(request_id=rid(), group=-1)).meta == grown.meta
    shrunk = ok(shrinking, FinishMove(request_id=rid(), group=-1))
    assert shrunk.meta.voters == ("node-1", "node-3", "node-4")


def test_abort_before_promotion_restores_the_group() -> None:
    four = joined(cluster(), 4)
    started = ok(four, StartMove(request_id=rid(), group=2, add="node-4",
                                 remove=four.shards[2].voters[1]))
    aborted = ok(started, AbortMove(request_id=rid(), group=2))
    assert aborted.shards[2] == four.shards[2]
    refused(aborted, AbortMove(request_id=rid(), group=2), RefusalCode.CONFLICT, "group 2")
    refused(aborted, FinishMove(request_id=rid(), group=2), RefusalCode.CONFLICT, "group 2")
    refused(aborted, PromoteLearner(request_id=rid(), group=2), RefusalCode.CONFLICT, "group 2")


def test_start_move_refusals() -> None:
    four = joined(ok(cluster(), admit(5)), 4)  # node-5 stays joining
    voters = four.shards[0].voters
    cases: list[tuple[StartMove, RefusalCode, str]] = [
        (StartMove(request_id=rid(), group=16, add="node-4", remove=None),
         RefusalCode.INVALID, "group 16"),
        (StartMove(request_id=rid(), group=0, add=None, remove=None),
         RefusalCode.INVALID, "group 0"),
        (StartMove(request_id=rid(), group=0, add="node-9", remove=None),
         RefusalCode.NOT_FOUND, "node-9"),
        (StartMove(request_id=rid(), group=0, add="node-5", remove=None),
         RefusalCode.CONFLICT, "joining"),
        (StartMove(request_id=rid(), group=0, add=voters[1], remove=voters[0]),
         RefusalCode.CONFLICT, "already a voter"),
        (StartMove(request_id=rid(), group=0, add="node-4", remove="node-4"),
         RefusalCode.INVALID, "group 0"),
        (StartMove(request_id=rid(), group=0, add=None, remove=voters[0]),
         RefusalCode.UNSAFE, "replication factor 3"),
        (StartMove(request_id=rid(), group=0, add="node-4", remove=None),
         RefusalCode.INVALID, "4 voters"),
        (StartMove(request_id=rid(), group=0, add="node-4", remove="node-9"),
         RefusalCode.CONFLICT, "node-9 is not a voter of group 0"),
    ]
    for command, code, word in cases:
        refused(four, command, code, word)
    one = ok(four, StartMove(request_id=rid(), group=0, add="node-4", remove=voters[0]))
    refused(one, StartMove(request_id=rid(), group=0, add="node-4", remove=voters[1]),
            RefusalCode.CONFLICT, "already has a move")
    two = ok(one, StartMove(request_id=rid(), group=1, add="node-4",
                            remove=four.shards[1].voters[0]))
    refused(two, StartMove(request_id=rid(), group=2, add="node-4",
                           remove=four.shards[2].voters[0]),
            RefusalCode.CONFLICT, "MOVES_CONCURRENT_MAX")


def test_promotion_of_a_learner_that_is_no_longer_active_is_refused() -> None:
    five = joined(cluster(), 4, 5)
    started = ok(five, StartMove(request_id=rid(), group=META_GROUP_ID, add="node-4",
                                 remove=None))
    draining = ok(started, DrainMember(request_id=rid(), node_id="node-4"))
    refused(draining, PromoteLearner(request_id=rid(), group=-1), RefusalCode.UNSAFE,
            "node-4", "abort")
    assert ok(draining, AbortMove(request_id=rid(), group=-1)).meta == five.meta


def test_move_commands_on_a_missing_group_are_invalid() -> None:
    for command in (PromoteLearner(request_id=rid(), group=99),
                    FinishMove(request_id=rid(), group=-2), AbortMove(request_id=rid(), group=16)):
        refused(cluster(), command, RefusalCode.INVALID, "does not exist")


def test_a_shrink_that_joins_made_unsafe_is_refused_at_finish_and_must_abort() -> None:
    five = ok(joined(cluster(), 4), DrainMember(request_id=rid(), node_id="node-1"))
    shrinking = ok(ok(five, StartMove(request_id=rid(), group=-1, add="node-4", remove=None)),
                   PromoteLearner(request_id=rid(), group=-1))
    shrinking = ok(ok(shrinking, FinishMove(request_id=rid(), group=-1)),
                   StartMove(request_id=rid(), group=-1, add=None, remove="node-1"))
    assert moves_to_abort(shrinking) == ()
    grown = joined(shrinking, 5)  # 4 active members again: the meta group needs 4 voters
    assert moves_to_abort(grown) == (META_GROUP_ID,)
    refused(grown, FinishMove(request_id=rid(), group=-1), RefusalCode.UNSAFE, "node-1",
            "replication factor 4", "abort")
    aborted = ok(grown, AbortMove(request_id=rid(), group=-1))
    assert aborted.meta == GroupReplicas(voters=("node-1", "node-2", "node-3", "node-4"))
