"""Goal (issue 14, item 7): the parsers that see attacker-chosen bytes first never crash and
never answer anything but their documented refusal — a request body of any bytes decodes or is
a 400/413 (`InvalidArgumentError` / `PayloadTooLargeError`), and any `Authorization`,
node-credential or caller header either authenticates or is a 401 `UnauthenticatedError`.
Method: hypothesis over arbitrary bytes, JSON-shaped objects and header strings, against
`decode_body` for every request struct and `Authenticator.authenticate` with keys and an
HS256 JWT key configured."""

from __future__ import annotations

import json

import msgspec
import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftflow.api.access import Authenticator, UnauthenticatedError
from raftflow.api.api_keys import load_api_keys
from raftflow.api.errors import InvalidArgumentError, PayloadTooLargeError
from raftflow.api.jwt_auth import JwtSettings, JwtVerifier
from raftflow.api.principals import CALLER_HEADER
from raftflow.api.validation import decode_body
from raftflow.cluster.node_credential import NODE_CREDENTIAL_HEADER, node_credential
from raftflow.protocol import http_bodies

BODIES = sorted((t for t in vars(http_bodies).values()
                 if isinstance(t, type) and issubclass(t, msgspec.Struct)
                 and t.__name__.endswith("Request")), key=lambda t: t.__name__)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=20)


@pytest.mark.parametrize("body_type", BODIES, ids=lambda t: t.__name__)
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300)
       | st.dictionaries(st.text(max_size=20), json_values, max_size=6).map(
           lambda d: json.dumps(d).encode()))
def test_any_body_decodes_or_is_a_documented_refusal(body_type: type, raw: bytes) -> None:
    try:
        decode_body(raw, body_type)
    except (InvalidArgumentError, PayloadTooLargeError) as refused:
        assert refused.http_status in (400, 413)


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Authenticator:
    directory = tmp_path_factory.mktemp("keys")
    (directory / "t.toml").write_text('[[token]]\nname = "a"\nkey = "k"\nroles = ["admin"]\n')
    (directory / "jwt.key").write_bytes(b"x" * 32)
    return Authenticator(node_credential=node_credential("s"),
                         api_keys=load_api_keys(directory / "t.toml"),
                         jwt=JwtVerifier(JwtSettings(hs256_secret_file=directory / "jwt.key")),
                         protect_metrics=False)


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200)
jwt_like = st.tuples(header_text, header_text, header_text).map(
    lambda parts: "eyJ" + ".".join(parts))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(authorization=st.none() | header_text | header_text.map(lambda t: "Bearer " + t)
       | jwt_like.map(lambda t: "Bearer " + t),
       credential=st.none() | header_text | st.just(node_credential("s")),
       caller=st.none() | header_text)
def test_any_credentials_authenticate_or_are_a_401(auth: Authenticator, authorization: str | None,
                                                   credential: str | None,
                                                   caller: str | None) -> None:
    headers = {name: value for name, value in (("Authorization", authorization),
                                               (NODE_CREDENTIAL_HEADER, credential),
                                               (CALLER_HEADER, caller)) if value is not None}
    try:
        principal = auth.authenticate(make_mocked_request("GET", "/", headers=headers))
    except UnauthenticatedError as refused:
        assert refused.http_status == 401 and refused.message
        return
    # Only the real key (scheme case and surrounding spaces aside), or the real node
    # credential, gets in.
    key_given = (authorization is not None and authorization[:7].lower() == "bearer "
                 and authorization[7:].strip() == "k")
    assert key_given or credential == node_credential("s"), principal


def test_bodies_cover_every_request_struct() -> None:
    assert len(BODIES) >= 14, [t.__name__ for t in BODIES]
