"""The cluster map's namespace commands: CreateNamespace, UpdateNamespace and
AddSearchAttribute (pure).

Theory of operation: the same as map_machine.py, which dispatches these commands here and
remembers their answers by request id. Handlers compute, then commit: every refusal (a
`MapRefused` naming the namespace and the rule) returns before the new map is built; a change
bumps the epoch by one; a repeat that would change nothing returns the map itself (the
machine answers it with the current epoch).

`default` always exists. Until it is updated it is implicit (DEFAULT_NAMESPACE_SPEC, not in
`ClusterMap.namespaces`), so maps written before namespaces existed need no migration; creating
it with its implicit settings is a no-op, and its first real update makes it explicit.
`ClusterMap.namespaces` stays sorted by name so every replica encodes the same bytes.
"""

from __future__ import annotations

import math
import re
from typing import get_args

import msgspec

from raftflow.cluster.cluster_map import ClusterMap, MapRefused, RefusalCode
from raftflow.cluster.namespace_specs import (
    AddSearchAttribute,
    CreateNamespace,
    Namespace,
    UpdateNamespace,
    all_namespaces,
)
from raftflow.protocol.limits import DURATION_MS_MAX
from raftflow.protocol.namespaces import (
    DESCRIPTION_LENGTH_MAX,
    NAMESPACES_MAX,
    RATE_PER_S_MAX,
    RATE_PER_S_MIN,
    RETENTION_MS_MIN,
    NamespaceName,
)
from raftflow.protocol.search_attributes import (
    SEARCH_ATTRIBUTE_NAME_LENGTH_MAX,
    SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX,
)
from raftflow.visibility.query_parser import attribute_name_problem

__all__ = ["check_namespace_invariants", "on_add_search_attribute", "on_create_namespace",
           "on_update_namespace"]

# The wire rule is the one source of the name rule. It is matched whole here: msgspec applies a
# pattern with re.search, where `$` also matches before a final newline.
_NAME_RULE: msgspec.Meta = get_args(NamespaceName)[1]
assert _NAME_RULE.pattern is not None and _NAME_RULE.max_length is not None
_NAME_PATTERN = re.compile(_NAME_RULE.pattern)
_NAME_LENGTH_MAX: int = _NAME_RULE.max_length


def _name_error(name: str) -> str | None:
    if 1 <= len(name) <= _NAME_LENGTH_MAX and _NAME_PATTERN.fullmatch(name):
        return None
    return (f"namespace name {name!r} must be 1 to {_NAME_LENGTH_MAX} letters, digits, '.', "
            "'_' or '-', starting with a letter or digit")


def _retention_error(name: str, retention_ms: int) -> str | None:
    if RETENTION_MS_MIN <= retention_ms <= DURATION_MS_MAX:
        return None
    return (f"namespace {name}: retention {retention_ms} ms must be in [RETENTION_MS_MIN="
            f"{RETENTION_MS_MIN}, DURATION_MS_MAX={DURATION_MS_MAX}] ms")


def _description_error(name: str, description: str) -> str | None:
    if len(description) <= DESCRIPTION_LENGTH_MAX:
        return None
    return (f"namespace {name}: the description has {len(description)} characters, more than "
            f"DESCRIPTION_LENGTH_MAX={DESCRIPTION_LENGTH_MAX}")


def _rate_error(name: str, field: str, rate_per_s: float | None) -> str | None:
    if rate_per_s is None or (math.isfinite(rate_per_s)
                              and RATE_PER_S_MIN <= rate_per_s <= RATE_PER_S_MAX):
        return None
    return (f"namespace {name}: {field} {rate_per_s} must be in [RATE_PER_S_MIN="
            f"{RATE_PER_S_MIN}, RATE_PER_S_MAX={RATE_PER_S_MAX}] calls per second, or null for "
            "the cluster's default")


def _rates_error(name: str, start_rate_per_s: float | None | msgspec.UnsetType,
                 poll_rate_per_s: float | None | msgspec.UnsetType) -> str | None:
    start = None if start_rate_per_s is msgspec.UNSET else start_rate_per_s
    poll = None if poll_rate_per_s is msgspec.UNSET else poll_rate_per_s
    assert not isinstance(start, msgspec.UnsetType) and not isinstance(poll, msgspec.UnsetType)
    return (_rate_error(name, "start_rate_per_s", start)
            or _rate_error(name, "poll_rate_per_s", poll))


def attribute_name_error(name: str) -> str | None:
    """Why `name` cannot be a search attribute (a name a query could not write), or None."""
    if len(name) > SEARCH_ATTRIBUTE_NAME_LENGTH_MAX:
        return (f"search attribute name has {len(name)} characters, more than "
                f"SEARCH_ATTRIBUTE_NAME_LENGTH_MAX={SEARCH_ATTRIBUTE_NAME_LENGTH_MAX}")
    problem = attribute_name_problem(name)
    return None if problem is None else f"search attribute name {name!r}: {problem}"


def _attributes_error(namespace: Namespace) -> str | None:
    names = list(namespace.search_attributes)
    if len(names) > SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX:
        return f"namespace {namespace.name}: more than {SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX}"
    if names != sorted(names):
        return f"namespace {namespace.name}: search attributes are not sorted by name"
    return next((e for e in map(attribute_name_error, names) if e is not None), None)


def namespace_error(namespace: Namespace) -> str | None:
    """Why `namespace` may not be in a map, or None if it may."""
    return (_name_error(namespace.name)
            or _retention_error(namespace.name, namespace.retention_ms)
            or _description_error(namespace.name, namespace.description)
            or _rates_error(namespace.name, namespace.start_rate_per_s,
                            namespace.poll_rate_per_s)
            or _attributes_error(namespace))


