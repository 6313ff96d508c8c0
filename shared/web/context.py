"""Request-scoped context (the correlation id) readable from anywhere, including the outbox."""

from __future__ import annotations

from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    """The correlation id of the request or event being handled, if any."""
    return _correlation_id.get()


def set_correlation_id(value: str | None) -> object:
    """Bind a correlation id; returns a token for `reset_correlation_id`."""
    return _correlation_id.set(value)


def reset_correlation_id(token: object) -> None:
    _correlation_id.reset(token)  # type: ignore[arg-type]
