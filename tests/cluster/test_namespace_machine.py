"""Goal: CreateNamespace and UpdateNamespace do what namespace_machine.py promises: a change
bumps the epoch by one, a repeat changes nothing, `default` is implicit until updated, and
every refusal is a value with the exact code and a message naming the namespace and the rule.

Method: unit tests over a genesis map; each apply is followed by `check_map_invariants`, and a
refusal must leave the map unchanged except for the remembered answer. Maps written before
namespaces existed are rebuilt by dropping the field from an encoded map.
"""

from __future__ import annotations

from itertools import count

import msgspec
import pytest

from raftflow.cluster.cluster_map import (
    ClusterMap,
    MapApplied,
    MapCommand,
    MapRefused,
    RefusalCode,
    decode_map,
    decode_map_command,
    encode_map,
    encode_map_command,
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
from raftflow.protocol.limits import DURATION_MS_MAX, ID_LENGTH_MAX
from raftflow.protocol.namespaces import (
    DEFAULT_NAMESPACE,
    DESCRIPTION_LENGTH_MAX,
    NAMESPACES_MAX,
    RETENTION_MS_MIN,
)
from raftflow.shards.core.limits import DEFAULT_RETENTION_MS

_request_ids = count()


def rid() -> str:
    return f"ns{next(_request_ids)}"


def cluster() -> ClusterMap:
    nodes = [(f"node-{i}", f"http://127.0.0.1:{8000 + i}", "127.0.0.1", 9000 + i)
             for i in (1, 2, 3)]
    genesis = genesis_map("c1", 4, nodes)
    check_map_invariants(genesis)
    return genesis


def create(name: str, retention_ms: int = 20_000, description: str = "",
           request_id: str | None = None) -> CreateNamespace:
    return CreateNamespace(request_id=request_id or rid(), name=name,
                           retention_ms=retention_ms, description=description)


def update(name: str, retention_ms: int | None = None,
           description: str | None = None) -> UpdateNamespace:
    return UpdateNamespace(request_id=rid(), name=name, retention_ms=retention_ms,
                           description=description)


def changed(cluster_map: ClusterMap, command: MapCommand) -> ClusterMap:
    after, result = apply_map_command(cluster_map, command)
    check_map_invariants(after)
    assert result == MapApplied(epoch=cluster_map.epoch + 1), result
    assert after.epoch == cluster_map.epoch + 1
    return after


def unchanged(cluster_map: ClusterMap, command: MapCommand) -> ClusterMap:
    after, result = apply_map_command(cluster_map, command)
    check_map_invariants(after)
    assert result == MapApplied(epoch=cluster_map.epoch), result
    assert msgspec.structs.replace(after, answers=cluster_map.answers) == cluster_map
    return after


def refused(cluster_map: ClusterMap, command: MapCommand, code: RefusalCode,
            *words: str) -> MapRefused:
    after, result = apply_map_command(cluster_map, command)
    check_map_invariants(after)
    assert isinstance(result, MapRefused), result
    assert result.code == code, result
    for word in words:
        assert word in result.message, (word, result.message)
    assert msgspec.structs.replace(after, answers=cluster_map.answers) == cluster_map
    return result


SHOP = Namespace(name="shop", retention_ms=20_000)


# --- create -----------------------------------------------------------------------------------


def test_a_new_map_has_only_the_implicit_default() -> None:
    genesis = cluster()
    assert genesis.namespaces == ()
    assert genesis.namespace(DEFAULT_NAMESPACE) == DEFAULT_NAMESPACE_SPEC
    assert DEFAULT_NAMESPACE_SPEC.retention_ms == DEFAULT_RETENTION_MS == 3 * 24 * 3_600_000
    assert genesis.namespace("shop") is None


def test_create_adds_the_namespace_sorted_by_name_and_bumps_the_epoch() -> None:
    genesis = cluster()
    first = changed(genesis, create("shop", 20_000, "the shop"))
    assert first.namespaces == (Namespace(name="shop", retention_ms=20_000,
                                          description="the shop"),)
    second = changed(first, create("billing", RETENTION_MS_MIN))
    third = changed(second, create("zoo", DURATION_MS_MAX))
    assert [n.name for n in third.namespaces] == ["billing", "shop", "zoo"]
    assert third.epoch == genesis.epoch + 3
    assert [n.name for n in all_namespaces(third.namespaces)] == [
        "billing", DEFAULT_NAMESPACE, "shop", "zoo"]
    assert third.members == genesis.members and third.shards == genesis.shards


def test_creating_again_with_the_same_settings_changes_nothing() -> None:
    once = changed(cluster(), create("shop", 20_000, "d"))
    unchanged(once, create("shop", 20_000, "d"))


def test_creating_default_with_its_implicit_settings_keeps_it_implicit() -> None:
    genesis = cluster()
    after = unchanged(genesis, create(DEFAULT_NAMESPACE, DEFAULT_RETENTION_MS))
    assert after.namespaces == ()


@pytest.mark.parametrize(("retention_ms", "description"), [(30_000, ""), (20_000, "other")])
def test_creating_again_with_other_settings_is_refused(retention_ms: int,
                                                       description: str) -> None:
    once = changed(cluster(), create("shop", 20_000))
    result = refused(once, create("shop", retention_ms, description),
                     RefusalCode.NAMESPACE_EXISTS)
    assert result.message == ("namespace shop already exists (retention 20000 ms); use update "
                              "to change it")


def test_creating_default_with_other_settings_is_refused() -> None:
    refused(cluster(), create(DEFAULT_NAMESPACE, 20_000), RefusalCode.NAMESPACE_EXISTS,
            "namespace default already exists", f"retention {DEFAULT_RETENTION_MS} ms")


@pytest.mark.parametrize(("command", "words"), [
    (create(""), ("namespace name ''", "1 to")),
    (create("-shop"), ("'-shop'", "starting with a letter or digit")),
    (create("sh op"), ("'sh op'",)),
    (create("shop\n"), ("'shop\\n'",)),  # msgspec's pattern alone would let this through
    (create("é"), ("'é'",)),
    (create("s" * (ID_LENGTH_MAX + 1)), (f"1 to {ID_LENGTH_MAX}",)),
    (create("shop", RETENTION_MS_MIN - 1), ("namespace shop", "RETENTION_MS_MIN")),
    (create("shop", 0), ("namespace shop", "retention 0 ms")),
    (create("shop", DURATION_MS_MAX + 1), ("namespace shop", "DURATION_MS_MAX")),
    (create("shop", description="d" * (DESCRIPTION_LENGTH_MAX + 1)),
     ("namespace shop", "DESCRIPTION_LENGTH_MAX")),
])
def test_create_refuses_invalid_settings(command: CreateNamespace,
                                         words: tuple[str, ...]) -> None:
    refused(cluster(), command, RefusalCode.INVALID, *words)


def test_the_longest_valid_name_and_description_are_accepted() -> None:
    name = "a" + "._-9Z" * ((ID_LENGTH_MAX - 1) // 5)
    name += "x" * (ID_LENGTH_MAX - len(name))
    assert len(name) == ID_LENGTH_MAX
    after = changed(cluster(), create(name, description="d" * DESCRIPTION_LENGTH_MAX))
    assert after.namespace(name) is not None


def _full(cluster_map: ClusterMap) -> ClusterMap:
    """A map holding NAMESPACES_MAX namespaces, `default` (implicit) included."""
    names = sorted(f"ns-{index:04d}" for index in range(NAMESPACES_MAX - 1))
    full = msgspec.structs.replace(cluster_map, namespaces=tuple(
        Namespace(name=name, retention_ms=RETENTION_MS_MIN) for name in names))
    check_map_invariants(full)
    return full


def test_at_most_namespaces_max_default_included() -> None:
    genesis = cluster()
    almost = msgspec.structs.replace(_full(genesis), namespaces=_full(genesis).namespaces[1:])
    full = changed(almost, create("ns-0000", RETENTION_MS_MIN))
    assert len(all_namespaces(full.namespaces)) == NAMESPACES_MAX
    refused(full, create("shop"), RefusalCode.CONFLICT, "NAMESPACES_MAX", "shop",
            str(NAMESPACES_MAX))
    # Retries, updates and `default` itself still work at the limit.
    unchanged(full, create("ns-0001", RETENTION_MS_MIN))
    unchanged(full, create(DEFAULT_NAMESPACE, DEFAULT_RETENTION_MS))
    explicit = changed(full, update(DEFAULT_NAMESPACE, retention_ms=RETENTION_MS_MIN))
    assert len(all_namespaces(explicit.namespaces)) == NAMESPACES_MAX


# --- update -----------------------------------------------------------------------------------


def test_update_changes_only_the_given_fields() -> None:
    once = changed(cluster(), create("shop", 20_000, "the shop"))
    longer = changed(once, update("shop", retention_ms=60_000))
    assert longer.namespace("shop") == Namespace(name="shop", retention_ms=60_000,
                                                 description="the shop")
    renamed = changed(longer, update("shop", description=""))
    assert renamed.namespace("shop") == Namespace(name="shop", retention_ms=60_000)
    both = changed(renamed, update("shop", retention_ms=RETENTION_MS_MIN, description="x"))
    assert both.namespaces == (Namespace(name="shop", retention_ms=RETENTION_MS_MIN,
                                         description="x"),)


def test_an_update_that_changes_nothing_is_a_no_op() -> None:
    once = changed(cluster(), create("shop", 20_000, "d"))
    unchanged(once, update("shop"))
    unchanged(once, update("shop", retention_ms=20_000))
    unchanged(once, update("shop", retention_ms=20_000, description="d"))


def test_updating_the_implicit_default_makes_it_explicit() -> None:
    genesis = changed(cluster(), create("shop"))
    assert unchanged(genesis, update(DEFAULT_NAMESPACE)).namespaces == (SHOP,)
    assert unchanged(genesis, update(DEFAULT_NAMESPACE, retention_ms=DEFAULT_RETENTION_MS,
                                     description="")).namespaces == (SHOP,)
    explicit = changed(genesis, update(DEFAULT_NAMESPACE, description="everything else"))
    default = Namespace(name=DEFAULT_NAMESPACE, retention_ms=DEFAULT_RETENTION_MS,
                        description="everything else")
    assert explicit.namespaces == (default, SHOP)
    assert explicit.namespace(DEFAULT_NAMESPACE) == default
    # Now explicit, creating it with its old implicit settings is a conflict.
    refused(explicit, create(DEFAULT_NAMESPACE, DEFAULT_RETENTION_MS),
            RefusalCode.NAMESPACE_EXISTS, "namespace default")
    unchanged(explicit, create(DEFAULT_NAMESPACE, DEFAULT_RETENTION_MS, "everything else"))


def test_updating_an_unknown_namespace_is_refused() -> None:
    refused(cluster(), update("shop", retention_ms=20_000), RefusalCode.NAMESPACE_NOT_FOUND,
            "namespace shop does not exist")
    refused(cluster(), update("shop"), RefusalCode.NAMESPACE_NOT_FOUND, "shop")


@pytest.mark.parametrize(("command", "word"), [
    (update("shop", retention_ms=RETENTION_MS_MIN - 1), "RETENTION_MS_MIN"),
    (update("shop", retention_ms=DURATION_MS_MAX + 1), "DURATION_MS_MAX"),
    (update("shop", description="d" * (DESCRIPTION_LENGTH_MAX + 1)), "DESCRIPTION_LENGTH_MAX"),
    (update("shop", retention_ms=20_000, description="d" * (DESCRIPTION_LENGTH_MAX + 1)),
     "DESCRIPTION_LENGTH_MAX"),
])
def test_update_refuses_invalid_settings(command: UpdateNamespace, word: str) -> None:
    once = changed(cluster(), create("shop"))
    refused(once, command, RefusalCode.INVALID, "namespace shop", word)


# --- retries, codec, invariants ---------------------------------------------------------------


def test_a_retried_request_gets_its_first_answer_whatever_happened_since() -> None:
    genesis = cluster()
    first = create("shop", 20_000, request_id="create-shop")
    created, answer = apply_map_command(genesis, first)
    assert answer == MapApplied(epoch=genesis.epoch + 1)
    # Changed since: the same request id still gets its first answer, and changes nothing.
    later = changed(created, update("shop", retention_ms=30_000))
    again, second = apply_map_command(later, first)
    assert second == answer and again == later
    # A refusal is remembered too, even once its cause is gone.
    doomed = UpdateNamespace(request_id="update-zoo", name="zoo", retention_ms=5_000)
    refused_map, refusal = apply_map_command(later, doomed)
    assert isinstance(refusal, MapRefused) and refusal.code == RefusalCode.NAMESPACE_NOT_FOUND
    with_zoo = changed(refused_map, create("zoo"))
    still, repeated = apply_map_command(with_zoo, doomed)
    assert repeated == refusal and still == with_zoo
    assert with_zoo.namespace("zoo") == Namespace(name="zoo", retention_ms=20_000)


def test_namespace_commands_and_maps_survive_the_codec() -> None:
    for command in (create("shop", 20_000, "d"), update("shop"),
                    update("shop", retention_ms=1_000, description="")):
        assert decode_map_command(encode_map_command(command)) == command
    cluster_map = changed(changed(cluster(), create("shop")),
                          update(DEFAULT_NAMESPACE, retention_ms=5_000))
    assert decode_map(encode_map(cluster_map)) == cluster_map
    assert msgspec.json.decode(msgspec.json.encode(cluster_map), type=ClusterMap) == cluster_map


def test_a_map_written_before_namespaces_existed_still_decodes() -> None:
    genesis = cluster()
    fields = msgspec.msgpack.decode(encode_map(genesis))
    assert fields.pop("namespaces") == []
    old = decode_map(msgspec.msgpack.encode(fields))
    assert old == genesis and old.namespaces == ()
    assert old.namespace(DEFAULT_NAMESPACE) == DEFAULT_NAMESPACE_SPEC
    # The map store keeps the map as JSON: an old file loads too.
    json_fields = msgspec.json.decode(msgspec.json.encode(genesis))
    del json_fields["namespaces"]
    assert msgspec.json.decode(msgspec.json.encode(json_fields), type=ClusterMap) == genesis
    # And an old map accepts namespace commands.
    assert changed(old, create("shop")).namespaces == (SHOP,)


@pytest.mark.parametrize("namespaces", [
    (Namespace(name="zoo", retention_ms=20_000), SHOP),  # not sorted
    (SHOP, SHOP),  # repeated
    (Namespace(name="-bad", retention_ms=20_000),),
    (Namespace(name="shop", retention_ms=0),),
    (Namespace(name="shop", retention_ms=20_000, description="d" * (DESCRIPTION_LENGTH_MAX + 1)),),
])
def test_invariants_catch_broken_namespaces(namespaces: tuple[Namespace, ...]) -> None:
    broken = msgspec.structs.replace(cluster(), namespaces=namespaces)
    with pytest.raises(AssertionError):
        check_map_invariants(broken)


def test_invariants_catch_too_many_namespaces() -> None:
    full = _full(cluster())
    over = msgspec.structs.replace(full, namespaces=(
        *full.namespaces, Namespace(name="zzz", retention_ms=RETENTION_MS_MIN)))
    with pytest.raises(AssertionError):
        check_map_invariants(over)
