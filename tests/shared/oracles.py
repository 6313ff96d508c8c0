"""Issue 12 item 2 for every service: a record of another region must answer exactly like no record.

`compare_everywhere` walks a service's OpenAPI and sends every operation that takes an id (in its path, or in
its example body) twice with the same token of another region: once with the ids of real records, once with
ids nobody holds. Status and body (less the correlation id and the `instance` path, which carries the id) must
be equal, no answer may be a 5xx, and the answers may not carry any of the personal values given.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx

METHODS = ("get", "post", "patch", "put", "delete")


def example_body(spec: dict[str, Any], operation: dict[str, Any]) -> Any:
    """The first example of the operation's JSON body schema (None without a JSON body)."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    schema = content["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return copy.deepcopy((schema.get("examples") or [{}])[0])


def with_ids(value: Any, ids: dict[str, str]) -> tuple[Any, bool]:
    """The value with every field named in `ids` replaced by that id; whether any was."""
    if isinstance(value, dict):
        out, found = {}, False
        for key, item in value.items():
            if key in ids and (item is None or isinstance(item, str)):
                out[key], found = ids[key], True
            else:
                out[key], inner = with_ids(item, ids)
                found = found or inner
        return out, found
    if isinstance(value, list):
        items = [with_ids(v, ids) for v in value]
        return [v for v, _ in items], any(f for _, f in items)
    return value, False


def comparable(r: httpx.Response) -> tuple[int, Any]:
    """Status and body, less what differs between any two requests (correlation id, instance path)."""
    try:
        body = r.json()
    except ValueError:
        return r.status_code, r.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("correlation_id", "instance")}
    return r.status_code, body


async def compare_everywhere(
    client: httpx.AsyncClient,
    *,
    real: dict[str, str],
    nobody: dict[str, str],
    headers: dict[str, str],
    personal: list[str],
) -> dict[int, list[str]]:
    """Compare every id-taking operation's answers for `real` and `nobody` ids (keyed by parameter or field
    name); the operations compared, by status (the figures docs/security.md quotes)."""
    spec = (await client.get("/openapi.json")).json()
    compared: dict[int, list[str]] = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            params = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            body = example_body(spec, operation)
            _, body_has_ids = with_ids(body, real)
            if not any(p in real for p in params) and not body_has_ids:
                continue
            answers = []
            for ids in (real, nobody):
                url = path
                for name in params:
                    url = url.replace("{" + name + "}", ids.get(name, "x"))
                sent, _ = with_ids(body, ids)
                answers.append(await client.request(method.upper(), url, json=sent, headers=headers))
            label = f"{method.upper()} {path}"
            assert answers[0].status_code < 500, (label, answers[0].text)
            assert comparable(answers[0]) == comparable(answers[1]), (label, answers[0].text, answers[1].text)
            for value in personal:
                assert value not in answers[0].text, (label, value, answers[0].text)
            compared.setdefault(answers[0].status_code, []).append(label)
    return compared
