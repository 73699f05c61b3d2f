"""The rebalancer's decisions: which map commands move the cluster one step forward (pure).

Theory of operation. Only the meta group's leader rebalances. Each round it looks at the map
and at what every group's leader reports of itself (its configuration, its learner's lag) and
proposes, in order:
1. `ActivateMember` for a joining member that answers its status: it is up and follows the map;
2. `PromoteLearner` for a group whose learner has caught up: its leader reports the learner
   within `CATCH_UP_LAG_MAX` entries of its last index (or already counts it as a voter);
3. `FinishMove` for a group whose promoted node the leader now counts as a voter: only then is
   the old replica removed, so the group never has fewer voters than the map asks for;
4. `AbortMove` for a move that can no longer finish (placement_plan.moves_to_abort: its
   learner is no longer an active member, or a shrink would now go below the replication
   factor): the planner then starts another move;
5. new moves from the planner (placement_plan.next_moves).
Every step is decided again from scratch next round, so a lost proposal, a meta leader change
or a crash mid-move just means the step is proposed again (the machine refuses a step that no
longer applies, and answers a repeated request id with its first answer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from raftflow.cluster.cluster_map import (
    AbortMove,
    ActivateMember,
    ClusterMap,
    FinishMove,
    MapCommand,
    MemberState,
    PromoteLearner,
)
from raftflow.cluster.placement_plan import moves_to_abort

# A learner this close to its leader's last index is caught up: promoting it costs the group
# at most a few entries of catch-up while it counts for the quorum.
CATCH_UP_LAG_MAX = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupReport:
    """A group as its current leader reports it."""

    leader: str
    members: tuple[str, ...]  # the Raft configuration's voters
    learner_lags: Mapping[str, int]  # entries each learner is behind the leader's last index


def progress_commands(cluster_map: ClusterMap, reports: Mapping[int, GroupReport],
                      alive: Callable[[str], bool],
                      new_request_id: Callable[[], str]) -> list[MapCommand]:
    """Steps 1-4 of the module docstring for this round (moves that can advance now)."""
    commands: list[MapCommand] = [
        ActivateMember(request_id=new_request_id(), node_id=m.id)
        for m in cluster_map.members if m.state == MemberState.JOINING and alive(m.id)]
    aborted = set(moves_to_abort(cluster_map))
    commands += [AbortMove(request_id=new_request_id(), group=g) for g in sorted(aborted)]
    for group, replicas in cluster_map.groups().items():
        report = reports.get(group)
        if group in aborted:
            continue
        if replicas.learner is not None:
            learner = replicas.learner
            if report is not None and (
                    learner in report.members
                    or report.learner_lags.get(learner, CATCH_UP_LAG_MAX + 1) <= CATCH_UP_LAG_MAX):
                # Caught up, or already a voter to Raft (a move that raced a removal).
                commands.append(PromoteLearner(request_id=new_request_id(), group=group))
        elif replicas.promoted is not None or replicas.leaving is not None:
            promoted = replicas.promoted
            if promoted is None or (report is not None and promoted in report.members):
                commands.append(FinishMove(request_id=new_request_id(), group=group))
    return commands
