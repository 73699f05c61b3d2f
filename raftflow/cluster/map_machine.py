"""The cluster map's state machine: `apply_map_command(map, command) -> (map, result)` (pure).

Theory of operation. Every replica of the meta group applies the same committed commands in the
same order to the same map, so this reads nothing but its arguments (no clock, no randomness).
Handlers compute, then commit: every refusal returns before the new map is built; a refusal is
a value (`MapRefused` with a code and a message for the operator), an exception means a bug.
Every change bumps the epoch by one; an idempotent repeat (admitting an admitted member,
activating an active one) changes nothing and answers with the current epoch.

Retries: the proposer may not learn whether its command committed (leadership lost, timeout),
so it retries with the same request id. The map remembers the last REQUEST_ANSWERS_MAX answers,
refusals included, and answers a repeated request id with its first answer, whatever happened
since: a command applies at most once.

Move lifecycle of one group (one move at most): StartMove sets learner (add) and/or leaving
(remove); PromoteLearner moves the learner into voters and records it as promoted; FinishMove
drops leaving from voters and ends the move; AbortMove undoes a move before its promotion.

Namespace commands (CreateNamespace, UpdateNamespace, AddSearchAttribute): namespace_machine.py.
"""

from __future__ import annotations

import re
from typing import assert_never

import msgspec

from raftflow.cluster import namespace_machine
from raftflow.cluster.cluster_map import (
    ADDRESS_LENGTH_MAX,
    META_GROUP_ID,
    META_VOTERS_MAX,
    REMOVED_IDS_MAX,
    REPLICATION_FACTOR_MAX,
    REQUEST_ANSWERS_MAX,
    REQUEST_ID_LENGTH_MAX,
    AbortMove,
    ActivateMember,
    AdmitMember,
    ClusterMap,
    DrainMember,
    FinishMove,
    GroupReplicas,
    MapAnswer,
    MapApplied,
    MapCommand,
    MapRefused,
    MapResult,
    Member,
    MemberState,
    PromoteLearner,
    RefusalCode,
    RemoveMember,
    StartMove,
)
from raftflow.cluster.config import ID_LENGTH_MAX, NODES_MAX
from raftflow.cluster.namespace_specs import AddSearchAttribute, CreateNamespace, UpdateNamespace
from raftflow.cluster.placement_plan import (
    MOVES_CONCURRENT_MAX,
    drain_refusal,
    group_size_target,
)

__all__ = ["MapCommand", "MapResult", "apply_map_command", "check_map_invariants"]

# The same rule as cluster.config's node ids: they name data directories and appear in URLs.
_NODE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PORT_MAX = 65535


def apply_map_command(cluster_map: ClusterMap, command: MapCommand) -> tuple[ClusterMap, MapResult]:
    """Apply one committed command. Raises only on a broken invariant (a bug)."""
    remembered = _remembered(cluster_map, command.request_id)
    if remembered is not None:
        return cluster_map, remembered
    if not 1 <= len(command.request_id) <= REQUEST_ID_LENGTH_MAX:
        return cluster_map, _refused(RefusalCode.INVALID, "a request id has 1 to "
                                     f"{REQUEST_ID_LENGTH_MAX} characters")
    outcome = _dispatch(cluster_map, command)
    changed: ClusterMap
    result: MapResult
    if isinstance(outcome, MapRefused):
        changed, result = cluster_map, outcome
    else:
        changed, result = outcome, MapApplied(epoch=outcome.epoch)
        assert outcome.epoch in (cluster_map.epoch, cluster_map.epoch + 1)
        assert (outcome.epoch == cluster_map.epoch) == (outcome is cluster_map)
    answers = (*cluster_map.answers, MapAnswer(request_id=command.request_id, result=result))
    return msgspec.structs.replace(changed, answers=answers[-REQUEST_ANSWERS_MAX:]), result


