"""Goal: AddSearchAttribute keeps each namespace's registry as namespace_machine.py promises:
a new name bumps the epoch and is kept sorted; the same name and type again changes nothing;
the same name with another type is refused `search_attribute_conflict`; a name a query could
not write, an unknown namespace and a registry at SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX are
refused, each with a message naming the rule; an update keeps the registry; a map written
before registries existed still decodes.

Method: unit tests over a genesis map with the helpers of the namespace machine's tests; every
apply runs `check_map_invariants`, and a refusal must leave the map unchanged.
"""

from __future__ import annotations

from itertools import count

import msgspec
import pytest

from raftflow.api.membership_handlers import _REFUSAL_CODES
from raftflow.cluster.cluster_map import RefusalCode, decode_map, encode_map
from raftflow.cluster.namespace_specs import AddSearchAttribute, Namespace
from raftflow.protocol.errors import ErrorCode, http_status
from raftflow.protocol.namespaces import DEFAULT_NAMESPACE
from raftflow.protocol.search_attributes import (
    SEARCH_ATTRIBUTE_NAME_LENGTH_MAX,
    SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX,
    AttributeType,
)
from tests.cluster.test_namespace_machine import (
    changed,
    cluster,
    create,
    refused,
    unchanged,
    update,
)

_request_ids = count()


def add(name: str, attribute_type: AttributeType, namespace: str = "shop") -> AddSearchAttribute:
    return AddSearchAttribute(request_id=f"sa{next(_request_ids)}", namespace=namespace,
                              name=name, attribute_type=attribute_type)


def test_adding_registers_the_attribute_sorted_and_a_repeat_is_a_no_op() -> None:
    shop = changed(cluster(), create("shop"))
    one = changed(shop, add("CustomerId", AttributeType.KEYWORD))
    two = changed(one, add("Amount", AttributeType.INT))
    found = two.namespace("shop")
    assert found is not None
    assert list(found.search_attributes.items()) == [
        ("Amount", AttributeType.INT), ("CustomerId", AttributeType.KEYWORD)]
    unchanged(two, add("Amount", AttributeType.INT))  # same name, same type: idempotent


def test_the_same_name_with_another_type_is_a_conflict() -> None:
    shop = changed(changed(cluster(), create("shop")), add("Amount", AttributeType.INT))
    refusal = refused(shop, add("Amount", AttributeType.DOUBLE),
                      RefusalCode.SEARCH_ATTRIBUTE_CONFLICT, "Amount", "int", "double")
    assert _REFUSAL_CODES[refusal.code] is ErrorCode.SEARCH_ATTRIBUTE_CONFLICT
    assert http_status(ErrorCode.SEARCH_ATTRIBUTE_CONFLICT) == 409


@pytest.mark.parametrize(("name", "words"), [
    ("1abc", ("letters, digits",)),
    ("has space", ("letters, digits",)),
    ("AND", ("keyword",)),
    ("WorkflowId", ("builtin",)),
    ("x" * (SEARCH_ATTRIBUTE_NAME_LENGTH_MAX + 1), ("SEARCH_ATTRIBUTE_NAME_LENGTH_MAX",)),
])
def test_a_name_a_query_could_not_write_is_invalid(name: str, words: tuple[str, ...]) -> None:
    shop = changed(cluster(), create("shop"))
    refusal = refused(shop, add(name, AttributeType.KEYWORD), RefusalCode.INVALID, *words)
    assert _REFUSAL_CODES[refusal.code] is ErrorCode.INVALID_ARGUMENT


def test_an_unknown_namespace_is_not_found() -> None:
    refused(cluster(), add("Amount", AttributeType.INT, namespace="nowhere"),
            RefusalCode.NAMESPACE_NOT_FOUND, "nowhere")


def test_the_registry_is_bounded_per_namespace() -> None:
    current = changed(cluster(), create("shop"))
    for index in range(SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX):
        current = changed(current, add(f"A{index}", AttributeType.INT))
    refused(current, add("OneTooMany", AttributeType.INT), RefusalCode.INVALID,
            f"SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX={SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX}")
    unchanged(current, add("A0", AttributeType.INT))  # a repeat is still answered


def test_the_implicit_default_namespace_takes_attributes_and_updates_keep_them() -> None:
    with_default = changed(cluster(), add("Amount", AttributeType.INT, DEFAULT_NAMESPACE))
    updated = changed(with_default, update(DEFAULT_NAMESPACE, retention_ms=30_000))
    found = updated.namespace(DEFAULT_NAMESPACE)
    assert found is not None and found.retention_ms == 30_000
    assert found.search_attributes == {"Amount": AttributeType.INT}


def test_a_namespace_encoded_before_registries_decodes_with_none() -> None:
    shop = changed(changed(cluster(), create("shop")), add("Amount", AttributeType.INT))
    raw = msgspec.msgpack.decode(encode_map(shop))
    for namespace in raw["namespaces"]:
        del namespace["search_attributes"]
    old = decode_map(msgspec.msgpack.encode(raw))
    assert old.namespaces == (Namespace(name="shop", retention_ms=20_000),)
    assert decode_map(encode_map(shop)) == shop
