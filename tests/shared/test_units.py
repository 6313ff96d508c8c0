"""Pure parts of the shared library: redaction, cursors, region scope, settings, envelope."""

from __future__ import annotations

import pytest

from shared.auth import Principal
from shared.config import ServiceSettings
from shared.errors import NotFound, ValidationFailed
from shared.events import build_envelope, event_types
from shared.events.registry import PersonDied
from shared.logging import redact
from shared.web.pagination import decode_cursor, encode_cursor


def test_redact_removes_nik_shapes() -> None:
    assert redact("nik=1571014101900001 ok") == "nik=[REDACTED] ok"
    assert redact("kk 1571-0141-0190-0001") == "kk [REDACTED]"
    assert redact("order 12345") == "order 12345"


def test_cursor_round_trip_and_garbage() -> None:
    values = ["2026-01-01T00:00:00+00:00", "b6c1d0f6-0000-4000-8000-000000000000"]
    assert decode_cursor(encode_cursor(values)) == values
    with pytest.raises(ValidationFailed):
        decode_cursor("%%%not-a-cursor")


def test_principal_region_scope() -> None:
    jambi_city = Principal(sub="x", region="15.71")
    assert jambi_city.can_access("15.71.01.1001")
    assert not jambi_city.can_access("15.01.01.2001")
    assert not jambi_city.can_access(None)
    assert Principal(sub="x").can_access("32.76.01.1006")
    with pytest.raises(NotFound):
        jambi_city.ensure_access("16.71.01.1001")


def test_production_refuses_the_dev_key() -> None:
    with pytest.raises(ValueError, match="dev key"):
        ServiceSettings(environment="production", database_url="postgresql+asyncpg://x/y")


def test_envelope_is_cloudevents_and_carries_key() -> None:
    import uuid
    from datetime import date

    data = PersonDied(
        person_id=uuid.uuid4(), family_id=uuid.uuid4(), village_code="15.71.01.1001", died_on=date(2026, 1, 2)
    )
    env = build_envelope(data, key=str(data.family_id))
    assert env.specversion == "1.0"
    assert env.type == "registry.person.died.v1"
    assert env.source == "/kencana/registry"
    assert env.partitionkey == str(data.family_id)


def test_catalogue_names_are_versioned_past_tense() -> None:
    types = event_types()
    assert types
    for name in types:
        service, *_, version = name.split(".")
        assert service in {"registry", "uppka", "dashat"}
        assert version.startswith("v") and version[1:].isdigit()


def test_no_event_carries_identity_fields() -> None:
    forbidden = {"nik", "kk_number", "name", "full_name", "nama"}
    for name, model in event_types().items():
        if name.startswith(("uppka.group", "dashat.kitchen")):
            continue  # group and kitchen names are not personal data
        assert not forbidden & set(model.model_fields), name


def test_repeated_library_messages_are_limited() -> None:
    import logging

    from shared.logging import _RepeatLimiter

    limiter = _RepeatLimiter(interval=5.0)

    def record(at: float, msg: str = "Unable connect to node") -> logging.LogRecord:
        r = logging.LogRecord("aiokafka.conn", logging.ERROR, __file__, 1, msg, None, None)
        r.created = at
        return r

    assert limiter.filter(record(100.0))
    assert not limiter.filter(record(101.0))
    assert limiter.filter(record(101.0, "another message"))
    assert limiter.filter(record(106.0))