def _dispatch(cluster_map: ClusterMap, command: MapCommand) -> ClusterMap | MapRefused:
    match command:
        case AdmitMember():
            return on_admit_member(cluster_map, command)
        case ActivateMember():
            return on_activate_member(cluster_map, command)
        case DrainMember():
            return on_drain_member(cluster_map, command)
        case RemoveMember():
            return on_remove_member(cluster_map, command)
        case StartMove():
            return on_start_move(cluster_map, command)
        case PromoteLearner():
            return on_promote_learner(cluster_map, command)
        case FinishMove():
            return on_finish_move(cluster_map, command)
        case AbortMove():
            return on_abort_move(cluster_map, command)
        case CreateNamespace():
            return namespace_machine.on_create_namespace(cluster_map, command)
        case UpdateNamespace():
            return namespace_machine.on_update_namespace(cluster_map, command)
        case AddSearchAttribute():
            return namespace_machine.on_add_search_attribute(cluster_map, command)
        case _:
            assert_never(command)


def _remembered(cluster_map: ClusterMap, request_id: str) -> MapResult | None:
    return next((a.result for a in cluster_map.answers if a.request_id == request_id), None)


def _refused(code: RefusalCode, message: str) -> MapRefused:
    return MapRefused(code=code, message=message)


def _unknown(cluster_map: ClusterMap, node_id: str) -> MapRefused:
    gone = " (it was removed)" if node_id in cluster_map.removed else ""
    return _refused(RefusalCode.NOT_FOUND,
                    f"node {node_id} is not a member of cluster {cluster_map.cluster_id}{gone}")


def _with_member(cluster_map: ClusterMap, member: Member) -> ClusterMap:
    members = tuple(member if m.id == member.id else m for m in cluster_map.members)
    return msgspec.structs.replace(cluster_map, members=members, epoch=cluster_map.epoch + 1)


def _with_group(cluster_map: ClusterMap, group: int, replicas: GroupReplicas) -> ClusterMap:
    assert len(set(replicas.voters)) == len(replicas.voters), replicas
    if group == META_GROUP_ID:
        return msgspec.structs.replace(cluster_map, meta=replicas, epoch=cluster_map.epoch + 1)
    shards = (*cluster_map.shards[:group], replicas, *cluster_map.shards[group + 1:])
    return msgspec.structs.replace(cluster_map, shards=shards, epoch=cluster_map.epoch + 1)


# --- Members ------------------------------------------------------------------------------------


def _admission_error(command: AdmitMember) -> str | None:
    if not (len(command.node_id) <= ID_LENGTH_MAX and _NODE_ID_PATTERN.fullmatch(command.node_id)):
        return (f"node id {command.node_id!r} must be 1 to {ID_LENGTH_MAX} letters, digits, "
                "'.', '_' or '-', starting with a letter or digit")
    if not (command.http_address.startswith(("http://", "https://"))
            and len(command.http_address) <= ADDRESS_LENGTH_MAX):
        return f"node {command.node_id}: http address {command.http_address!r} is not a URL"
    if not (1 <= len(command.raft_host) <= ADDRESS_LENGTH_MAX
            and 1 <= command.raft_port <= _PORT_MAX):
        return (f"node {command.node_id}: raft address {command.raft_host}:{command.raft_port} "
                "is invalid")
    return None


