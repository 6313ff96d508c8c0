"""The one region scope mechanism (shared/regions/scope.py): filters read one way, scope applied one way."""

from __future__ import annotations

import pytest
from sqlalchemy import ColumnElement, column
from sqlalchemy.dialects import postgresql

from shared.auth import Principal
from shared.errors import ValidationFailed
from shared.regions.scope import MALFORMED_RULE, in_scope, parse_region, scope_clauses, within


def sql(clause: ColumnElement[bool]) -> str:
    compiled = str(clause.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    return compiled.replace("%%", "%")  # the dialect's paramstyle escapes LIKE's %


def test_a_filter_is_read_dotted_or_absent() -> None:
    assert parse_region(None) is None
    assert parse_region("1571") == "15.71"
    assert parse_region(" 15.71.01.1001 ") == "15.71.01.1001"


@pytest.mark.parametrize("value", ["", "abc", "15.7", "157", "15.71.01.100", "１５"])
def test_a_malformed_filter_is_a_422_naming_the_field_with_one_rule(value: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_region(value, "query.village_code")
    assert MALFORMED_RULE == "region.format"
    assert caught.value.errors == [
        {"field": "query.village_code", "rule": "region.format", "message": "not a region code"}
    ]


def test_within_compares_by_segments() -> None:
    village = column("village_code")
    assert sql(within(village, None)) == "true"
    assert sql(within(village, "1571")) == "village_code = '15.71' OR village_code LIKE '15.71.%'"


def test_in_scope_reads_the_principal() -> None:
    village = column("village_code")
    assert sql(in_scope(village, Principal(sub="n"))) == "true"
    assert sql(in_scope(village, Principal(sub="r", region="15.71"))) == (
        "village_code = '15.71' OR village_code LIKE '15.71.%'"
    )
    assert sql(in_scope(village, Principal(sub="broken", region="x"))) == "false"  # deny by default
    clauses = scope_clauses(village, Principal(sub="r", region="15"), "15.71")
    assert [sql(c) for c in clauses] == [
        "village_code = '15' OR village_code LIKE '15.%'",
        "village_code = '15.71' OR village_code LIKE '15.71.%'",
    ]
