"""Issue 13's retry test: every POST of a service sent again with the same Idempotency-Key, right after the first
answer and eight at once.

The walk reads the service's own /openapi.json, so a POST added later is retried without a test edit: a service's
test gives a `Builder` for the operations it can make succeed (a fresh request each call, its prerequisites made
first without a key); any other POST is sent as a made-up request, whose first answer (404, 422, ...) must be
replayed just the same. What must hold, per operation:

- the first answer has no `Idempotent-Replayed`; eight retries sent one after the other right after it each get
  that answer again, byte for byte, with `Idempotent-Replayed: true` (never a 409: the first request is over);
- of eight requests sent at once with a new key, exactly one runs; every other one either replays its answer or
  is a 409 `idempotency-key-in-progress` with a `Retry-After` in seconds, and a retry after the burst replays;
- the effect happens once: a burst adds as many outbox rows as one request of the same kind, and one stored key;
- the operation's OpenAPI declares the key, `Idempotent-Replayed` and (when sent) `ETag` on the answer's status,
  and `Retry-After` on its 409.

A read-only POST (a computation or a search, `shared.web.idempotency.READ_ONLY_POST`) declares no key: sent
again, with or without one, it is simply answered again (never marked replayed), it changes nothing and stores
no key; its answer is the same each time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.testing.plugin import unique
from tests.shared.web_controls import PUBLIC_TAG, concrete

IN_PROGRESS = "https://kencana.bkkbn.go.id/problems/idempotency-key-in-progress"
# Headers a replay does not repeat from the first answer: they belong to one delivery.
PER_DELIVERY = {"date", "server", "x-request-id", "idempotent-replayed"}


def _per_delivery(header: str) -> bool:
    return header in PER_DELIVERY or header.startswith("ratelimit-")


@dataclass
class Call:
    """One request of an operation: the concrete path, a JSON body or raw content, extra headers."""

    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


Builder = Callable[[], Awaitable[Call]]


@dataclass
class Outcome:
    """What the walk saw for one operation."""

    path: str
    first_status: int
    burst_statuses: list[int]
    outbox_added_once: int
    outbox_added_by_burst: int


async def _send(client: httpx.AsyncClient, call: Call, auth: dict[str, str], key: str) -> httpx.Response:
    return await client.post(
        call.path,
        json=call.json if call.content is None else None,
        content=call.content,
        params=call.params or None,
        headers={**auth, **call.headers, "Idempotency-Key": key},
    )


def _in_progress(r: httpx.Response) -> bool:
    return (
        r.status_code == 409
        and r.headers.get("content-type", "").startswith("application/problem+json")
        and (r.json().get("type") == IN_PROGRESS)
    )


def assert_replay(first: httpx.Response, again: httpx.Response, context: object) -> None:
    """`again` is the stored `first`: same status, same bytes, same headers, marked as replayed."""
    assert again.headers.get("idempotent-replayed") == "true", (context, again.status_code, again.text)
    assert (again.status_code, again.content) == (first.status_code, first.content), (context, again.text)
    sent = {k: v for k, v in first.headers.items() if not _per_delivery(k)}
    replayed = {k: v for k, v in again.headers.items() if not _per_delivery(k)}
    assert replayed == sent, (context, sent, replayed)


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"select count(*) from {table}"))).scalar_one())  # noqa: S608


def _takes_key(operation: dict[str, Any]) -> bool:
    return any(
        p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])
    )


async def _answered_again(
    client: httpx.AsyncClient, engine: AsyncEngine, caller: dict[str, str], call: Call, path: str, burst: int
) -> Outcome:
    """A read-only POST sent again and at once with one key: each answered afresh, alike, and nothing kept."""
    key = unique("idem-")
    before, stored_before = await _count(engine, "outbox"), await _count(engine, "idempotency_key")
    first = await _send(client, call, caller, key)
    assert first.status_code < 500, (path, first.status_code, first.text)
    answers = [await _send(client, call, caller, key)]
    answers += await asyncio.gather(*(_send(client, call, caller, key) for _ in range(burst)))
    for r in answers:
        assert "idempotent-replayed" not in r.headers, (path, "a read-only POST is answered, not replayed")
        assert (r.status_code, r.content) == (first.status_code, first.content), (path, r.text)
    assert await _count(engine, "idempotency_key") == stored_before, (path, "a read-only POST stores no key")
    added = await _count(engine, "outbox") - before
    assert added == 0, (path, added)
    return Outcome(path, first.status_code, sorted(r.status_code for r in answers), added, added)


def _assert_declared(operation: dict[str, Any], first: httpx.Response, path: str) -> None:
    """The OpenAPI says what was sent: the key parameter, the replay header, ETag, 409's Retry-After."""
    assert any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation["parameters"]), path
    headers = operation["responses"][str(first.status_code)].get("headers", {})
    assert "Idempotent-Replayed" in headers, (path, first.status_code)
    if "etag" in first.headers:
        assert "ETag" in headers, (path, first.status_code, "ETag sent but not declared")
    assert "Retry-After" in operation["responses"]["409"]["headers"], path


