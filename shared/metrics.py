"""Prometheus metrics every service exposes (defined once, labelled by service)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Histogram(
    "kencana_http_request_seconds",
    "HTTP request duration",
    ["service", "method", "route", "status"],
)
OUTBOX_PENDING = Gauge("kencana_outbox_pending_rows", "Outbox rows not yet published", ["service"])
OUTBOX_LAG = Gauge("kencana_outbox_lag_seconds", "Age of the oldest unpublished outbox row", ["service"])
OUTBOX_PUBLISHED = Counter("kencana_outbox_published_total", "Events published by the relay", ["service"])
RELAY_ERRORS = Counter("kencana_relay_errors_total", "Relay publish failures", ["service"])
CONSUMER_LAG = Gauge(
    "kencana_consumer_lag_messages", "Messages behind the log end", ["consumer", "topic", "partition"]
)
CONSUMER_PROCESSED = Counter(
    "kencana_consumer_events_total", "Events handled by outcome", ["consumer", "type", "outcome"]
)
CONSUMER_DLQ = Counter(
    "kencana_consumer_dead_lettered_total", "Events sent to the dead-letter topic", ["consumer"]
)
CONSUMER_UNKNOWN = Counter(
    "kencana_consumer_unknown_types_total", "Events skipped because their type is unknown", ["consumer"]
)
