"""Structured JSON logs that can never carry a NIK or KK number."""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# Any run of 16 digits (optionally split by spaces, dots or dashes) is treated as a NIK/KK number.
_SIXTEEN_DIGITS = re.compile(r"(?<!\d)(?:\d[\s.\-]?){15}\d(?!\d)")


def redact(text: str) -> str:
    """Replace anything shaped like a NIK or KK number."""
    return _SIXTEEN_DIGITS.sub("[REDACTED]", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = _scrub(value)
    return event_dict


# What a database error may say of itself. The server's message and DETAIL quote the values that failed
# ('Key (nik_index)=(...) already exists', 'invalid input syntax for type date: "..."') and SQLAlchemy's text adds
# the statement's bound parameters: names, birth dates, NIK ciphertext and blind index. None of it is logged.
_PG_FIELDS = ("sqlstate", "schema_name", "table_name", "column_name", "constraint_name")


def _postgres_error(exc: BaseException) -> BaseException | None:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if getattr(e, "sqlstate", None) and hasattr(e, "constraint_name"):
            return e
        todo += [getattr(e, "orig", None), e.__cause__]
    return None


def describe_error(exc: BaseException) -> str:
    """What a log line may say about an exception: never a statement's parameters, a server DETAIL, or input.

    Database errors become their class, SQLSTATE and the names of the table, column and constraint involved;
    validation errors their field locations and error types; anything else its class and (redacted) message.
    """
    name = type(exc).__name__
    pg = _postgres_error(exc)
    if pg is not None:
        fields = " ".join(f"{f}={v}" for f in _PG_FIELDS if (v := getattr(pg, f, None)))
        return f"{name}({type(pg).__name__} {fields})"
    if hasattr(exc, "orig") or name in ("StatementError", "DBAPIError"):
        return f"{name}(database error)"
    errors = getattr(exc, "errors", None)
    if callable(errors) and name == "ValidationError":
        try:
            found = [f"{'.'.join(map(str, e['loc']))}:{e['type']}" for e in errors(include_input=False)]
        except TypeError:
            found = []
        return f"{name}({', '.join(found)[:400]})"
    return f"{name}({redact(str(exc))[:400]})"


def format_exception(exc: BaseException) -> str:
    """A traceback with every exception of the chain described by `describe_error` (frames show code, not data)."""
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    parts: list[str] = []
    for e in reversed(chain):
        if parts:
            parts.append("\nwhich led to:\n")
        parts.append("Traceback (most recent call last):\n")
        parts += traceback.format_tb(e.__traceback__)
        parts.append(describe_error(e) + "\n")
    return "".join(parts)


def _exception_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replaces structlog's exception formatting: the standard one prints each exception's full text."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if exc_info is True:
        exc_info = sys.exc_info()
    exc = (
        exc_info
        if isinstance(exc_info, BaseException)
        else exc_info[1]
        if isinstance(exc_info, tuple)
        else None
    )
    if exc is not None:
        event_dict["exception"] = format_exception(exc)
    return event_dict


class _RedactingFilter(logging.Filter):
    """Also scrub records from libraries that log through the standard library."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(str(record.msg))
        if record.args:
            record.args = tuple(_scrub(a) for a in record.args) if isinstance(record.args, tuple) else None
        return True


class _RepeatLimiter(logging.Filter):
    """Lets one copy of a repeated message through per interval.

    aiokafka's producer retries metadata with no pause while the broker is down and logs every attempt
    (thousands of lines a second were seen in the fault run); the relay bounds the outage itself.
    """

    def __init__(self, interval: float = 5.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        key = f"{record.name}:{record.levelno}:{record.msg}"
        now = record.created
        if now - self._last.get(key, 0.0) < self.interval:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = now
        return True


class _CurrentStdout:
    """Standard output as it is when a line is written, not when logging was configured.

    Loggers are cached on first use; one bound to the stdout of that moment keeps writing there even after a
    test harness (or anything else) has replaced and closed it.
    """

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON logs to stdout, with the request/correlation id bound through contextvars."""
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        timestamper,
        _exception_processor,
        _redact_processor,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStdout()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(_CurrentStdout())
    handler.addFilter(_RedactingFilter())
    # On the handler, not the logger: logger filters do not apply to records of child loggers.
    handler.addFilter(_RepeatLimiter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(), foreign_pre_chain=shared
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel("WARNING")
    logging.getLogger("httpx").setLevel("WARNING")


def get_logger(name: str) -> Any:
    """A structlog logger; `log.info("event", key=value)`."""
    return structlog.get_logger(name)