def on_admit_member(cluster_map: ClusterMap, command: AdmitMember) -> ClusterMap | MapRefused:
    node_id = command.node_id
    error = _admission_error(command)
    if error is not None:
        return _refused(RefusalCode.INVALID, error)
    if node_id in cluster_map.removed:
        return _refused(RefusalCode.CONFLICT, f"node {node_id} was removed from cluster "
                        f"{cluster_map.cluster_id}; a removed id never rejoins: use a new id")
    existing = cluster_map.member(node_id)
    addresses = (command.http_address, command.raft_host, command.raft_port)
    if existing is not None:
        if addresses != (existing.http_address, existing.raft_host, existing.raft_port):
            return _refused(RefusalCode.CONFLICT, f"node {node_id} is already a member with "
                            f"other addresses ({existing.http_address}, raft "
                            f"{existing.raft_host}:{existing.raft_port})")
        if existing.state == MemberState.DRAINING:
            return _refused(RefusalCode.CONFLICT, f"node {node_id} is draining; remove it "
                            "before it joins again")
        return cluster_map  # a retried join: already admitted
    for other in cluster_map.members:
        if (other.http_address == command.http_address
                or (other.raft_host, other.raft_port) == (command.raft_host, command.raft_port)):
            return _refused(RefusalCode.CONFLICT, f"node {node_id}: its address is already "
                            f"used by member {other.id}; remove {other.id} first")
    holding = cluster_map.groups_holding(node_id)
    if holding:  # a force-removed id that fell out of `removed` but is still being replaced
        return _refused(RefusalCode.CONFLICT, f"node {node_id} is still listed in group(s) "
                        f"{list(holding)}; wait until moves replace it")
    if len(cluster_map.members) >= NODES_MAX:
        return _refused(RefusalCode.CONFLICT, f"cluster {cluster_map.cluster_id} has "
                        f"{NODES_MAX} members, the most it may have; cannot admit {node_id}")
    epoch = cluster_map.epoch + 1
    member = Member(id=node_id, http_address=command.http_address, raft_host=command.raft_host,
                    raft_port=command.raft_port, state=MemberState.JOINING, joined_epoch=epoch)
    assert all(m.joined_epoch < epoch for m in cluster_map.members)  # appending keeps the order
    return msgspec.structs.replace(cluster_map, members=(*cluster_map.members, member),
                                   epoch=epoch)


def on_activate_member(cluster_map: ClusterMap, command: ActivateMember) -> ClusterMap | MapRefused:
    member = cluster_map.member(command.node_id)
    if member is None:
        return _unknown(cluster_map, command.node_id)
    if member.state == MemberState.ACTIVE:
        return cluster_map
    if member.state == MemberState.DRAINING:
        return _refused(RefusalCode.CONFLICT, f"node {member.id} is draining: it cannot become "
                        "active again; remove it and join it anew")
    return _with_member(cluster_map, msgspec.structs.replace(member, state=MemberState.ACTIVE))


def on_drain_member(cluster_map: ClusterMap, command: DrainMember) -> ClusterMap | MapRefused:
    member = cluster_map.member(command.node_id)
    if member is None:
        return _unknown(cluster_map, command.node_id)
    if member.state == MemberState.DRAINING:
        return cluster_map
    refusal = drain_refusal(cluster_map, member.id)
    if refusal is not None:
        return _refused(RefusalCode.UNSAFE, refusal)
    return _with_member(cluster_map, msgspec.structs.replace(member, state=MemberState.DRAINING))


def on_remove_member(cluster_map: ClusterMap, command: RemoveMember) -> ClusterMap | MapRefused:
    node_id = command.node_id
    member = cluster_map.member(node_id)
    if member is None:
        if node_id in cluster_map.removed:
            return cluster_map  # a retried removal
        return _unknown(cluster_map, node_id)
    if not command.force:
        if member.state != MemberState.DRAINING:
            return _refused(RefusalCode.UNSAFE, f"node {node_id} is {member.state}: drain it "
                            "first (or remove it with force if it is dead)")
        holding = cluster_map.groups_holding(node_id)
        if holding:
            return _refused(RefusalCode.UNSAFE, f"node {node_id} still holds replicas of "
                            f"group(s) {list(holding)}; wait for the drain to finish (or "
                            "remove it with force if it is dead)")
    remaining = [m for m in cluster_map.members if m.id != node_id]
    if not any(m.state == MemberState.ACTIVE for m in remaining):
        return _refused(RefusalCode.UNSAFE, f"removing node {node_id} would leave cluster "
                        f"{cluster_map.cluster_id} without an active member")
    # A move whose learner was this node can never be promoted: it is aborted. Voters that
    # name it stay until moves replace them (the planner replaces gone voters first).
    groups = {group: (GroupReplicas(voters=replicas.voters)
                      if replicas.learner == node_id else replicas)
              for group, replicas in cluster_map.groups().items()}
    removed = (*cluster_map.removed, node_id)[-REMOVED_IDS_MAX:]
    shards = tuple(groups[shard] for shard in range(cluster_map.shard_count))
    return msgspec.structs.replace(cluster_map, members=tuple(remaining), removed=removed,
                                   shards=shards, meta=groups[META_GROUP_ID],
                                   epoch=cluster_map.epoch + 1)


