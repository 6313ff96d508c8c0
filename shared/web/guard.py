"""The route guard: authentication, the client's rate limit and authorisation before anything a route does.

FastAPI parses a JSON body before it runs any dependency, and runs dependencies in the order an endpoint
declares them, so a request without a token could be answered 422 (bad JSON) or 428 (If-Match missing) — and
learn about the endpoint — before it was asked who it is. The guard is a middleware in front of the routes: for
every request to a route whose dependencies include `current_principal` it answers, in this order and before
the idempotency replay, the body limit or the route's own machinery run:

1. 429 when the client (the token's `sub`, or the address of a request without a valid token) has spent its
   budget (it is counted first so that guessing tokens is throttled too);
2. 401 when the bearer token is missing, malformed, forged or expired;
3. 403 when the token lacks a scope the route requires (`require_scopes` anywhere in its dependencies);

then the route runs: preconditions (If-Match, Idempotency-Key, X-Purpose), then body and parameter validation.
Requests to routes without `current_principal` (health, readiness, metrics, the API docs), and to no route at
all, pass untouched: they are neither authenticated here nor limited.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import PRINCIPAL_SCOPE_KEY, Principal, TokenVerifier, current_principal, missing_scopes
from shared.errors import DomainError, Unauthorized
from shared.web.problems import problem_response
from shared.web.ratelimit import ClientLimiter


@dataclass(frozen=True)
class RouteNeeds:
    """What a route asks of its caller, read from its dependency tree once."""

    authenticated: bool
    scopes: frozenset[str]
    budgets: frozenset[str]


@dataclass(frozen=True)
class GuardedRoute:
    """A route in the router's order: how to recognise a request to it, and what it asks of the caller."""

    path_regex: re.Pattern[str]
    methods: frozenset[str]
    needs: RouteNeeds
    budgets: tuple[str, ...]


def _calls(dependant: Dependant) -> Iterator[object]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def route_needs(dependant: Dependant) -> RouteNeeds:
    """Whether a route authenticates, which scopes it requires and which rate-limit budgets it is marked with."""
    authenticated = False
    scopes: set[str] = set()
    budgets: set[str] = set()
    for call in _calls(dependant):
        if call is current_principal:
            authenticated = True
        scopes |= getattr(call, "required_scopes", frozenset())
        if (budget := getattr(call, "rate_limit_budget", None)) is not None:
            budgets.add(budget)
    return RouteNeeds(authenticated=authenticated, scopes=frozenset(scopes), budgets=frozenset(budgets))


def guarded_routes(routes: Sequence[Any], limiter: ClientLimiter | None) -> list[GuardedRoute | None]:
    """Every route of an app in the router's matching order: its guard, or None for a public one."""
    table: list[GuardedRoute | None] = []
    for context in iter_route_contexts(routes):
        dependant = getattr(context, "dependant", None)
        needs = route_needs(dependant) if isinstance(context.original_route, APIRoute) and dependant else None
        if needs is None or not needs.authenticated:
            regex = getattr(context, "path_regex", None)
            # A public route still takes its place in the order: a request it answers is not another's.
            table.append(None if regex is None else _public(regex, context.methods))
            continue
        budgets = limiter.budgets_for(needs.budgets, needs.scopes) if limiter is not None else ()
        table.append(GuardedRoute(context.path_regex, frozenset(context.methods or ()), needs, budgets))
    return table


def _public(regex: re.Pattern[str], methods: set[str] | None) -> GuardedRoute:
    return GuardedRoute(regex, frozenset(methods or ()), RouteNeeds(False, frozenset(), frozenset()), ())


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


def _match(table: list[GuardedRoute | None], scope: Scope) -> GuardedRoute | None:
    """The route the router will pick for this request (first full match, as Starlette does), if guarded."""
    path, method = _route_path(scope), scope["method"]
    for route in table:
        if route is None or not route.path_regex.match(path):
            continue
        if route.methods and method not in route.methods:
            continue  # the router would answer 405 unless a later route takes the method
        return route if route.needs.authenticated else None
    return None


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def _client_of(scope: Scope, principal: Principal | None) -> str:
    if principal is not None:
        return "sub:" + principal.sub
    client = scope.get("client")
    return "address:" + (str(client[0]) if client else "unknown")


async def _authenticate(scope: Scope) -> tuple[Principal | None, DomainError | None]:
    token = _bearer_token(scope)
    if token is None:
        return None, Unauthorized("bearer token required")
    verifier: TokenVerifier = scope["app"].state.token_verifier
    try:
        return await verifier.verify(token), None
    except DomainError as exc:
        return None, exc


class TooManyRequests(DomainError):
    """The client has spent its budget; `Retry-After` says when to come back."""

    status = 429
    code = "too-many-requests"
    title = "Too many requests"


async def _refuse(
    scope: Scope, receive: Receive, send: Send, exc: DomainError, headers: list[tuple[bytes, bytes]]
) -> None:
    extra = dict(exc.extra)
    if exc.errors:
        extra["errors"] = exc.errors
    response = problem_response(
        exc.status, exc.title, exc.detail, code=exc.code, instance=scope.get("path"), extra=extra
    )
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    response.raw_headers.extend(headers)
    await response(scope, receive, send)


class RouteGuardMiddleware:
    """Authenticates, limits and authorises requests to authenticated routes before anything else runs."""

    def __init__(self, app: ASGIApp, *, limiter: ClientLimiter | None) -> None:
        self.app = app
        self.limiter = limiter
        self._table: list[GuardedRoute | None] | None = None

    def _routes(self, scope: Scope) -> list[GuardedRoute | None]:
        # Built on the first request: every router is included by then (the app factory has returned).
        if self._table is None:
            self._table = guarded_routes(scope["app"].routes, self.limiter)
        return self._table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = _match(self._routes(scope), scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        principal, failure = await _authenticate(scope)
        headers: list[tuple[bytes, bytes]] = []
        if self.limiter is not None:
            quota = await self.limiter.spend(_client_of(scope, principal), route.budgets)
            headers = quota.headers()
            if not quota.allowed:
                wait = max(quota.reset_seconds, 1)
                refused = TooManyRequests(
                    f"rate limit of {quota.limit} requests per {quota.window_seconds} s reached "
                    f"({quota.budget} budget); retry in {wait} s",
                    extra={"budget": quota.budget, "retry_after_seconds": wait},
                )
                await _refuse(scope, receive, send, refused, headers)
                return
        if failure is not None or principal is None:
            await _refuse(scope, receive, send, failure or Unauthorized("bearer token required"), headers)
            return
        try:
            missing_scopes(principal, route.needs.scopes)
        except DomainError as exc:
            await _refuse(scope, receive, send, exc, headers)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        if not headers:
            await self.app(scope, receive, send)
            return

        async def send_with_quota(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_quota)
