"""pysyncobj's Transport for one group over the node's shared peer network, with learners.

Theory of operation. pysyncobj knows two kinds of peers: voters (`otherNodes`, told apart by
`_onNodeConnected/_onNodeDisconnected`) and read-only nodes (`_onReadonlyNodeConnected/
_onReadonlyNodeDisconnected`): the leader sends AppendEntries (and snapshots) to
`otherNodes | readonlyNodes` but counts only `otherNodes` for commit and quorum. A *learner* of
ours is a read-only node that pysyncobj sees "connected" while its peer link is up.

pysyncobj keeps one nextIndex/matchIndex entry per peer and its read-only callbacks set (on
connect) and pop (on disconnect) them. A learner that becomes a voter is added by
`__doChangeCluster`, which sets its entries as a voter's; popping them afterwards would crash
the leader's commit loop (a KeyError on a voter's matchIndex). So this class keeps one
invariant: a node is announced as read-only (`_linked`) only while it is not a voter
(`_nodes`), and a voter is never passed to `_onReadonlyNodeDisconnected`:
- `addNode` (a learner became a voter) drops it from pysyncobj's read-only set *without* the
  disconnect callback (`discard_readonly`, given by the group), keeping its indexes;
- `dropNode` (a voter left, or an uncommitted add was rolled back) re-announces it as a
  learner if it still is one, which recreates the indexes `__doChangeCluster` popped.
From a learner only `next_node_idx` replies are delivered: a learner never campaigns, and even
if one did, its vote requests must not raise a voter's term (no disruption).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pysyncobj.node import Node
from pysyncobj.transport import Transport

from raftflow.raftlog.group_host import GroupHost
from raftflow.raftlog.journal import GroupJournal
from raftflow.raftlog.normalize import normalize_append_entries

_LEARNER_MESSAGE_TYPES = frozenset({"next_node_idx"})  # what a follower sends its leader


class GroupTransport(Transport):  # type: ignore[misc]
    """pysyncobj Transport for one group over the node's shared peer network."""

    def __init__(self, host: GroupHost, group: int, other_nodes: list[Node]) -> None:
        super().__init__(None, None, other_nodes)
        self._host = host
        self._group = group
        self._nodes: dict[str, Node] = {n.id: n for n in other_nodes}  # pysyncobj's otherNodes
        self._learners: dict[str, Node] = {}  # non-voting replicas this replica knows of
        self._linked: set[str] = set()  # learners announced to pysyncobj as connected
        self.journal: GroupJournal | None = None  # set once the group's journal exists
        self.current_term: Callable[[], int] = lambda: 0
        self.discard_readonly: Callable[[Node], None] = lambda node: None  # set by the group
        self.normalize = True  # tests turn it off to show the bug it closes

    def tryGetReady(self) -> None:  # noqa: N802
        pass

    @property
    def ready(self) -> bool:
        return True

    def waitReady(self) -> None:  # noqa: N802
        pass

    def addNode(self, node: Node) -> None:  # noqa: N802
        # pysyncobj has already made it a voter with fresh indexes: keep them (see above).
        if node.id in self._linked:
            self._linked.discard(node.id)
            self.discard_readonly(node)
        self._nodes[node.id] = node
        if self._host.peer_is_up(node.id):
            self._onNodeConnected(node)

    def dropNode(self, node: Node) -> None:  # noqa: N802
        self._nodes.pop(node.id, None)
        learner = self._learners.get(node.id)
        if learner is not None:
            self._link(learner)  # still a learner: the leader goes on replicating to it

    def send(self, node: Node, message: dict[str, Any]) -> bool:
        self._host.enqueue(node.id, self._group, message)
        return True

    def destroy(self) -> None:
        pass

    # -- learners ------------------------------------------------------------------------------

    @property
    def learner_ids(self) -> tuple[str, ...]:
        """Known learners that are not voters (a promoted one stays listed until unset)."""
        return tuple(sorted(i for i in self._learners if i not in self._nodes))

    def set_learners(self, node_ids: Iterable[str]) -> None:
        wanted = {i for i in node_ids if i != self._host.node_id}
        for gone in [i for i in self._learners if i not in wanted]:
            self._unlink(self._learners.pop(gone))
        for new in sorted(wanted - set(self._learners)):
            node = Node(new)
            self._learners[new] = node
            self._link(node)

    def _link(self, node: Node) -> None:
        if (node.id in self._nodes or node.id in self._linked
                or not self._host.peer_is_up(node.id)):
            return
        self._linked.add(node.id)
        self._onReadonlyNodeConnected(node)

    def _unlink(self, node: Node) -> None:
        if node.id in self._linked:
            assert node.id not in self._nodes, node.id  # never pop a voter's indexes
            self._linked.discard(node.id)
            self._onReadonlyNodeDisconnected(node)

    # -- driven by the host --------------------------------------------------------------------

    def sync_connections(self) -> None:
        for node_id, node in self._nodes.items():
            if self._host.peer_is_up(node_id):
                self._onNodeConnected(node)
        for learner in self._learners.values():
            self._link(learner)

    def peer_changed(self, node_id: str, up: bool) -> None:
        node = self._nodes.get(node_id)
        if node is not None:
            (self._onNodeConnected if up else self._onNodeDisconnected)(node)
            return
        learner = self._learners.get(node_id)
        if learner is not None:
            (self._link if up else self._unlink)(learner)

    def deliver(self, node_id: str, message: dict[str, Any]) -> None:
        node = self._nodes.get(node_id)
        if node is None:
            if node_id in self._linked and message.get("type") in _LEARNER_MESSAGE_TYPES:
                self._onMessageReceived(self._learners[node_id], message)
                return
            if message.get("type") != "append_entries":
                return  # not a member of this group (yet, or any more)
            # A leader this replica does not know yet: the group's configuration changed while
            # it lagged (a learner created from an older map waits for the log of a leader
            # added since; found by a chaos run: such a learner never caught up). Raft accepts
            # a leader's entries by term alone: a node that is not the leader of a term at
            # least ours is refused by pysyncobj's own term check, and a removed node cannot
            # win an election (its vote requests are dropped above).
            node = Node(node_id)
        journal = self.journal
        if self.normalize and journal is not None:
            normalized = normalize_append_entries(
                message,
                current_term=self.current_term(),
                commit_index=journal.getRaftCommitIndex(),
                first_index=journal.first_index,
                last_index=journal.last_index,
                term_at=journal.term_at,
            )
            message = normalized.message
            self._onMessageReceived(node, message)
            if normalized.reply is not None:
                self.send(node, normalized.reply)
            return
        self._onMessageReceived(node, message)
