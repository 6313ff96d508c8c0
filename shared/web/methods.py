"""405 Method Not Allowed with the resource's complete `Allow` (RFC 9110 §15.5.6), for every service.

Starlette answers 405 for the first route whose path matches, listing only that route's methods: a resource
served by two routes (GET in one router, POST in another) listed half of them, and a method missing on a fixed
path such as `/v1/targets/summary` fell through to the parameterised `/v1/targets/{target_id}` and was answered
422 (not a UUID). Here a resource is a path template: its methods are those of every route with that template.
A request whose method the resource does not serve gets 405 and `Allow` listing all of them when

- the first template matching the path (in the router's order) is a fixed path (no parameters): the request
  names that resource, whatever later templates would match; or
- no matching template serves the method.

Otherwise (a later parameterised template serves it) the router decides, as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.web.problems import problem_response


@dataclass(frozen=True)
class Resource:
    """A path template and every method its routes serve."""

    template: str
    path_regex: re.Pattern[str]
    methods: frozenset[str]

    @property
    def fixed(self) -> bool:
        return "{" not in self.template


def resources(routes: Sequence[Any]) -> list[Resource]:
    """The app's path templates in the router's order, each with the union of its routes' methods."""
    order: list[str] = []
    regex: dict[str, re.Pattern[str]] = {}
    methods: dict[str, set[str]] = {}
    for context in iter_route_contexts(routes):
        template, path_regex = context.path_format, getattr(context, "path_regex", None)
        if template is None or path_regex is None or not context.methods:
            continue  # mounts and websocket routes have no methods to list
        if template not in methods:
            order.append(template)
            regex[template] = path_regex
            methods[template] = set()
        methods[template] |= set(context.methods)
    return [Resource(t, regex[t], frozenset(methods[t])) for t in order]


def not_allowed(table: Sequence[Resource], path: str, method: str) -> Resource | None:
    """The resource that refuses `method` on `path` (answer 405 with its methods), or None to route as usual."""
    matching = [r for r in table if r.path_regex.match(path)]
    if not matching or method in matching[0].methods:
        return None
    if matching[0].fixed or not any(method in r.methods for r in matching[1:]):
        return matching[0]
    return None


def allow_header(resource: Resource) -> str:
    return ", ".join(sorted(resource.methods))


class MethodNotAllowedMiddleware:
    """Answers 405 problem+json with the complete `Allow` before routing (and before authentication)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._table: list[Resource] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._table is None:  # built on the first request: every router is included by then
            self._table = resources(scope["app"].routes)
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
            path = path[len(root) :] or "/"
        resource = not_allowed(self._table, path, scope["method"])
        if resource is None:
            await self.app(scope, receive, send)
            return
        response = problem_response(
            405,
            "Method not allowed",
            f"{scope['method']} is not allowed here; allowed: {allow_header(resource)}",
            code="http-405",
            instance=scope.get("path"),
            headers={"Allow": allow_header(resource)},
        )
        await response(scope, receive, send)