# --- Moves --------------------------------------------------------------------------------------


def _group_error(cluster_map: ClusterMap, group: int) -> MapRefused | None:
    if group == META_GROUP_ID or 0 <= group < cluster_map.shard_count:
        return None
    return _refused(RefusalCode.INVALID, f"group {group} does not exist: shards are 0.."
                    f"{cluster_map.shard_count - 1}, the meta group is {META_GROUP_ID}")


def _start_error(cluster_map: ClusterMap, command: StartMove) -> MapRefused | None:
    group, add, remove = command.group, command.add, command.remove
    replicas = cluster_map.group(group)
    if add == remove:  # both None, or the same node
        return _refused(RefusalCode.INVALID, f"a move of group {group} adds a node, removes "
                        "a voter, or both (two different nodes)")
    if replicas.moving:
        return _refused(RefusalCode.CONFLICT, f"group {group} already has a move in progress")
    in_progress = cluster_map.moves_in_progress()
    if in_progress >= MOVES_CONCURRENT_MAX:
        return _refused(RefusalCode.CONFLICT, f"{in_progress} moves are in progress, the most "
                        f"allowed at once (MOVES_CONCURRENT_MAX); group {group} must wait")
    if add is not None:
        member = cluster_map.member(add)
        if member is None:
            return _unknown(cluster_map, add)
        if member.state != MemberState.ACTIVE:
            return _refused(RefusalCode.CONFLICT, f"node {add} is {member.state}: only an "
                            f"active member may join group {group}")
        if add in replicas.voters:
            return _refused(RefusalCode.CONFLICT, f"node {add} is already a voter of group {group}")
    if remove is not None and remove not in replicas.voters:
        return _refused(RefusalCode.CONFLICT, f"node {remove} is not a voter of group {group}")
    size = len(replicas.voters) + (add is not None) - (remove is not None)
    size_max = META_VOTERS_MAX if group == META_GROUP_ID else REPLICATION_FACTOR_MAX
    if size > size_max:
        return _refused(RefusalCode.INVALID, f"group {group} would have {size} voters, more "
                        f"than its maximum of {size_max}")
    size_min = min(len(replicas.voters), group_size_target(cluster_map, group))
    if size < max(1, size_min):
        return _refused(RefusalCode.UNSAFE, f"removing {remove} from group {group} would leave "
                        f"{size} voter(s), below its replication factor {size_min}")
    return None


def on_start_move(cluster_map: ClusterMap, command: StartMove) -> ClusterMap | MapRefused:
    refusal = _group_error(cluster_map, command.group) or _start_error(cluster_map, command)
    if refusal is not None:
        return refusal
    replicas = cluster_map.group(command.group)
    moving = msgspec.structs.replace(replicas, learner=command.add, leaving=command.remove)
    assert moving.moving and moving.learner not in moving.voters
    return _with_group(cluster_map, command.group, moving)


def on_promote_learner(cluster_map: ClusterMap, command: PromoteLearner) -> ClusterMap | MapRefused:
    group = command.group
    refusal = _group_error(cluster_map, group)
    if refusal is not None:
        return refusal
    replicas = cluster_map.group(group)
    learner = replicas.learner
    if learner is None:
        return _refused(RefusalCode.CONFLICT, f"group {group} has no learner to promote")
    member = cluster_map.member(learner)
    if member is None or member.state != MemberState.ACTIVE:
        return _refused(RefusalCode.UNSAFE, f"learner {learner} of group {group} is no longer "
                        "an active member; abort the move")
    promoted = GroupReplicas(voters=(*replicas.voters, learner), leaving=replicas.leaving,
                             promoted=learner)
    assert promoted.moving and len(promoted.voters) == len(replicas.voters) + 1
    return _with_group(cluster_map, group, promoted)


