"""`outbox_records` fed (type, facts) instead of models: the envelopes `publish` would write, byte for byte in JSON."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import orjson
import pytest
from asyncpg.pgproto import pgproto

from shared.events.envelope import EventData, build_envelope
from shared.events.registry import (
    BadutaStuntingDetected,
    FamilyRegistered,
    KbStatusChanged,
    PersonRegistered,
    StuntingRiskChanged,
)
from shared.outbox import OutboxEvent, outbox_records

VILLAGE = "15.71.01.1001"


def _facts() -> list[tuple[type[EventData], dict[str, Any]]]:
    family_id = uuid.uuid4()
    return [
        (
            FamilyRegistered,
            # rt and the housing facts are deprecated: given here, published at their defaults.
            # An id read from the database comes as asyncpg's UUID type: written as the model writes it.
            {"family_id": family_id, "village_code": VILLAGE, "rw": "002", "rt": "003",
             "kampung_kb_id": pgproto.UUID(str(uuid.uuid4())),
             "welfare_decile": 3, "drinking_water_proper": True, "latrine_proper": False},
        ),
        (
            PersonRegistered,
            {"person_id": uuid.uuid4(), "family_id": family_id, "village_code": VILLAGE, "rw": None, "sex": "P",
             "birth_date": date(1995, 5, 6), "relation": "istri", "marital_status": "kawin", "has_nik": True,
             "pus": True, "rule_version": "r1", "not_a_field": "ignored like the model ignores it"},
        ),
        (
            StuntingRiskChanged,
            {"family_id": family_id, "village_code": VILLAGE, "rw": "002", "at_risk": True,
             "reasons": ["air_minum_tidak_layak", "jamban_tidak_layak"], "target": True, "welfare_decile": None,
             "rule_version": "r1"},
        ),
        (
            KbStatusChanged,
            # Optional fields left out take their defaults, as the model does.
            {"person_id": uuid.uuid4(), "family_id": family_id, "village_code": VILLAGE, "method": "iud",
             "is_user": True, "mkjp": True, "since": date(2025, 2, 3), "pus": True},
        ),
    ]  # fmt: skip


def _expected(model: type[EventData], facts: dict[str, Any], key: str, record: tuple[Any, ...]) -> None:
    event_id, topic, partition_key, event_type, text = record
    stored = orjson.loads(text)
    expected = build_envelope(
        model(**facts),
        key=key,
        correlation_id="job-7",
        event_id=event_id,
        time=datetime.fromisoformat(stored["time"]),
    ).model_dump(mode="json", exclude_none=True)
    assert stored == expected
    assert (topic, partition_key, event_type) == (model.topic(), key, model.event_type)


def test_facts_give_the_envelopes_of_the_models() -> None:
    facts = _facts()
    # Each type twice: the first is checked against its model, the second written from the facts alone.
    events: list[tuple[OutboxEvent, str | uuid.UUID]] = [(item, "k1") for item in facts] + [
        (item, "k2") for item in _facts()
    ]
    records = outbox_records(events, correlation_id="job-7")
    assert len({r[0] for r in records}) == len(events)
    for (item, key), record in zip(events, records, strict=True):
        assert isinstance(item, tuple)
        _expected(item[0], item[1], str(key), record)
    # Deprecated fields at their default whatever the facts said; the unknown key is not published.
    family = orjson.loads(records[0][4])["data"]
    assert (family["rt"], family["drinking_water_proper"], family["latrine_proper"]) == (None, None, None)
    assert "not_a_field" not in orjson.loads(records[1][4])["data"]


def test_models_and_facts_mix_and_float_types_go_through_the_model() -> None:
    family_id = uuid.uuid4()
    case = {
        "case_id": uuid.uuid4(), "person_id": uuid.uuid4(), "family_id": family_id, "village_code": VILLAGE,
        "measurement_id": uuid.uuid4(), "measured_on": date(2026, 1, 5), "age_days": 400,
        # An int for a float field: the model writes -3.0; orjson alone would write -3.
        "haz": -3, "severity": "severely_stunted", "sex": "L", "birth_date": date(2024, 12, 1), "rule_version": "r1",
    }  # fmt: skip
    person = _facts()[1]
    events: list[tuple[OutboxEvent, str | uuid.UUID]] = [
        ((BadutaStuntingDetected, case), family_id),
        ((BadutaStuntingDetected, case), family_id),
        (person[0](**person[1]), family_id),
        (person, family_id),
    ]
    records = outbox_records(events, correlation_id="job-7")
    assert orjson.loads(records[1][4])["data"]["haz"] == -3.0
    assert '"haz":-3.0' in records[1][4]
    for (item, key), record in zip(events, records, strict=True):
        model, facts = (type(item), item.model_dump()) if isinstance(item, EventData) else item
        _expected(model, facts, str(key), record)


def test_facts_missing_a_required_field_are_refused_like_the_model() -> None:
    facts = dict(_facts()[1][1])
    del facts["sex"]
    with pytest.raises(ValueError, match="sex"):
        outbox_records([((PersonRegistered, facts), "k")])