def posts(spec: dict[str, Any]) -> list[str]:
    """Every POST path of the service except the public operations."""
    return [
        path
        for path, item in spec["paths"].items()
        if "post" in item and PUBLIC_TAG not in item["post"].get("tags", [])
    ]


def _made_up(path: str) -> Builder:
    async def build() -> Call:
        return Call(concrete(path), json={})

    return build


async def retry_every_post(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    auth: Callable[[], dict[str, str]],
    builders: dict[str, Builder],
    *,
    burst: int = 8,
) -> list[Outcome]:
    """Run the checks of the module docstring on every POST of the service; one `Outcome` per operation."""
    spec = (await client.get("/openapi.json")).json()
    outcomes = []
    for path in posts(spec):
        build = builders.get(path, _made_up(path))
        # A caller of its own per operation: keys are per caller, and the walk stays inside one's rate budget.
        caller = auth()
        if not _takes_key(spec["paths"][path]["post"]):
            outcomes.append(await _answered_again(client, engine, caller, await build(), path, burst))
            continue
        # Once: the first answer, then eight retries one after the other as soon as each answer is in.
        call = await build()
        key = unique("idem-")
        before = await _count(engine, "outbox")
        first = await _send(client, call, caller, key)
        assert first.status_code < 500, (path, first.status_code, first.text)
        assert "idempotent-replayed" not in first.headers, path
        _assert_declared(spec["paths"][path]["post"], first, path)
        added_once = await _count(engine, "outbox") - before
        for _ in range(burst):
            assert_replay(first, await _send(client, call, caller, key), path)
        assert await _count(engine, "outbox") - before == added_once, path

        # At once: a fresh request of the same kind, eight times with one new key.
        call = await build()
        key = unique("idem-")
        before, stored_before = await _count(engine, "outbox"), await _count(engine, "idempotency_key")
        answers = await asyncio.gather(*(_send(client, call, caller, key) for _ in range(burst)))
        ran = [r for r in answers if "idempotent-replayed" not in r.headers and not _in_progress(r)]
        assert len(ran) == 1, (path, [(r.status_code, r.text[:200]) for r in answers])
        original = ran[0]
        assert original.status_code == first.status_code, (path, original.text, first.text)
        for r in answers:
            if _in_progress(r):
                assert r.headers["retry-after"].isdigit(), (path, r.headers)
                assert r.json()["errors"][0]["field"] == "header.Idempotency-Key"
            elif r is not original:
                assert_replay(original, r, path)
        assert_replay(original, await _send(client, call, caller, key), path)
        added_by_burst = await _count(engine, "outbox") - before
        assert added_by_burst == added_once, (path, added_once, added_by_burst)
        assert await _count(engine, "idempotency_key") - stored_before == 1, path
        outcomes.append(
            Outcome(
                path, first.status_code, sorted(r.status_code for r in answers), added_once, added_by_burst
            )
        )
    return outcomes
