"""Who may call which route: authentication of bearer tokens and node credentials, and each
route's rule (`raftflow node --auth-tokens`, JWT flags).

Every route is registered with a `Rule` (app.py); a route without one is refused, so a route
added later cannot be open by omission. The middleware authenticates the caller and applies the
route's rule before the handler runs (and before the namespace check, so an unauthenticated
caller cannot probe which namespaces exist):
- no credentials, or bad ones: 401 `unauthenticated` (with `WWW-Authenticate: Bearer`);
- valid ones without the role the rule needs: 403 `permission_denied`.
A task's completion names its namespace only inside its signed task token: its rule asks for
a signed-in caller, and the handler calls `require` with the token's namespace once the token
is checked (task_handlers.py, query_handlers.py).

Credentials, tried in this order:
1. the node credential (cluster/node_credential.py): a node of this cluster. A call another
   node forwards carries its caller's principal in `CALLER_HEADER` and is authorized as that
   caller; a node's own call (no caller header) may do anything;
2. `Authorization: Bearer <key>` that the tokens file holds;
3. `Authorization: Bearer <JWT>` that a configured key verifies (jwt_auth.py).
With auth off (no tokens file, no JWT key) none of this runs: the middleware is not installed.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from enum import Enum

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from raftflow.api.api_keys import ApiKeys
from raftflow.api.jwt_auth import JwtError, JwtVerifier, looks_like_jwt
from raftflow.api.principals import (
    CALLER_HEADER,
    NODE,
    Permission,
    Principal,
    decode_caller,
    encode_caller,
)
from raftflow.cluster.node_credential import NODE_CREDENTIAL_HEADER
from raftflow.protocol.errors import ErrorCode, RaftflowError

log = logging.getLogger(__name__)

PRINCIPAL_KEY = web.RequestKey("principal", Principal)
_BEARER = "bearer "


class UnauthenticatedError(RaftflowError):
    """401: no credentials, or ones no key of this node verifies."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UNAUTHENTICATED, message)


class PermissionDeniedError(RaftflowError):
    """403: the caller is known but holds no role that allows the call."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.PERMISSION_DENIED, message)


class RuleKind(Enum):
    OPEN = "anyone"
    METRICS = "anyone, or with --protect-metrics the metrics or admin role"
    SIGNED_IN = "any authenticated caller"
    ADMIN = "the admin role (or a node of the cluster)"
    NAMESPACE = "a role in the path's namespace"
    TASK = "a role in the namespace of the task the body's token names"


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may call one route."""

    kind: RuleKind
    # NAMESPACE and TASK: the permission needed there (None: any role in the namespace).
    permission: Permission | None = None


OPEN = Rule(RuleKind.OPEN)
METRICS = Rule(RuleKind.METRICS)
SIGNED_IN = Rule(RuleKind.SIGNED_IN)
ADMIN = Rule(RuleKind.ADMIN)
SEE_NAMESPACE = Rule(RuleKind.NAMESPACE)
READ = Rule(RuleKind.NAMESPACE, Permission.READ)
WRITE = Rule(RuleKind.NAMESPACE, Permission.WRITE)
WORK = Rule(RuleKind.NAMESPACE, Permission.WORK)
WORK_ON_TASK = Rule(RuleKind.TASK, Permission.WORK)
_ROLE_OF = {Permission.READ: "reader (or writer)", Permission.WRITE: "writer",
            Permission.WORK: "worker"}


