"""Namespaces on the wire: what `/api/v1/namespaces` takes and answers, shared by the server,
the CLI and the SDK.

A namespace groups workflows and says how long their closed runs are kept (`retention_ms`,
Temporal's workflow execution retention). `default` always exists. Names follow the id rule of
every other id (1 to ID_LENGTH_MAX characters).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from raftflow.protocol.limits import DURATION_MS_MAX, ID_LENGTH_MAX
from raftflow.protocol.search_attributes import SEARCH_ATTRIBUTE_NAME_LENGTH_MAX, AttributeType

DEFAULT_NAMESPACE = "default"

# A closed run is kept at least this long: shorter would delete runs while a client that
# started them still waits for their result (Temporal's minimum is a day; tests use seconds).
RETENTION_MS_MIN = 1_000
DESCRIPTION_LENGTH_MAX = 1_000
# Namespaces of one cluster: each is in the cluster map every node holds and in every shard.
NAMESPACES_MAX = 1_000

# `$` also matches before a final newline in Python's `re.search` (which msgspec uses), so the
# gateway also refuses a name with a newline (api/namespace_handlers.py); the cluster map
# matches the whole string.
NAMESPACE_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]*$"
NamespaceName = Annotated[str, msgspec.Meta(
    min_length=1, max_length=ID_LENGTH_MAX, pattern=NAMESPACE_NAME_PATTERN,
    description="Letters, digits, '.', '_' and '-', starting with a letter or digit.")]
RetentionMs = Annotated[int, msgspec.Meta(ge=RETENTION_MS_MIN, le=DURATION_MS_MAX, description=(
    "How long a closed run is kept after it closed, in milliseconds."))]
Description = Annotated[str, msgspec.Meta(max_length=DESCRIPTION_LENGTH_MAX)]

# A namespace's rate limits (api/rate_limits.py): calls per second over the whole cluster, each
# node admitting its share (the rate divided by the cluster's nodes). Above a million a second
# a limit limits nothing this engine can do; below one call in 1000 s it is a typo.
RATE_PER_S_MIN = 0.001
RATE_PER_S_MAX = 1_000_000.0
RatePerS = Annotated[float, msgspec.Meta(ge=RATE_PER_S_MIN, le=RATE_PER_S_MAX, description=(
    "Calls per second over the whole cluster; each node admits its share (the rate divided by "
    "the number of nodes). null: the cluster's default (the nodes' --default-*-rate flags)."))]


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class CreateNamespaceRequest(_Body, frozen=True):
    """`POST /api/v1/namespaces`. Creating an existing namespace with the same settings is
    answered like the first creation (a retry); with other settings it is a 409."""

    name: NamespaceName
    retention_ms: RetentionMs | None = None  # default: DEFAULT_RETENTION_MS (3 days)
    description: Description = ""
    # Workflow starts and signals per second (together), and task polls per second; None: the
    # cluster's default.
    start_rate_per_s: RatePerS | None = None
    poll_rate_per_s: RatePerS | None = None


class UpdateNamespaceRequest(_Body, frozen=True):
    """`PATCH /api/v1/namespaces/{namespace}`: the fields given change, the others stay.
    A rate given as null goes back to the cluster's default; one left out stays."""

    retention_ms: RetentionMs | None = None
    description: Description | None = None
    start_rate_per_s: RatePerS | None | msgspec.UnsetType = msgspec.UNSET
    poll_rate_per_s: RatePerS | None | msgspec.UnsetType = msgspec.UNSET


class AddSearchAttributeRequest(_Body, frozen=True):
    """`POST /api/v1/namespaces/{namespace}/search-attributes`: register a custom search
    attribute. The same name and type again is answered like the first time; the same name
    with another type is a 409 `search_attribute_conflict`."""

    name: Annotated[str, msgspec.Meta(
        min_length=1, max_length=SEARCH_ATTRIBUTE_NAME_LENGTH_MAX,
        pattern="^[A-Za-z_][A-Za-z0-9_]*$", description=(
            "Letters, digits and '_', not starting with a digit; not a query keyword or a "
            "builtin field (WorkflowId, ExecutionStatus, ...)."))]
    type: AttributeType


class NamespaceInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One namespace as the API describes it."""

    name: str
    retention_ms: int
    description: str = ""
    # Registered custom search attributes: name -> type, by name.
    search_attributes: dict[str, AttributeType] = msgspec.field(default_factory=dict)
    # The namespace's own rate limits; null: the cluster's default applies.
    start_rate_per_s: float | None = None
    poll_rate_per_s: float | None = None


class NamespaceList(msgspec.Struct, frozen=True, kw_only=True):
    namespaces: tuple[NamespaceInfo, ...]


assert RETENTION_MS_MIN < DURATION_MS_MAX
assert 0 < RATE_PER_S_MIN < RATE_PER_S_MAX
