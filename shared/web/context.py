"""Request- or event-scoped context (correlation and causation ids) readable from anywhere, including the outbox."""

from __future__ import annotations

from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)


def current_correlation_id() -> str | None:
    """The correlation id of the request or event being handled, if any."""
    return _correlation_id.get()


def set_correlation_id(value: str | None) -> object:
    """Bind a correlation id; returns a token for `reset_correlation_id`."""
    return _correlation_id.set(value)


def reset_correlation_id(token: object) -> None:
    _correlation_id.reset(token)  # type: ignore[arg-type]


def current_causation_id() -> str | None:
    """The id of the event being handled by a consumer, if any: the cause of the events it publishes."""
    return _causation_id.get()


def set_causation_id(value: str | None) -> object:
    """Bind a causation id; returns a token for `reset_causation_id`."""
    return _causation_id.set(value)


def reset_causation_id(token: object) -> None:
    _causation_id.reset(token)  # type: ignore[arg-type]
