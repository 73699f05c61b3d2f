"""Goal: a namespace's rate limits live in the cluster map like its other settings: create sets
them, update changes only those given (UNSET: unchanged, None: back to the cluster's default),
a repeat changes nothing, invalid rates are refused naming the rule, and commands and maps
with them survive the codec; maps and commands written before rates existed still decode.

Method: unit tests over a genesis map with the helpers of test_namespace_machine.py.
"""

from __future__ import annotations

import math

import msgspec
import pytest

from raftflow.cluster.cluster_map import (
    RefusalCode,
    decode_map,
    decode_map_command,
    encode_map,
    encode_map_command,
)
from raftflow.cluster.namespace_specs import CreateNamespace, Namespace, UpdateNamespace
from raftflow.protocol.namespaces import DEFAULT_NAMESPACE, RATE_PER_S_MAX, RATE_PER_S_MIN
from tests.cluster.test_namespace_machine import changed, cluster, refused, rid, unchanged


def create(name: str, start: float | None = None, poll: float | None = None) -> CreateNamespace:
    return CreateNamespace(request_id=rid(), name=name, retention_ms=20_000,
                           start_rate_per_s=start, poll_rate_per_s=poll)


def update(name: str, start: float | None | msgspec.UnsetType = msgspec.UNSET,
           poll: float | None | msgspec.UnsetType = msgspec.UNSET) -> UpdateNamespace:
    return UpdateNamespace(request_id=rid(), name=name, start_rate_per_s=start,
                           poll_rate_per_s=poll)


def test_create_keeps_the_rates_and_a_repeat_changes_nothing() -> None:
    created = changed(cluster(), create("shop", start=50.0, poll=200.0))
    assert created.namespace("shop") == Namespace(name="shop", retention_ms=20_000,
                                                  start_rate_per_s=50.0, poll_rate_per_s=200.0)
    unchanged(created, create("shop", start=50.0, poll=200.0))
    refused(created, create("shop", start=60.0, poll=200.0), RefusalCode.NAMESPACE_EXISTS,
            "namespace shop")


def test_update_changes_only_the_rates_given_and_null_goes_back_to_the_default() -> None:
    created = changed(cluster(), create("shop", start=50.0, poll=200.0))
    faster = changed(created, update("shop", start=80.0))
    shop = faster.namespace("shop")
    assert shop is not None and (shop.start_rate_per_s, shop.poll_rate_per_s) == (80.0, 200.0)
    unchanged(faster, update("shop"))  # both left out
    unchanged(faster, update("shop", start=80.0))
    default_polls = changed(faster, update("shop", poll=None))
    shop = default_polls.namespace("shop")
    assert shop is not None and (shop.start_rate_per_s, shop.poll_rate_per_s) == (80.0, None)
    assert shop.retention_ms == 20_000  # the other settings stay


def test_the_implicit_default_namespace_takes_rates_and_becomes_explicit() -> None:
    limited = changed(cluster(), update(DEFAULT_NAMESPACE, start=10.0))
    default = limited.namespace(DEFAULT_NAMESPACE)
    assert default is not None and default.start_rate_per_s == 10.0
    assert [n.name for n in limited.namespaces] == [DEFAULT_NAMESPACE]


@pytest.mark.parametrize("rate", [0.0, RATE_PER_S_MIN / 2, -1.0, RATE_PER_S_MAX * 2, math.inf,
                                  math.nan])
def test_rates_out_of_bounds_are_refused_by_create_and_update(rate: float) -> None:
    refused(cluster(), create("shop", start=rate), RefusalCode.INVALID, "namespace shop",
            "start_rate_per_s", "RATE_PER_S_MIN")
    created = changed(cluster(), create("shop"))
    refused(created, update("shop", poll=rate), RefusalCode.INVALID, "namespace shop",
            "poll_rate_per_s", "RATE_PER_S_MAX")


def test_the_bounds_themselves_are_accepted() -> None:
    changed(cluster(), create("shop", start=RATE_PER_S_MIN, poll=RATE_PER_S_MAX))


def test_rates_survive_the_codec_and_old_commands_still_decode() -> None:
    for command in (create("shop", 1.5, 2.0), update("shop"), update("shop", start=None),
                    update("shop", poll=3.25)):
        assert decode_map_command(encode_map_command(command)) == command
    with_rates = changed(cluster(), create("shop", start=1.5))
    assert decode_map(encode_map(with_rates)) == with_rates
    # A command of an older node has no rate fields: it leaves the rates unchanged.
    fields = msgspec.msgpack.decode(encode_map_command(update("shop")))
    for name in ("start_rate_per_s", "poll_rate_per_s"):
        fields.pop(name, None)
    old = decode_map_command(msgspec.msgpack.encode(fields))
    assert isinstance(old, UpdateNamespace) and old.start_rate_per_s is msgspec.UNSET
    # A map of an older node has namespaces without rates: they are the default (None).
    map_fields = msgspec.msgpack.decode(encode_map(with_rates))
    for namespace in map_fields["namespaces"]:
        namespace.pop("start_rate_per_s")
        namespace.pop("poll_rate_per_s")
    old_map = decode_map(msgspec.msgpack.encode(map_fields))
    shop = old_map.namespace("shop")
    assert shop is not None and shop.start_rate_per_s is None
