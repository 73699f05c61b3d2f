"""Goal: no sequence of map commands breaks the map's invariants, drops a group below its
replication factor, or makes the rebalancer's plan unreachable.

Method: a hypothesis RuleBasedStateMachine founds a cluster of 1 to 4 nodes and drives random
admits, activations, drains, removals (forced or not), planned and random moves, promotions,
finishes, aborts, namespace creations and updates (checked against a model of the namespaces)
and retried request ids. After every step: `check_map_invariants`, the codec
round trip, and the rules every answer obeys (a refusal changes nothing but the remembered
answer, a success bumps the epoch by at most one, a retry gets its first answer). A rule runs
the plan to its end and checks that the placement then equals the target.
"""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from raftflow.cluster.cluster_map import (
    META_GROUP_ID,
    AbortMove,
    ActivateMember,
    AdmitMember,
    ClusterMap,
    DrainMember,
    FinishMove,
    MapApplied,
    MapCommand,
    MapRefused,
    MapResult,
    MemberState,
    PromoteLearner,
    RemoveMember,
    StartMove,
    decode_map,
    encode_map,
    genesis_map,
)
from raftflow.cluster.map_machine import apply_map_command, check_map_invariants
from raftflow.cluster.namespace_specs import (
    DEFAULT_NAMESPACE_SPEC,
    CreateNamespace,
    Namespace,
    UpdateNamespace,
    all_namespaces,
)
from raftflow.cluster.placement_plan import moves_to_abort, next_moves
from tests.cluster.test_placement_plan import assert_converged, node, rebalance, voters_floor

SHARD_COUNT = 8
NODE_INDEXES = st.integers(1, 8)
GROUPS = st.integers(META_GROUP_ID - 1, SHARD_COUNT)  # one invalid id on each side
NAMESPACE_NAMES = st.sampled_from(["default", "shop", "billing", "-bad"])
RETENTIONS_MS = st.sampled_from([0, 1_000, 20_000, 3 * 24 * 3_600_000])
DESCRIPTIONS = st.sampled_from(["", "d"])


