"""Registry events carry only what a consumer of this project needs (issue 12, item 7)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from shared.events import registry as reg
from shared.events.asyncapi import build_documents, event_schema
from shared.events.envelope import CloudEvent, build_envelope, deprecated_fields, parse_data
from shared.outbox import outbox_records

CONSUMERS = ("uppka", "dashat", "reporting")


def _registry_types() -> dict[str, type[reg.EventData]]:
    from shared.events.envelope import event_types

    return {t: m for t, m in event_types().items() if m.producer() == "registry"}


def test_every_field_of_every_registry_event_has_a_documented_need() -> None:
    problems = []
    for event_type, model in _registry_types().items():
        needs = reg.FIELD_NEEDS.get(event_type)
        if needs is None:
            problems.append(f"{event_type}: no entry in FIELD_NEEDS")
            continue
        deprecated = deprecated_fields(model)
        for name in model.model_fields:
            need = needs.get(name)
            if need is None:
                problems.append(f"{event_type}.{name}: no documented need")
            elif name in deprecated and need != reg.DEPRECATED:
                problems.append(f"{event_type}.{name}: deprecated but documented as needed")
            elif name not in deprecated and need == reg.DEPRECATED:
                problems.append(f"{event_type}.{name}: documented as deprecated but still published")
            elif need not in (reg.DEPRECATED, reg.V1_REQUIRED) and not any(c in need for c in CONSUMERS):
                problems.append(f"{event_type}.{name}: the need names no consumer")
        problems += [
            f"{event_type}.{n}: documented but not a field" for n in set(needs) - set(model.model_fields)
        ]
    assert problems == []


def test_only_optional_fields_are_deprecated() -> None:
    # A required v1 field cannot be dropped without a v2 type; a deprecated one keeps its default.
    for model in _registry_types().values():
        for name in deprecated_fields(model):
            assert not model.model_fields[name].is_required(), f"{model.event_type}.{name}"
            assert event_schema(model)["properties"][name].get("deprecated") is True


def _pregnancy() -> reg.PregnancyRegistered:
    return reg.PregnancyRegistered(
        pregnancy_id=uuid.uuid4(),
        person_id=uuid.uuid4(),
        family_id=uuid.uuid4(),
        village_code="15.71.01.1001",
        rw="001",
        lmp=date(2026, 5, 1),
        expected_delivery=date(2027, 2, 5),
        lila_cm=22.1,
        hb_g_dl=9.4,
        kek=True,
        anaemia="moderate",
        mother_age_years=27,
        krs=False,
        rule_version="2026.1",
    )


@pytest.mark.parametrize("bulk", [False, True])
def test_deprecated_fields_travel_null_and_the_flags_stay(bulk: bool) -> None:
    event = _pregnancy()
    if bulk:
        import json

        payload = json.loads(outbox_records([(event, event.family_id)])[0][4])["data"]
    else:
        payload = build_envelope(event, key=str(event.family_id)).data
    assert payload["lmp"] is None and payload["lila_cm"] is None and payload["hb_g_dl"] is None
    # What the consumers need is still there: LiLA measured (22.1 < 23.5 cm: KEK), anaemia grade, the due day.
    assert payload["lila_measured"] is True and payload["kek"] is True and payload["anaemia"] == "moderate"
    assert payload["expected_delivery"] == "2027-02-05" and payload["rw"] == "001"


def test_an_event_written_before_the_change_is_still_read_with_its_flag() -> None:
    old = {
        "pregnancy_id": str(uuid.uuid4()),
        "person_id": str(uuid.uuid4()),
        "family_id": str(uuid.uuid4()),
        "village_code": "15.71.01.1001",
        "lmp": "2026-05-01",
        "expected_delivery": "2027-02-05",
        "lila_cm": 24.0,
        "kek": False,
        "mother_age_years": 30,
        "krs": False,
        "rule_version": "2025.1",
    }
    env = CloudEvent(
        id="1", source="/kencana/registry", type=reg.PregnancyRegistered.event_type, time="2026-06-01T00:00:00Z",
        partitionkey="k", data=old,
    )  # fmt: skip
    data = parse_data(env)
    assert isinstance(data, reg.PregnancyRegistered)
    assert data.lila_measured is True
    unmeasured = parse_data(env.model_copy(update={"data": {**old, "lila_cm": None}}))
    assert isinstance(unmeasured, reg.PregnancyRegistered) and unmeasured.lila_measured is False


def test_child_measured_travels_with_haz_only() -> None:
    event = reg.ChildMeasured(
        measurement_id=uuid.uuid4(), person_id=uuid.uuid4(), family_id=uuid.uuid4(),
        village_code="15.71.01.1001", rw="002", sex="L", measured_on=date(2026, 11, 2), age_days=400,
        weight_kg=8.1, lenhei_cm=70.2, position="l", haz=-2.6, waz=-1.9, whz=-0.7, haz_class="stunted",
        waz_class="normal", whz_class="normal", rule_version="x",
    )  # fmt: skip
    payload = build_envelope(event, key="k").data
    for raw in ("rw", "weight_kg", "lenhei_cm", "position", "waz", "whz", "waz_class", "whz_class"):
        assert payload[raw] is None, raw
    assert payload["haz"] == -2.6 and payload["haz_class"] == "stunted" and payload["age_days"] == 400


def test_the_catalogue_says_who_needs_each_field() -> None:
    catalogue = build_documents()["CATALOGUE.md"]
    assert "## Who needs each field" in catalogue
    assert "**undocumented**" not in catalogue
    assert "| `lmp` (deprecated) |" in catalogue