def _with_namespace(cluster_map: ClusterMap, namespace: Namespace) -> ClusterMap:
    others = [n for n in cluster_map.namespaces if n.name != namespace.name]
    namespaces = tuple(sorted((*others, namespace), key=lambda n: n.name))
    assert len(namespaces) in (len(cluster_map.namespaces), len(cluster_map.namespaces) + 1)
    return msgspec.structs.replace(cluster_map, namespaces=namespaces,
                                   epoch=cluster_map.epoch + 1)


def on_create_namespace(cluster_map: ClusterMap,
                        command: CreateNamespace) -> ClusterMap | MapRefused:
    wanted = Namespace(name=command.name, retention_ms=command.retention_ms,
                       description=command.description,
                       start_rate_per_s=command.start_rate_per_s,
                       poll_rate_per_s=command.poll_rate_per_s)
    error = namespace_error(wanted)
    if error is not None:
        return MapRefused(code=RefusalCode.INVALID, message=error)
    existing = cluster_map.namespace(command.name)
    if existing == wanted:
        return cluster_map  # a retried creation: it exists as asked
    if existing is not None:
        return MapRefused(code=RefusalCode.NAMESPACE_EXISTS, message=(
            f"namespace {existing.name} already exists (retention {existing.retention_ms} ms); "
            "use update to change it"))
    count = len(all_namespaces(cluster_map.namespaces))
    if count >= NAMESPACES_MAX:
        # Every node holds the map and every shard holds each namespace's settings.
        return MapRefused(code=RefusalCode.CONFLICT, message=(
            f"cluster {cluster_map.cluster_id} has {count} namespaces, the most it may have "
            f"(NAMESPACES_MAX={NAMESPACES_MAX}); cannot create namespace {command.name}"))
    return _with_namespace(cluster_map, wanted)


def on_update_namespace(cluster_map: ClusterMap,
                        command: UpdateNamespace) -> ClusterMap | MapRefused:
    name = command.name
    error = None
    if command.retention_ms is not None:
        error = _retention_error(name, command.retention_ms)
    if error is None and command.description is not None:
        error = _description_error(name, command.description)
    if error is None:
        error = _rates_error(name, command.start_rate_per_s, command.poll_rate_per_s)
    if error is not None:
        return MapRefused(code=RefusalCode.INVALID, message=error)
    existing = cluster_map.namespace(name)
    if existing is None:
        return MapRefused(code=RefusalCode.NAMESPACE_NOT_FOUND, message=(
            f"namespace {name} does not exist in cluster {cluster_map.cluster_id}; create it "
            "first"))
    updated = Namespace(
        name=name,
        retention_ms=(existing.retention_ms if command.retention_ms is None
                      else command.retention_ms),
        description=existing.description if command.description is None else command.description,
        search_attributes=existing.search_attributes,
        start_rate_per_s=(existing.start_rate_per_s if command.start_rate_per_s is msgspec.UNSET
                          else command.start_rate_per_s),
        poll_rate_per_s=(existing.poll_rate_per_s if command.poll_rate_per_s is msgspec.UNSET
                         else command.poll_rate_per_s),
    )
    if updated == existing:
        return cluster_map  # nothing given, or nothing different: a retry or a no-op
    assert namespace_error(updated) is None, updated
    return _with_namespace(cluster_map, updated)


def on_add_search_attribute(cluster_map: ClusterMap,
                            command: AddSearchAttribute) -> ClusterMap | MapRefused:
    name, namespace = command.name, command.namespace
    error = attribute_name_error(name)
    if error is not None:
        return MapRefused(code=RefusalCode.INVALID, message=error)
    existing = cluster_map.namespace(namespace)
    if existing is None:
        return MapRefused(code=RefusalCode.NAMESPACE_NOT_FOUND, message=(
            f"namespace {namespace} does not exist in cluster {cluster_map.cluster_id}"))
    registered = existing.search_attributes.get(name)
    if registered == command.attribute_type:
        return cluster_map  # registered as asked: a retry or a repeat
    if registered is not None:
        return MapRefused(code=RefusalCode.SEARCH_ATTRIBUTE_CONFLICT, message=(
            f"search attribute {name} of namespace {namespace} is registered as "
            f"{registered.value}, not {command.attribute_type.value}; a type never changes"))
    count = len(existing.search_attributes)
    if count >= SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX:
        return MapRefused(code=RefusalCode.INVALID, message=(
            f"namespace {namespace} has {count} search attributes, the most it may have "
            f"(SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX={SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX}); "
            f"cannot add {name}"))
    attributes = {**existing.search_attributes, name: command.attribute_type}
    updated = msgspec.structs.replace(
        existing, search_attributes={n: attributes[n] for n in sorted(attributes)})
    assert namespace_error(updated) is None, namespace_error(updated)
    return _with_namespace(cluster_map, updated)


def check_namespace_invariants(cluster_map: ClusterMap) -> None:
    """Assert what every reachable map's namespaces satisfy (called by check_map_invariants)."""
    names = [n.name for n in cluster_map.namespaces]
    assert names == sorted(set(names)), f"namespaces are not sorted and unique: {names}"
    for namespace in cluster_map.namespaces:
        assert namespace_error(namespace) is None, namespace_error(namespace)
    assert len(all_namespaces(cluster_map.namespaces)) <= NAMESPACES_MAX
