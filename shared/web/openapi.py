"""What every service's OpenAPI says about the shared web kit, added to the generated document once.

- `ETag` on the success response of every operation whose endpoint sets it (`shared.web.etag.set_etag`): the
  endpoints set it themselves, so the route table is the one place that knows which do.
- 400 on every operation that takes a body: a body that is not what its `Content-Type` says (bytes that are not
  UTF-8 JSON) is refused before validation.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from shared.web.problems import PROBLEM_JSON

ETAG_HEADER: dict[str, Any] = {
    "description": "Version of the resource (strong, quoted); send it back as If-Match to change it",
    "schema": {"type": "string", "pattern": '^"[0-9]+"$'},
}
UNPARSEABLE_BODY: dict[str, Any] = {
    "description": "The body cannot be parsed as its Content-Type says (e.g. not UTF-8 JSON)",
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def sets_etag(route: APIRoute) -> bool:
    """Whether the endpoint calls `set_etag` (a name its code refers to)."""
    code = getattr(route.endpoint, "__code__", None)
    return code is not None and "set_etag" in code.co_names


def complete(app: FastAPI, schema: dict[str, Any]) -> None:
    """Add the ETag headers and the 400s to the generated document (in place)."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema or context.path_format is None:
            continue
        item = schema.get("paths", {}).get(context.path_format, {})
        for method in context.methods or ():
            operation = item.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if sets_etag(route):
                success = responses.setdefault(str(route.status_code or 200), {"description": "Success"})
                success.setdefault("headers", {})["ETag"] = ETAG_HEADER
            if "requestBody" in operation:
                # A copy each: later steps add to an operation's 400 description (the key, If-Match).
                responses.setdefault("400", copy.deepcopy(UNPARSEABLE_BODY))
