"""HTTP access to the four services, exactly as a partner system would use them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.auth import issue_dev_token

SERVICES = ("registry", "uppka", "dashat", "reporting")
ADMIN_SCOPES = [
    "registry:read",
    "registry:write",
    "registry:import",
    "registry:nik:search",
    "uppka:read",
    "uppka:write",
    "dashat:read",
    "dashat:write",
    "reporting:read",
]
KADER_SCOPES = ["registry:read", "registry:write"]
# Transient answers worth another try: the services restart, or a keyed request is still running.
RETRY_STATUSES = {409, 502, 503, 504}


class DemoError(RuntimeError):
    """A step failed in a way the demo cannot work around; the message says which call and why."""


def problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"
    errors = body.get("errors") or []
    rules = ", ".join(f"{e.get('field')}: {e.get('rule')}" for e in errors[:3])
    return f"{response.status_code} {body.get('title') or body.get('detail')}" + (
        f" ({rules})" if rules else ""
    )


def rule_of(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    errors = body.get("errors") or []
    return str(errors[0].get("rule")) if errors else None


@dataclass
class Tally:
    """Created versus reused, per kind of record: the second run should create nothing."""

    created: dict[str, int] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)
    failed: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, created: bool) -> None:
        bucket = self.created if created else self.reused
        bucket[kind] = bucket.get(kind, 0) + 1

    def add_many(self, kind: str, *, created: bool, count: int) -> None:
        bucket = self.created if created else self.reused
        bucket[kind] = bucket.get(kind, 0) + count

    def fail(self, kind: str, why: str) -> None:
        self.failed.setdefault(kind, []).append(why)


class Api:
    """One client per service, bounded concurrency, dev tokens for an admin and a kader."""

    def __init__(self, urls: dict[str, str], *, concurrency: int = 16, kader_region: str = "15.71") -> None:
        timeout = httpx.Timeout(30.0, connect=5.0)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.urls = urls
        self.clients = {
            svc: httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) for svc, url in urls.items()
        }
        self.gate = asyncio.Semaphore(concurrency)
        self.admin_token = issue_dev_token(scopes=ADMIN_SCOPES, sub="demo-admin", ttl_seconds=4 * 3600)
        self.kader_region = kader_region
        self.kader_token = issue_dev_token(
            scopes=KADER_SCOPES, region=kader_region, sub="demo-kader", ttl_seconds=4 * 3600
        )
        self.tally = Tally()

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.clients.values()))

    async def call(
        self,
        svc: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        key: str | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        attempts: int = 6,
    ) -> httpx.Response:
        """One request; network errors and 502-504 are retried with backoff, so are 409s of a keyed request
        still in progress, and a 429 after its Retry-After. Everything else is the caller's to judge."""
        sent = {"Authorization": f"Bearer {token or self.admin_token}", **(headers or {})}
        if key:
            sent["Idempotency-Key"] = key
        delay = 0.2
        for attempt in range(attempts):
            try:
                async with self.gate:
                    response = await self.clients[svc].request(
                        method, path, json=json, content=content, params=params, headers=sent
                    )
            except httpx.TransportError as exc:
                if attempt == attempts - 1:
                    raise DemoError(f"{svc} {method} {path}: {exc!r} (is the service running?)") from exc
            else:
                in_progress = (
                    response.status_code == 409 and rule_of(response) == "idempotency-key-in-progress"
                )
                throttled = response.status_code == 429
                if response.status_code not in RETRY_STATUSES - {409} and not in_progress and not throttled:
                    return response
                if attempt == attempts - 1:
                    return response
                if throttled:
                    # The client's budget is spent: come back when the service says (Retry-After, seconds).
                    await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 60.0))
                    continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")

    async def get(self, svc: str, path: str, **kw: Any) -> Any:
        r = await self.call(svc, "GET", path, **kw)
        if r.status_code != 200:
            raise DemoError(f"{svc} GET {path}: {problem(r)}")
        return r.json()

    async def all_pages(
        self, svc: str, path: str, params: dict[str, Any] | None = None, token: str | None = None
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        query = {**(params or {}), "limit": 200}
        while True:
            page = await self.get(svc, path, params=query, token=token)
            items.extend(page["items"])
            if not page.get("next_cursor"):
                return items
            query["cursor"] = page["next_cursor"]

    async def create(
        self,
        kind: str,
        svc: str,
        path: str,
        body: dict[str, Any],
        *,
        key: str | None,
        lookup: Callable[[], Awaitable[dict[str, Any] | None]] | None = None,
        token: str | None = None,
    ) -> dict[str, Any] | None:
        """Create once: a replayed key or a natural-key conflict (409) finds the existing record instead.

        A keyed request sent again with another body (the demo ran on another day, so relative dates moved)
        is a 422 `idempotency-key-reused`; that, too, means the record exists.
        """
        r = await self.call(svc, "POST", path, json=body, key=key, token=token)
        if r.status_code in (200, 201):
            self.tally.add(
                kind, created=r.headers.get("idempotent-replayed") != "true" and r.status_code == 201
            )
            return dict(r.json())
        reused = r.status_code == 409 or rule_of(r) == "idempotency-key-reused"
        if reused and lookup is not None:
            found = await lookup()
            if found is not None:
                self.tally.add(kind, created=False)
                return found
        self.tally.fail(kind, f"POST {path}: {problem(r)}")
        return None


async def poll(
    probe: Callable[[], Awaitable[Any]], *, timeout: float, interval: float = 0.1
) -> tuple[Any, float]:
    """Call `probe` until it returns something truthy; returns it with the seconds waited, or (None, t)."""
    started = time.monotonic()
    while True:
        result = await probe()
        waited = time.monotonic() - started
        if result:
            return result, waited
        if waited > timeout:
            return None, waited
        await asyncio.sleep(interval)
