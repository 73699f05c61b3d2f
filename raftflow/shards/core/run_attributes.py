"""A run's custom search attributes: typed at start, merged by `UpsertWorkflowSearchAttributes`.

Theory of operation. Values arrive in their JSON form inside the command (a start's
`search_attributes`, an upsert workflow command) and are typed here against this shard's copy
of the namespace's registry (`NamespaceConfig.search_attributes`, from `ConfigureNamespace`),
with `protocol.search_attributes.typed_attributes`: the same pure rule the gateway applied, but
this copy is the authority, and since it is part of the shard's state every replica types the
same entry the same way (I2). An unregistered name or a value of the wrong form is refused
with a `Rejected` naming the field; the caller returns it before any write, so nothing changes
(a start is a 400; a completion carrying a bad upsert is refused whole, like any other invalid
workflow command).
"""

from __future__ import annotations

from collections.abc import Mapping

from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import UpsertWorkflowSearchAttributesEventAttributes
from raftflow.protocol.results import Rejected
from raftflow.protocol.search_attributes import (
    SEARCH_ATTRIBUTES_PER_RUN_MAX,
    AttributeProblem,
    AttributeType,
    JsonAttributeValue,
    SearchAttribute,
    UpsertWorkflowSearchAttributes,
    merged,
    typed_attributes,
)
from raftflow.shards.core.state import Execution, ShardState
from raftflow.shards.core.writes import Changes, do_append

_NO_REGISTRY: Mapping[str, AttributeType] = {}


def registry_of(state: ShardState, namespace: str) -> Mapping[str, AttributeType]:
    """The namespace's registered attributes as this shard last received them."""
    config = state.namespaces.get(namespace)
    return _NO_REGISTRY if config is None else config.search_attributes


def typed_or_rejected(state: ShardState, namespace: str,
                      given: Mapping[str, JsonAttributeValue],
                      where: str = "") -> tuple[SearchAttribute, ...] | Rejected:
    """`given` typed against the namespace's registry, or a refusal whose field is
    `<where>search_attributes.<name>`."""
    if not given:
        return ()
    typed = typed_attributes(registry_of(state, namespace), given)
    if isinstance(typed, AttributeProblem):
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, message=typed.message,
                        field=where + typed.field)
    assert [a.name for a in typed] == sorted(given)
    return typed


def check_upsert(state: ShardState, execution: Execution, where: str,
                 command: UpsertWorkflowSearchAttributes,
                 pending: tuple[SearchAttribute, ...]) -> tuple[SearchAttribute, ...] | Rejected:
    """The run's attributes after this upsert (`pending`: after the earlier upserts of the
    same completion), or why it is refused."""
    typed = typed_or_rejected(state, execution.namespace, command.search_attributes,
                              f"{where}.")
    if isinstance(typed, Rejected):
        return typed
    if not typed:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, field=f"{where}.search_attributes",
                        message="an upsert sets at least one search attribute")
    after = merged(pending, typed)
    if len(after) > SEARCH_ATTRIBUTES_PER_RUN_MAX:
        return Rejected(code=ErrorCode.LIMIT_EXCEEDED, field=f"{where}.search_attributes",
                        message=f"the run would have {len(after)} search attributes, more than "
                                f"SEARCH_ATTRIBUTES_PER_RUN_MAX={SEARCH_ATTRIBUTES_PER_RUN_MAX}")
    return after


def do_upsert(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
              completed_id: int, command: UpsertWorkflowSearchAttributes) -> None:
    """Write the (validated) upsert's event and merge its attributes into the run."""
    typed = typed_or_rejected(state, execution.namespace, command.search_attributes)
    assert not isinstance(typed, Rejected) and typed, "validated by check_commands"
    do_append(execution, changes, now_ms, UpsertWorkflowSearchAttributesEventAttributes(
        search_attributes=typed, workflow_task_completed_event_id=completed_id))
    execution.search_attributes = merged(execution.search_attributes, typed)
    assert len(execution.search_attributes) <= SEARCH_ATTRIBUTES_PER_RUN_MAX
