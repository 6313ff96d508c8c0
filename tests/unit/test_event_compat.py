"""The published-contract comparison: what may change within an event version and what may not.

Small hand-made schemas, in the shapes pydantic writes (`anyOf` with null for optional fields, `$defs` + `$ref`
for enums and nested models), so a regression in the comparison fails here even when no event model changed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from shared.events.asyncapi import event_schema
from shared.events.compat import breaking_changes, contract_problems, publish
from shared.events.envelope import event_types

PUBLISHED: dict[str, Any] = {
    "$defs": {"Method": {"enum": ["iud", "pil", "kondom"], "type": "string"}},
    "properties": {
        "person_id": {"format": "uuid", "type": "string"},
        "since": {"format": "date", "type": "string"},
        "method": {"$ref": "#/$defs/Method"},
        "rws": {"items": {"maxLength": 3, "type": "string"}, "type": "array"},
        "decile": {
            "anyOf": [{"maximum": 10, "minimum": 1, "type": "integer"}, {"type": "null"}],
            "default": None,
        },
    },
    "required": ["person_id", "since", "method", "rws"],
    "type": "object",
}


def changed(edit: Any) -> list[str]:
    schema = copy.deepcopy(PUBLISHED)
    edit(schema)
    return breaking_changes(PUBLISHED, schema)


def test_the_same_schema_is_compatible() -> None:
    assert breaking_changes(PUBLISHED, copy.deepcopy(PUBLISHED)) == []


def test_additive_changes_pass() -> None:
    def additive(s: dict[str, Any]) -> None:
        s["properties"]["note"] = {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "default": None,
        }  # optional
        s["$defs"]["Method"]["enum"].append("implant")  # a new value
        s["properties"]["decile"]["anyOf"][0]["maximum"] = 20  # a bound loosened
        s["properties"]["since"]["title"] = "Since"  # wording
        s["description"] = "reworded"

    assert changed(additive) == []


def test_a_removed_field_breaks() -> None:
    assert changed(lambda s: s["properties"].pop("decile")) == ["data.decile: field removed"]


def test_a_new_required_field_breaks() -> None:
    def new_required(s: dict[str, Any]) -> None:
        s["properties"]["village_code"] = {"type": "string"}
        s["required"].append("village_code")

    assert changed(new_required) == ["data.village_code: new required field"]


def test_an_optional_field_made_required_and_a_required_made_optional_break() -> None:
    assert changed(lambda s: s["required"].append("decile")) == ["data.decile: field became required"]
    assert changed(lambda s: s["required"].remove("since")) == ["data.since: required field became optional"]


def test_a_type_change_breaks() -> None:
    assert changed(lambda s: s["properties"].__setitem__("person_id", {"type": "integer"})) == [
        "data.person_id: type changed from ['string'] to ['integer']"
    ]
    assert changed(lambda s: s["properties"]["since"].__setitem__("format", "date-time")) == [
        "data.since: format changed from 'date' to 'date-time'"
    ]
    nullable = {"anyOf": [{"format": "date", "type": "string"}, {"type": "null"}]}
    assert changed(lambda s: s["properties"].__setitem__("since", nullable)) == [
        "data.since: type changed from ['string'] to ['null', 'string']"
    ]


def test_a_narrowed_enum_breaks_through_a_ref() -> None:
    assert changed(lambda s: s["$defs"]["Method"]["enum"].remove("kondom")) == [
        "data.method: enum value(s) removed: ['kondom']"
    ]


def test_tightened_bounds_break_inside_arrays_and_unions() -> None:
    def tighter(s: dict[str, Any]) -> None:
        s["properties"]["rws"]["items"]["maxLength"] = 2
        s["properties"]["decile"]["anyOf"][0]["minimum"] = 2

    assert changed(tighter) == ["data.decile: minimum raised to 2", "data.rws[]: maxLength lowered to 2"]


def test_every_produced_event_version_is_published_and_unbroken() -> None:
    problems = contract_problems()
    assert not problems, f"breaking change to a published event version (add a .v2 instead): {problems}"


def test_a_breaking_model_change_fails_against_the_published_copy(tmp_path: Path) -> None:
    """Regenerating docs/events does not hide a break: the frozen copy is compared, not the generated one."""
    publish(tmp_path)
    event_type, model = sorted(event_types().items())[0]
    frozen = json.loads((tmp_path / f"{event_type}.json").read_text(encoding="utf-8"))
    assert breaking_changes(frozen, event_schema(model)) == []
    required = frozen["required"][0]
    # As if the field had been added to the model, required, after the version was released.
    del frozen["properties"][required]
    frozen["required"].remove(required)
    (tmp_path / f"{event_type}.json").write_text(json.dumps(frozen), encoding="utf-8")
    assert f"{event_type} data.{required}: new required field" in contract_problems(tmp_path)
    assert publish(tmp_path) == []  # publishing again rewrites nothing
