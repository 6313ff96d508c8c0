"""What every service's OpenAPI says about the shared web kit, added to the generated document once.

- `ETag` on the success response of every operation whose endpoint sets it (`shared.web.etag.set_etag`): the
  endpoints set it themselves, so the route table is the one place that knows which do.
- 400 on every operation that takes a body: a body that is not what its `Content-Type` says (bytes that are not
  UTF-8 JSON) is refused before validation.
- `TEXT_PATTERN` on every free-text string a request takes (path and query parameters, bodies): control and
  direction-override characters are refused (422) everywhere, so the schema says so.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from shared.web.problems import PROBLEM_JSON
from shared.web.schemas import TEXT_PATTERN

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


# A string with any of these already says what it holds (a date, a UUID, an enum, its own pattern).
_SPECIFIC = ("pattern", "format", "enum", "const", "contentMediaType", "contentEncoding")
_SUBSCHEMAS = ("items", "additionalProperties", "not")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def _declare_text(node: Any, components: dict[str, Any], seen: set[str]) -> None:
    """Add `TEXT_PATTERN` to every free-text string schema under `node`, following `$ref`s once each."""
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        if name not in seen:
            seen.add(name)
            _declare_text(components.get(name), components, seen)
        return
    branches = node.get("anyOf") or ()
    for key in ("pattern", "enum"):
        if key in node and "type" not in node and branches:
            # An optional parameter (`str | None`) carries its pattern or enum beside the anyOf: it belongs to
            # the string.
            value = node.pop(key)
            for branch in branches:
                if branch.get("type") == "string":
                    branch.setdefault(key, value)
    if node.get("type") == "string" and not any(key in node for key in _SPECIFIC):
        node["pattern"] = TEXT_PATTERN
    for key in _SUBSCHEMAS:
        _declare_text(node.get(key), components, seen)
    for key in _SUBSCHEMA_LISTS:
        for sub in node.get(key) or ():
            _declare_text(sub, components, seen)
    for sub in (node.get("properties") or {}).values():
        _declare_text(sub, components, seen)


def declare_text_patterns(schema: dict[str, Any]) -> None:
    """`TEXT_PATTERN` on the strings requests carry: path/query parameters and request bodies (not headers:
    If-Match and Idempotency-Key have patterns of their own, and HTTP carries no control characters there)."""
    components = schema.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") in ("path", "query"):
                    _declare_text(parameter.get("schema"), components, seen)
            for media in operation.get("requestBody", {}).get("content", {}).values():
                _declare_text(media.get("schema"), components, seen)