class MapCommands(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.map: ClusterMap | None = None
        self.sent: list[tuple[MapCommand, MapResult]] = []
        self.next_request = 0
        # What the namespaces should be: by name, `default` included.
        self.namespaces = {DEFAULT_NAMESPACE_SPEC.name: DEFAULT_NAMESPACE_SPEC}

    def _request_id(self) -> str:
        self.next_request += 1
        return f"req-{self.next_request}"

    def _apply(self, command: MapCommand) -> MapResult:
        before = self.map
        assert before is not None
        after, result = apply_map_command(before, command)
        check_map_invariants(after)
        if isinstance(result, MapRefused):
            assert msgspec.structs.replace(after, answers=before.answers) == before
            assert result.message
        else:
            assert result.epoch == after.epoch in (before.epoch, before.epoch + 1)
            for group, replicas in after.groups().items():
                assert len(replicas.voters) >= voters_floor(before, after, group), (
                    command, before.group(group), replicas)
        self.map = after
        self.sent.append((command, result))
        event(f"{type(command).__name__}: {type(result).__name__}")
        return result

    @initialize(founders=st.integers(1, 4))
    def found(self, founders: int) -> None:
        self.map = genesis_map("c1", SHARD_COUNT, [node(i) for i in range(1, founders + 1)])
        check_map_invariants(self.map)

    @rule(index=NODE_INDEXES, moved=st.booleans())
    def admit(self, index: int, moved: bool) -> None:
        node_id, http_address, raft_host, raft_port = node(index)
        self._apply(AdmitMember(request_id=self._request_id(), node_id=node_id,
                                http_address=http_address, raft_host=raft_host,
                                raft_port=raft_port + 100 * moved))

    @rule(index=NODE_INDEXES)
    def join(self, index: int) -> None:
        self.admit(index, moved=False)
        self.activate(index)

    @rule(index=NODE_INDEXES)
    def activate(self, index: int) -> None:
        self._apply(ActivateMember(request_id=self._request_id(), node_id=f"node-{index}"))

    @rule(index=NODE_INDEXES)
    def drain(self, index: int) -> None:
        self._apply(DrainMember(request_id=self._request_id(), node_id=f"node-{index}"))

    @rule(index=NODE_INDEXES, force=st.booleans())
    def remove(self, index: int, force: bool) -> None:
        self._apply(RemoveMember(request_id=self._request_id(), node_id=f"node-{index}",
                                 force=force))

    @rule()
    def start_planned_moves(self) -> None:
        assert self.map is not None
        for move in next_moves(self.map):
            result = self._apply(move.start_move(self._request_id()))
            assert isinstance(result, MapApplied), (move, result)

    @rule(group=GROUPS, add=st.none() | NODE_INDEXES, remove=st.none() | NODE_INDEXES)
    def start_any_move(self, group: int, add: int | None, remove: int | None) -> None:
        self._apply(StartMove(request_id=self._request_id(), group=group,
                              add=None if add is None else f"node-{add}",
                              remove=None if remove is None else f"node-{remove}"))

    @rule()
    def advance_moves(self) -> None:
        """One step of every move in progress, as the rebalancer takes them."""
        assert self.map is not None
        for group in moves_to_abort(self.map):
            self._apply(AbortMove(request_id=self._request_id(), group=group))
        for group, replicas in self.map.groups().items():
            step = FinishMove if replicas.learner is None else PromoteLearner
            if replicas.moving:
                self._apply(step(request_id=self._request_id(), group=group))

    @rule(group=GROUPS, step=st.sampled_from([PromoteLearner, FinishMove, AbortMove]))
    def step_any_group(self, group: int,
                       step: type[PromoteLearner | FinishMove | AbortMove]) -> None:
        self._apply(step(request_id=self._request_id(), group=group))

    @rule(data=st.data(), step=st.sampled_from([PromoteLearner, FinishMove, AbortMove]))
    def step_a_move_in_progress(self, data: st.DataObject,
                                step: type[PromoteLearner | FinishMove | AbortMove]) -> None:
        assert self.map is not None
        moving = [g for g, replicas in self.map.groups().items() if replicas.moving]
        if moving:
            group = data.draw(st.sampled_from(moving))
            self._apply(step(request_id=self._request_id(), group=group))

    @rule(name=NAMESPACE_NAMES, retention_ms=RETENTIONS_MS, description=DESCRIPTIONS)
    def create_namespace(self, name: str, retention_ms: int, description: str) -> None:
        wanted = Namespace(name=name, retention_ms=retention_ms, description=description)
        result = self._apply(CreateNamespace(request_id=self._request_id(), name=name,
                                             retention_ms=retention_ms, description=description))
        valid = retention_ms > 0 and not name.startswith("-")
        existing = self.namespaces.get(name)
        assert isinstance(result, MapApplied) == (valid and existing in (None, wanted)), result
        if isinstance(result, MapApplied):
            self.namespaces[name] = wanted

    @rule(name=NAMESPACE_NAMES, retention_ms=st.none() | RETENTIONS_MS,
          description=st.none() | DESCRIPTIONS)
    def update_namespace(self, name: str, retention_ms: int | None,
                         description: str | None) -> None:
        result = self._apply(UpdateNamespace(request_id=self._request_id(), name=name,
                                             retention_ms=retention_ms, description=description))
        existing = self.namespaces.get(name)
        assert isinstance(result, MapApplied) == (existing is not None and retention_ms != 0)
        if existing is not None and isinstance(result, MapApplied):
            self.namespaces[name] = msgspec.structs.replace(
                existing,
                retention_ms=existing.retention_ms if retention_ms is None else retention_ms,
                description=existing.description if description is None else description)

    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        if not self.sent:
            return
        command, first = data.draw(st.sampled_from(self.sent))
        assert self.map is not None
        after, again = apply_map_command(self.map, command)
        assert again == first and after == self.map

    @rule()
    def rebalance_to_the_end(self) -> None:
        assert self.map is not None
        # The rebalancer activates a joining member as soon as it answers, and plans no
        # shrink until then (the replication factor is about to grow back): activate them.
        for member in self.map.members:
            if member.state == MemberState.JOINING:
                self._apply(ActivateMember(request_id=self._request_id(), node_id=member.id))
        self.map = rebalance(self.map)
        assert_converged(self.map)
        for replicas in self.map.groups().values():
            for node_id in replicas.voters:
                member = self.map.member(node_id)
                assert member is not None and member.state == MemberState.ACTIVE

    @invariant()
    def namespaces_match_the_model(self) -> None:
        if self.map is not None:
            assert all_namespaces(self.map.namespaces) == tuple(
                self.namespaces[name] for name in sorted(self.namespaces))

    @invariant()
    def the_map_survives_the_codec(self) -> None:
        if self.map is not None:
            assert decode_map(encode_map(self.map)) == self.map


TestMapCommands = MapCommands.TestCase
TestMapCommands.settings = settings(
    max_examples=200, stateful_step_count=50, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
