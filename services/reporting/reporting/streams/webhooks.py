"""The webhook deliverer: due deliveries POSTed as CloudEvents (HTTP binding, structured mode), signed per
Standard Webhooks, retried with exponential backoff and jitter, parked after the last attempt.

Deliveries are rows (reporting/streams/models.py), so they survive a restart: a claim leases a delivery for
the request timeout plus a margin, and a deliverer that dies mid-request leaves it due again when the lease ends.
Per subscription and subject, a delivery waits while an earlier one is pending (repository.claim_due).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reporting.config import Settings
from reporting.streams import domain
from reporting.streams import repository as repo
from shared.db import utcnow
from shared.logging import describe_error, get_logger

log = get_logger(__name__)

DELIVERIES = Counter(
    "kencana_stream_webhook_deliveries_total", "Webhook attempts by outcome", ["consumer", "outcome"]
)
PENDING = Gauge("kencana_stream_webhook_pending", "Webhook deliveries waiting", ["consumer"])
PARKED = Gauge(
    "kencana_stream_webhook_parked", "Webhook deliveries parked after the last attempt", ["consumer"]
)
LAG = Gauge("kencana_stream_webhook_lag_seconds", "Age of the oldest pending webhook delivery", ["consumer"])
HELD = Gauge("kencana_stream_events_held", "Curated events held while the consumer is paused", ["consumer"])
UNPUBLISHED = Gauge(
    "kencana_stream_topic_unpublished", "Curated events not yet on the consumer's topic", ["consumer"]
)
FAILED = Gauge("kencana_stream_webhook_failed_attempts", "Failed webhook attempts so far", ["consumer"])

# What a claim adds to the request timeout before a delivery is due again (the response's bookkeeping).
_LEASE_MARGIN_SECONDS = 30.0
_ERROR_CHARS = 300

Resolver = Callable[[str], Any]


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        client: httpx.AsyncClient | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.webhook_timeout_seconds), follow_redirects=False
        )
        self._own_client = client is None
        from reporting.streams.service import resolve

        self.resolve = resolver or resolve
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def deliver_due(self) -> int:
        """One round: claim what is due (committed at once), POST it concurrently, record every outcome."""
        lease = timedelta(seconds=self.settings.webhook_timeout_seconds + _LEASE_MARGIN_SECONDS)
        async with self.sessionmaker() as session, session.begin():
            claimed = await repo.claim_due(session, self.settings.webhook_concurrency, lease)
        if claimed:
            await asyncio.gather(*(self._attempt(d) for d in claimed))
        return len(claimed)

    async def _attempt(self, delivery: dict[str, Any]) -> None:
        started = utcnow()
        t0 = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            address, refusal = await self._checked_address(delivery["url"])
            if refusal is not None:
                error = f"target refused: {refusal}"
            else:
                response = await self.client.send(self._request(delivery, address))
                status_code = response.status_code
                if not 200 <= status_code < 300:
                    error = f"HTTP {status_code}"
        except httpx.TimeoutException:
            error = "timeout"
        except httpx.HTTPError as exc:
            error = describe_error(exc)[:_ERROR_CHARS]
        duration_ms = int((time.perf_counter() - t0) * 1000)
        attempt = int(delivery["attempt"])
        if error is None:
            outcome, retry_in = "delivered", None
        elif attempt >= self.settings.webhook_max_attempts:
            outcome, retry_in = "parked", None
        else:
            outcome = "pending"
            retry_in = domain.retry_delay(
                attempt,
                base=self.settings.webhook_backoff_base_seconds,
                cap=self.settings.webhook_backoff_max_seconds,
            )
        async with self.sessionmaker() as session, session.begin():
            await repo.record_attempt(
                session,
                delivery["id"],
                attempt,
                at=started,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
                outcome=outcome,
                retry_in=retry_in,
            )
        DELIVERIES.labels(delivery["consumer"], "delivered" if error is None else "failed").inc()
        if outcome == "parked":
            log.warning(
                "webhook_parked",
                consumer=delivery["consumer"],
                delivery=str(delivery["id"]),
                attempts=attempt,
            )

    async def _checked_address(self, url: str) -> tuple[str, str | None]:
        """Checked again before every request (the name may resolve elsewhere than at registration), and the
        request then goes to the address that was checked: resolving the name a second time when connecting
        would let a DNS answer that changes in between (DNS rebinding) reach a private address."""
        host = urlsplit(url).hostname or ""
        addresses = await self.resolve(host) if host else []
        refusal = domain.target_refusal(
            url, addresses, allow_loopback=bool(self.settings.webhook_allow_loopback)
        )
        return (addresses[0] if addresses else ""), refusal

    def _request(self, delivery: dict[str, Any], address: str) -> httpx.Request:
        """A request to the checked address, carrying the name in Host and, for https, in the TLS handshake
        (SNI and certificate verification use the name, not the address)."""
        url = httpx.URL(delivery["url"])
        pinned = url.copy_with(host=address)
        headers = self._headers(delivery)
        headers["host"] = url.netloc.decode("ascii")
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        return self.client.build_request(
            "POST", pinned, content=delivery["body"], headers=headers, extensions=extensions
        )

    def _headers(self, delivery: dict[str, Any]) -> dict[str, str]:
        msg_id = str(delivery["event_id"])
        timestamp = int(time.time())
        sealing_key = domain.secret_sealing_key(self.settings.webhook_secret_key)
        secrets = [
            domain.open_secret(sealing_key, delivery["subscription_id"], sealed)
            for sealed in delivery["sealed_secrets"]
        ]
        return {
            "content-type": domain.CONTENT_TYPE,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": domain.signature_header(secrets, msg_id, timestamp, delivery["body"]),
        }

    async def update_metrics(self) -> None:
        async with self.sessionmaker() as session:
            for row in await repo.consumer_figures(session):
                name = row["name"]
                PENDING.labels(name).set(row["pending"])
                PARKED.labels(name).set(row["parked"])
                HELD.labels(name).set(row["held"])
                UNPUBLISHED.labels(name).set(row["unpublished"])
                FAILED.labels(name).set(row["failed_attempts"])
                LAG.labels(name).set(float(row["oldest_pending_seconds"] or 0.0))

    async def run(self) -> None:
        """Rounds until stopped: at once again after a full round, else after the poll interval."""
        last_metrics = 0.0
        while not self._stopping.is_set():
            try:
                claimed = await self.deliver_due()
                if time.monotonic() - last_metrics > 10:
                    await self.update_metrics()
                    last_metrics = time.monotonic()
            except Exception as exc:  # database away: try again after the interval
                log.warning("webhook_round_failed", error=describe_error(exc))
                claimed = 0
            if claimed < self.settings.webhook_concurrency:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.settings.webhook_poll_interval_seconds)
