"""Issue 13's 500 classes, sent to every operation of a service that its OpenAPI says can receive them.

Each walker reads the service's own /openapi.json, so an operation added later is covered without a test edit.
The answer must be a 4xx problem+json naming the field; a walker returns how many operations it checked, so a
test can also fail when the walk found nothing (a renamed parameter would otherwise pass silently).
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.shared.web_controls import PUBLIC_TAG, concrete

PROBLEM = "application/problem+json"
NUL = "X\u0000Y"
# The audit's forged cursors: ["x"], [null], ["x","y"] (well-formed base64 JSON of the wrong types).
FORGED_CURSORS = ("WyJ4Il0", "W251bGxd", "WyJ4IiwieSJd")
# Out of range once converted to UTC, and a number where an instant is expected.
BAD_INSTANTS = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0.5")


async def spec_of(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/openapi.json")).json()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"} and PUBLIC_TAG not in op.get("tags", []):
                found.append((method.upper(), path, op))
    return found


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    for union in ("anyOf", "oneOf"):
        if union in schema:
            variants = [_resolve(spec, v) for v in schema[union] if v.get("type") != "null"]
            return variants[0] if variants else schema
    return schema


def nul_body(spec: dict[str, Any], schema: dict[str, Any], loc: str, depth: int = 0) -> tuple[Any, list[str]]:
    """A body holding NUL in every free-text string (nested objects and lists included) and the fields hit."""
    schema = _resolve(spec, schema)
    if depth > 4:
        return None, []
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        value: dict[str, Any] = {}
        fields: list[str] = []
        for name, sub in schema.get("properties", {}).items():
            v, f = nul_body(spec, sub, f"{loc}.{name}", depth + 1)
            if v is not None:
                value[name] = v
                fields += f
        return (value, fields) if fields else (None, [])
    if kind == "array" and "items" in schema:
        if _resolve(spec, schema["items"]).get("type") == "string":
            # A list of strings is one field: its check names the list (body.rws), not the item.
            item, _ = nul_body(spec, schema["items"], loc, depth + 1)
            return ([item], [loc]) if item is not None else (None, [])
        v, f = nul_body(spec, schema["items"], f"{loc}.0", depth + 1)
        return ([v], f) if v is not None else (None, [])
    if kind == "string" and not {"enum", "const", "format"} & schema.keys():
        return NUL, [loc]
    return None, []


def _assert_problem(r: httpx.Response, context: object) -> list[dict[str, Any]]:
    assert 400 <= r.status_code < 500, (context, r.status_code, r.text)
    assert r.headers["content-type"] == PROBLEM, (context, r.headers)
    errors: list[dict[str, Any]] = r.json().get("errors", [])
    return errors


async def nul_everywhere(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """Every JSON body with NUL in each of its free-text fields: 422 naming every one of them."""
    spec = await spec_of(client)
    checked = 0
    for method, path, op in _operations(spec):
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        body, fields = nul_body(spec, content["application/json"]["schema"], "body")
        if body is None:
            continue
        r = await client.request(method, concrete(path), json=body, headers={**headers, "If-Match": '"1"'})
        assert r.status_code == 422, (method, path, r.status_code, r.text)
        named = {e["field"] for e in _assert_problem(r, (method, path))}
        assert set(fields) <= named, (method, path, set(fields) - named)
        checked += 1
    return checked


def _query_params(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}


async def query_refused(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    name: str,
    values: tuple[str, ...],
    *,
    fill: dict[str, str] | None = None,
    found_first: set[int] = frozenset({422}),  # type: ignore[assignment]
    valid: frozenset[tuple[str, str]] = frozenset(),
) -> int:
    """Every GET taking query parameter `name` answers each of `values` with a 4xx naming `query.<name>`.

    `valid` lists (path, value) pairs that are a real position of that list (["x"] on a list keyed by a text
    code is one: it answers 200). `fill` gives the service's other required query parameters. An operation under a path parameter may answer
    404 for the made-up id before it reads the parameter when `found_first` allows it; never a 5xx.
    """
    spec = await spec_of(client)
    checked = 0
    for method, path, op in _operations(spec):
        params = _query_params(op)
        if method != "GET" or name not in params:
            continue
        extra = {k: v for k, v in (fill or {}).items() if k in params and params[k].get("required")}
        for value in values:
            r = await client.get(concrete(path), params={**extra, name: value}, headers=headers)
            if (path, value) in valid:
                assert r.status_code == 200, (path, value, r.status_code, r.text)
                continue
            errors = _assert_problem(r, (path, name, value))
            if r.status_code == 404 and "{" in path and 404 in found_first:
                continue
            assert r.status_code == 422, (path, value, r.status_code, r.text)
            assert f"query.{name}" in {e["field"] for e in errors}, (path, value, errors)
        checked += 1
    return checked


async def long_idempotency_key(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """Every POST taking a key, with a 9,000-character, a spaced or an empty Idempotency-Key: 400 naming the header
    (a malformed key is never ignored, and an empty one is no "no key")."""
    checked = 0
    for method, path, op in _operations(await spec_of(client)):
        declared = [
            p for p in op.get("parameters", []) if p["in"] == "header" and p["name"] == "Idempotency-Key"
        ]
        if method != "POST" or not declared:
            continue  # a read-only POST takes no key (shared.web.idempotency.READ_ONLY_POST)
        for key in ("k" * 9000, "k" * 256, "bad key", ""):
            r = await client.post(concrete(path), content=b"{}", headers={**headers, "Idempotency-Key": key})
            assert r.status_code == 400, (path, r.status_code, r.text)
            assert [e["field"] for e in _assert_problem(r, path)] == ["header.Idempotency-Key"]
        checked += 1
    return checked


async def nul_in_every_query(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """Every query parameter of every GET with NUL in it: 422 naming that parameter (it is never sent to SQL)."""
    checked = 0
    for method, path, op in _operations(await spec_of(client)):
        if method != "GET":
            continue
        for name in _query_params(op):
            r = await client.get(concrete(path), params={name: NUL}, headers=headers)
            assert r.status_code == 422, (path, name, r.status_code, r.text)
            assert f"query.{name}" in {e["field"] for e in _assert_problem(r, (path, name))}, (path, name)
            checked += 1
    return checked
