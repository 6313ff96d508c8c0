"""docs/glossary.md lists every deprecated name the OpenAPI documents still carry, and only those."""

from __future__ import annotations

import re

import pytest

from shared.config import REPO_ROOT
from tests.openapi.specs import SERVICES, openapi_of

GLOSSARY = REPO_ROOT / "docs" / "glossary.md"


def deprecated_in_glossary() -> set[tuple[str, str, str]]:
    """(service, schema, old name) from the glossary's deprecated-names table."""
    text = GLOSSARY.read_text(encoding="utf-8").split("## Deprecated names", 1)[1]
    found = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("service", "---"):
            continue
        for schema in re.findall(r"`([A-Za-z]+)`", cells[1]):
            found.add((cells[0], schema, cells[2].strip("`")))
    return found


def deprecated_in_openapi(service: str) -> set[tuple[str, str, str]]:
    schemas = openapi_of(service).get("components", {}).get("schemas", {})
    return {
        (service, name, prop)
        for name, schema in schemas.items()
        for prop, body in schema.get("properties", {}).items()
        if body.get("deprecated")
    }


@pytest.mark.parametrize("service", SERVICES)
def test_glossary_lists_the_deprecated_names_of(service: str) -> None:
    documented = {row for row in deprecated_in_glossary() if row[0] == service}
    assert deprecated_in_openapi(service) == documented
