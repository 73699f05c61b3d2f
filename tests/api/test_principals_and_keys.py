"""Goal: roles grant exactly what docs/security.md says, a tokens file is read strictly (every
mistake named with its entry), keys are matched by digest only, and the caller header a
forwarding node sends round-trips and refuses malformed input.
Method: the pure modules (principals.py, api_keys.py) on values and temp files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftflow.api.api_keys import AuthConfigError, load_api_keys
from raftflow.api.principals import (
    NODE,
    Permission,
    RoleError,
    decode_caller,
    encode_caller,
    principal_of,
)


def test_each_role_grants_its_permissions_in_its_namespace_only() -> None:
    writer = principal_of("w", ["writer:shop"])
    assert writer.may(Permission.WRITE, "shop") and writer.may(Permission.READ, "shop")
    assert not writer.may(Permission.WORK, "shop")
    assert not writer.may(Permission.WRITE, "other") and not writer.may_see("other")
    reader = principal_of("r", ["reader:shop"])
    assert reader.may(Permission.READ, "shop") and not reader.may(Permission.WRITE, "shop")
    worker = principal_of("k", ["worker:shop"])
    assert worker.may(Permission.WORK, "shop") and not worker.may(Permission.READ, "shop")
    assert worker.may_see("shop") and not worker.admin and not worker.metrics
    every = principal_of("e", ["reader:*"])
    assert every.may(Permission.READ, "any") and not every.may(Permission.WRITE, "any")
    admin = principal_of("a", ["admin"])
    assert admin.may(Permission.WORK, "x") and admin.admin and admin.metrics
    scraper = principal_of("m", ["metrics"])
    assert scraper.metrics and not scraper.admin and not scraper.may_see("default")
    assert NODE.admin


@pytest.mark.parametrize("role", ["root", "writer", "writer:", "owner:shop", "Admin",
                                  "reader:" + "n" * 1001])
def test_a_role_that_names_nothing_is_refused(role: str) -> None:
    with pytest.raises(RoleError):
        principal_of("x", [role])


def test_the_caller_header_round_trips_and_refuses_garbage() -> None:
    principal = principal_of("shop-writer ü", ["writer:shop", "reader:*"])
    assert decode_caller(encode_caller(principal)) == principal
    for garbage in ("", "%%%", "bm90IG1zZ3BhY2s=", encode_caller(principal)[:-4], "A" * 70_000):
        assert decode_caller(garbage) is None


@given(st.text(max_size=300))
def test_no_header_value_crashes_the_decoder(value: str) -> None:
    decoded = decode_caller(value)
    assert decoded is None or decoded.roles


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    return path


def test_a_tokens_file_maps_keys_and_digests_to_principals(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"hashed-key").hexdigest()
    keys = load_api_keys(_write(tmp_path, f"""
[[token]]
name = "ops"
key = "plain-key"
roles = ["admin"]

[[token]]
name = "shop"
key_sha256 = "{digest.upper()}"
roles = ["writer:shop", "worker:shop"]
"""))
    assert keys.principal_for("plain-key") == principal_of("ops", ["admin"])
    shop = keys.principal_for("hashed-key")
    assert shop is not None and shop.may(Permission.WORK, "shop")
    assert keys.principal_for("plain-key ") is None and keys.principal_for("") is None
    assert keys.principal_for(digest) is None  # the digest is not the key
    assert all(len(d) == 64 for d in keys.by_digest)  # only digests are held


@pytest.mark.parametrize(("text", "problem"), [
    ("[[token]]\nname='a'\nroles=['admin']\n", "exactly one of 'key' and 'key_sha256'"),
    ("[[token]]\nname='a'\nkey='k'\nkey_sha256='" + "0" * 64 + "'\nroles=['admin']\n",
     "exactly one"),
    ("[[token]]\nname='a'\nkey='k'\nroles=['boss']\n", "token[0] (a): 'boss' is not a role"),
    ("[[token]]\nname='a'\nkey='k'\nroles=[]\n", "at least one role"),
    ("[[token]]\nname='a'\nkey='k'\nroles='admin'\n", "'roles' must be a list"),
    ("[[token]]\nname='a'\nkey='k'\nroles=['admin']\nrole='x'\n", "unknown field(s) ['role']"),
    ("[[token]]\nname='a'\nkey='k'\nroles=['admin']\n[[token]]\nname='a'\nkey='j'\n"
     "roles=['admin']\n", "token[1]: name 'a' is used twice"),
    ("[[token]]\nname='a'\nkey='k'\nroles=['admin']\n[[token]]\nname='b'\nkey='k'\n"
     "roles=['admin']\n", "the same key as token 'a'"),
    ("[[token]]\nname='a'\nkey_sha256='abc'\nroles=['admin']\n", "64 hex digits"),
    ("[tokens]\n", "unknown table(s) ['tokens']"),
    ("[[token]\n", "not valid TOML"),
])
def test_a_bad_tokens_file_is_refused_naming_the_problem(tmp_path: Path, text: str,
                                                         problem: str) -> None:
    with pytest.raises(AuthConfigError, match=".*") as refused:
        load_api_keys(_write(tmp_path, text))
    assert problem in str(refused.value), str(refused.value)


def test_a_missing_tokens_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="cannot read"):
        load_api_keys(tmp_path / "absent.toml")
