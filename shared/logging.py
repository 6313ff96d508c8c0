"""Structured JSON logs that can never carry a NIK or KK number."""

from __future__ import annotations

import logging
import re
import sys
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


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON logs to stdout, with the request/correlation id bound through contextvars."""
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        timestamper,
        structlog.processors.format_exc_info,
        _redact_processor,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(sys.stdout)
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
