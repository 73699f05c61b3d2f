"""Keeps every shard this node leads in step with the namespaces of the cluster map.

A create or update of a namespace hands the settings to every shard before it answers
(api/namespace_handlers.py), but a shard may miss it: its leader was unreachable then, or the
change was committed and the caller gave up. Each round, this node compares the map's
namespaces with the copy in each shard it leads and proposes `ConfigureNamespace` for those
that differ, one at a time per shard. A namespace the map leaves implicit (`default` before
anyone changed it) needs no copy: the shard's defaults are the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from functools import partial

from raftflow.cluster.cluster_map import ClusterMap
from raftflow.protocol.commands import ConfigureNamespace
from raftflow.protocol.errors import RaftflowError
from raftflow.shards.actor import ShardActor
from raftflow.shards.core.state import NamespaceConfig

log = logging.getLogger(__name__)


class NamespaceSync:
    def __init__(self, node_id: str, now_ms: Callable[[], int]) -> None:
        self._node_id = node_id
        self._now_ms = now_ms
        self._busy: set[int] = set()  # shards with a ConfigureNamespace in flight

    def round(self, cluster_map: ClusterMap, actors: Mapping[int, ShardActor]) -> None:
        wanted = {n.name: NamespaceConfig(retention_ms=n.retention_ms,
                                          search_attributes=dict(n.search_attributes))
                  for n in cluster_map.namespaces}
        for shard, actor in actors.items():
            if shard in self._busy or not actor.is_ready_leader():
                continue
            have = actor.state.namespaces
            stale = next((name for name in sorted(wanted) if have.get(name) != wanted[name]),
                         None)
            if stale is not None:
                self._busy.add(shard)
                task = asyncio.get_running_loop().create_task(
                    self._configure(shard, actor, stale, wanted[stale]))
                task.add_done_callback(partial(self._done, shard))

    def _done(self, shard: int, _: asyncio.Task[None]) -> None:
        self._busy.discard(shard)

    async def _configure(self, shard: int, actor: ShardActor, name: str,
                         config: NamespaceConfig) -> None:
        try:
            await actor.execute(ConfigureNamespace(
                now_ms=self._now_ms(), namespace=name, retention_ms=config.retention_ms,
                search_attributes=config.search_attributes))
            log.info("node %s: shard %d has namespace %s (retention %d ms, %d search "
                     "attributes) from the map", self._node_id, shard, name,
                     config.retention_ms, len(config.search_attributes))
        except RaftflowError as error:
            log.info("node %s: shard %d did not take namespace %s yet (%s); the next round "
                     "retries", self._node_id, shard, name, error.code)
