"""ConfigureNamespace: a shard learns a namespace's settings from the cluster map.

The cluster map (the meta group) is where namespaces are created and changed; each shard keeps
a copy of the settings its own writes depend on, so that applying a command never reads
anything but the shard's log (DESIGN §4 I2). Today that is retention: a run closing in the
namespace is deleted `retention_ms` after its close time (writes.retention_ms), and the
registered search attributes, against which starts and upserts are typed (the map checked the
names; the copy is kept sorted by name so every replica encodes it the same). The proposer
sends the map's settings as they are; the same settings again change nothing.
"""

from __future__ import annotations

from raftflow.protocol.commands import ConfigureNamespace
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.limits import DURATION_MS_MAX
from raftflow.protocol.namespaces import NAMESPACES_MAX
from raftflow.protocol.results import Ack, Rejected
from raftflow.protocol.search_attributes import (
    SEARCH_ATTRIBUTE_NAME_LENGTH_MAX,
    SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX,
)
from raftflow.shards.core import validate
from raftflow.shards.core.output import Output
from raftflow.shards.core.state import NamespaceConfig, ShardState


def on_configure_namespace(state: ShardState, command: ConfigureNamespace) -> Output:
    rejected = validate.check_ids(namespace=command.namespace)
    if rejected is not None:
        return Output(result=rejected)
    if not 1 <= command.retention_ms <= DURATION_MS_MAX:
        return Output(result=Rejected(
            code=ErrorCode.INVALID_ARGUMENT, field="retention_ms",
            message=f"retention_ms must be in [1, DURATION_MS_MAX={DURATION_MS_MAX}]"))
    if command.namespace not in state.namespaces and len(state.namespaces) >= NAMESPACES_MAX:
        return Output(result=validate.limit_exceeded("NAMESPACES_MAX", NAMESPACES_MAX))
    registry = command.search_attributes
    if len(registry) > SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX:
        return Output(result=validate.limit_exceeded("SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX",
                                                     SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX))
    if any(not 1 <= len(name) <= SEARCH_ATTRIBUTE_NAME_LENGTH_MAX for name in registry):
        return Output(result=Rejected(
            code=ErrorCode.INVALID_ARGUMENT, field="search_attributes",
            message=f"names are 1 to SEARCH_ATTRIBUTE_NAME_LENGTH_MAX="
                    f"{SEARCH_ATTRIBUTE_NAME_LENGTH_MAX} characters"))
    config = NamespaceConfig(retention_ms=command.retention_ms,
                             search_attributes={n: registry[n] for n in sorted(registry)})
    if state.namespaces.get(command.namespace) != config:
        state.namespaces[command.namespace] = config
    return Output(result=Ack())