def on_finish_move(cluster_map: ClusterMap, command: FinishMove) -> ClusterMap | MapRefused:
    group = command.group
    refusal = _group_error(cluster_map, group)
    if refusal is not None:
        return refusal
    replicas = cluster_map.group(group)
    if replicas.learner is not None:
        return _refused(RefusalCode.CONFLICT, f"group {group}: learner {replicas.learner} is "
                        "not promoted yet; promote it (or abort the move) first")
    if not replicas.moving:
        return _refused(RefusalCode.CONFLICT, f"group {group} has no move in progress")
    voters = tuple(node_id for node_id in replicas.voters if node_id != replicas.leaving)
    assert voters, f"group {group} would have no voter: StartMove refuses that"
    # A shrink was checked against the replication factor when it started; members may have
    # joined since. Nothing was added to make up for it, so it must still be safe now.
    size_min = min(len(replicas.voters), group_size_target(cluster_map, group))
    if replicas.promoted is None and len(voters) < size_min:
        return _refused(RefusalCode.UNSAFE, f"removing {replicas.leaving} from group {group} "
                        f"would now leave {len(voters)} voter(s), below its replication "
                        f"factor {size_min}; abort the move")
    return _with_group(cluster_map, group, GroupReplicas(voters=voters))


def on_abort_move(cluster_map: ClusterMap, command: AbortMove) -> ClusterMap | MapRefused:
    group = command.group
    refusal = _group_error(cluster_map, group)
    if refusal is not None:
        return refusal
    replicas = cluster_map.group(group)
    if not replicas.moving:
        return _refused(RefusalCode.CONFLICT, f"group {group} has no move in progress")
    if replicas.promoted is not None:
        return _refused(RefusalCode.CONFLICT, f"group {group}: {replicas.promoted} is already "
                        "promoted; the move can only finish")
    return _with_group(cluster_map, group, GroupReplicas(voters=replicas.voters))


# --- Invariants ---------------------------------------------------------------------------------


def check_map_invariants(cluster_map: ClusterMap) -> None:
    """Assert what every reachable map satisfies (tests, simulator, debug flag)."""
    ids = [m.id for m in cluster_map.members]
    assert len(set(ids)) == len(ids), f"member ids repeat: {ids}"
    order = [(m.joined_epoch, m.id) for m in cluster_map.members]
    assert order == sorted(order), f"members are not ordered by (joined_epoch, id): {order}"
    assert all(m.joined_epoch <= cluster_map.epoch for m in cluster_map.members)
    assert any(m.state == MemberState.ACTIVE for m in cluster_map.members), "no active member"
    assert len(cluster_map.shards) == cluster_map.shard_count >= 1
    assert len(set(cluster_map.removed)) == len(cluster_map.removed) <= REMOVED_IDS_MAX
    assert not set(cluster_map.removed) & set(ids), "a removed id is still a member"
    request_ids = [a.request_id for a in cluster_map.answers]
    assert len(set(request_ids)) == len(request_ids) <= REQUEST_ANSWERS_MAX
    for group, replicas in cluster_map.groups().items():
        voters = replicas.voters
        assert voters and len(set(voters)) == len(voters), (group, replicas)
        assert replicas.learner is None or replicas.learner not in voters, (group, replicas)
        assert replicas.learner is None or replicas.learner in ids, (group, replicas)
        assert replicas.leaving is None or replicas.leaving in voters, (group, replicas)
        assert replicas.promoted is None or replicas.promoted in voters, (group, replicas)
        assert replicas.learner is None or replicas.promoted is None, (group, replicas)
        settled = len(voters) - (replicas.leaving is not None)
        assert settled <= (META_VOTERS_MAX if group == META_GROUP_ID
                           else REPLICATION_FACTOR_MAX), (group, replicas)
    assert cluster_map.moves_in_progress() <= MOVES_CONCURRENT_MAX
    namespace_machine.check_namespace_invariants(cluster_map)
