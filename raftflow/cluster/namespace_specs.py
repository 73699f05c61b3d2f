"""Namespaces in the cluster map: their settings and the commands that change them.

The map (the meta group's state) is the one place namespaces are created and changed; each
shard gets a copy of the settings its writes need through `ConfigureNamespace` (the shard
core's on_namespace.py), proposed by the node leading the shard whenever its copy differs from
the map. `default` always exists: a map that does not list it (every map before namespaces
existed) has it with DEFAULT_RETENTION_MS.
"""

from __future__ import annotations

import msgspec

from raftflow.protocol.namespaces import DEFAULT_NAMESPACE
from raftflow.protocol.search_attributes import AttributeType
from raftflow.shards.core.limits import DEFAULT_RETENTION_MS


class Namespace(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    retention_ms: int
    description: str = ""
    # Registered custom search attributes, sorted by name (every replica encodes the same
    # bytes). Last, with a default: a map written before they existed decodes with none.
    search_attributes: dict[str, AttributeType] = msgspec.field(default_factory=dict)
    # Rate limits, calls per second over the cluster (None: the nodes' default). Only the
    # gateways read them (api/rate_limits.py); shards never see them. Last, with defaults, for
    # the same reason.
    start_rate_per_s: float | None = None
    poll_rate_per_s: float | None = None


DEFAULT_NAMESPACE_SPEC = Namespace(name=DEFAULT_NAMESPACE, retention_ms=DEFAULT_RETENTION_MS)


class CreateNamespace(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                      tag="CreateNamespace", tag_field="type"):
    """Create a namespace; the same settings again answer like the first time."""

    request_id: str
    name: str
    retention_ms: int
    description: str = ""
    start_rate_per_s: float | None = None
    poll_rate_per_s: float | None = None


class UpdateNamespace(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                      tag="UpdateNamespace", tag_field="type"):
    """Change the given settings of an existing namespace (None: unchanged; for a rate, UNSET
    is unchanged and None goes back to the cluster's default)."""

    request_id: str
    name: str
    retention_ms: int | None = None
    description: str | None = None
    start_rate_per_s: float | None | msgspec.UnsetType = msgspec.UNSET
    poll_rate_per_s: float | None | msgspec.UnsetType = msgspec.UNSET


class AddSearchAttribute(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                         tag="AddSearchAttribute", tag_field="type"):
    """Register a custom search attribute in a namespace; the same name and type again is a
    no-op, the same name with another type is refused (a type never changes)."""

    request_id: str
    namespace: str
    name: str
    attribute_type: AttributeType


def namespace_in(namespaces: tuple[Namespace, ...], name: str) -> Namespace | None:
    """The namespace called `name` among a map's namespaces, `default` included."""
    found = next((n for n in namespaces if n.name == name), None)
    if found is None and name == DEFAULT_NAMESPACE:
        return DEFAULT_NAMESPACE_SPEC
    return found


def all_namespaces(namespaces: tuple[Namespace, ...]) -> tuple[Namespace, ...]:
    """Every namespace of a map by name, `default` included."""
    listed = {n.name: n for n in namespaces}
    listed.setdefault(DEFAULT_NAMESPACE, DEFAULT_NAMESPACE_SPEC)
    return tuple(listed[name] for name in sorted(listed))