class Authenticator:
    """The credentials one node accepts. `replace_keys` swaps the tokens file's keys (SIGHUP)."""

    def __init__(self, *, node_credential: str, api_keys: ApiKeys | None,
                 jwt: JwtVerifier | None, protect_metrics: bool) -> None:
        assert api_keys is not None or jwt is not None, "auth on needs keys or a JWT key"
        self._node_credential = node_credential.encode("ascii")
        self.api_keys = api_keys
        self._jwt = jwt
        self.protect_metrics = protect_metrics

    def replace_keys(self, api_keys: ApiKeys) -> None:
        self.api_keys = api_keys

    def authenticate(self, request: web.Request) -> Principal:
        """The caller of `request`; UnauthenticatedError says why there is none."""
        headers = request.headers
        credential = headers.get(NODE_CREDENTIAL_HEADER)
        if credential is not None:
            if not hmac.compare_digest(credential.encode("ascii", "replace"),
                                       self._node_credential):
                raise UnauthenticatedError("the node credential is not this cluster's")
            caller = headers.get(CALLER_HEADER)
            if caller is None:
                return NODE
            principal = decode_caller(caller)
            if principal is None:
                raise UnauthenticatedError(f"malformed {CALLER_HEADER} header")
            return principal
        authorization = headers.get("Authorization")
        if authorization is None:
            raise UnauthenticatedError("no credentials: send Authorization: Bearer <token>")
        if not authorization[:len(_BEARER)].lower() == _BEARER:
            raise UnauthenticatedError("the Authorization header must be 'Bearer <token>'")
        token = authorization[len(_BEARER):].strip()
        if self.api_keys is not None:
            principal = self.api_keys.principal_for(token)
            if principal is not None:
                return principal
        if self._jwt is not None and looks_like_jwt(token):
            try:
                return self._jwt.principal_for(token)
            except JwtError as error:
                raise UnauthenticatedError(str(error)) from None
        raise UnauthenticatedError("the bearer token is not a key this cluster knows"
                                   + (" nor a JWT" if self._jwt is not None else ""))


def authorize(principal: Principal, rule: Rule, namespace: str | None) -> None:
    """Raise PermissionDeniedError unless `principal` may make a call of `rule`."""
    match rule.kind:
        case RuleKind.OPEN | RuleKind.SIGNED_IN | RuleKind.TASK:
            return  # TASK: the handler checks, once it knows the namespace
        case RuleKind.METRICS:
            allowed = principal.metrics
            needed = "the metrics or admin role"
        case RuleKind.ADMIN:
            allowed = principal.admin
            needed = "the admin role"
        case RuleKind.NAMESPACE:
            assert namespace is not None, "a namespace rule on a route without {namespace}"
            require_in(principal, rule.permission, namespace)
            return
    if not allowed:
        raise PermissionDeniedError(f"{principal.name!r} may not make this call: it needs {needed}")


def require_in(principal: Principal, permission: Permission | None, namespace: str) -> None:
    allowed = (principal.may_see(namespace) if permission is None
               else principal.may(permission, namespace))
    if not allowed:
        needed = ("a role" if permission is None
                  else f"the {_ROLE_OF[permission]} role")
        raise PermissionDeniedError(
            f"{principal.name!r} may not make this call: it needs {needed} in namespace "
            f"{namespace!r} (or admin)")


def require(request: web.Request, permission: Permission, namespace: str) -> None:
    """A TASK rule's check, by its handler, once the task's namespace is known."""
    principal = request.get(PRINCIPAL_KEY)
    if principal is not None:  # None: auth is off on this node
        require_in(principal, permission, namespace)


def caller_headers(request: web.Request) -> dict[str, str]:
    """Headers that carry `request`'s caller to the node a call is forwarded to."""
    principal = request.get(PRINCIPAL_KEY)
    if principal is None or principal is NODE:
        return {}
    return {CALLER_HEADER: encode_caller(principal)}


def access_middleware(auth: Authenticator, rules: dict[web.AbstractRoute, Rule]) -> Middleware:
    """The middleware applying each route's rule (app.py gives every route one)."""

    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        match = request.match_info
        rule = rules.get(match.route)
        if rule is None:
            if match.http_exception is not None:
                return await handler(request)  # no such route: aiohttp's 404 or 405
            log.error("route %s has no access rule; refused", match.route)
            raise PermissionDeniedError("this route has no access rule")
        if rule.kind is RuleKind.OPEN or (rule.kind is RuleKind.METRICS
                                          and not auth.protect_metrics):
            return await handler(request)
        principal = auth.authenticate(request)
        authorize(principal, rule, match.get("namespace"))
        request[PRINCIPAL_KEY] = principal
        return await handler(request)

    return check_access
