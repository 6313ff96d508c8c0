"""docs/indicators.md documents every indicator reporting publishes (so it stays complete as figures are added)."""

from __future__ import annotations

import re

from reporting.indicators.domain import CATALOGUE, DENOMINATOR, NUMERATOR, compute

from shared.config import REPO_ROOT

DOC = REPO_ROOT / "docs" / "indicators.md"
# The names issue 11 fixes for every summary, series and export (partners read them).
ISSUE_11_NAMES = [
    "cpr",
    "mcpr",
    "unmet_need",
    "pus",
    "kb_users",
    "mkjp_share",
    "kb_new_acceptors",
    "mkjp_switchers",
    "baduta_measured",
    "stunting_prevalence",
    "balita_measured",
    "balita_stunting_prevalence",
    "uppka_reporting_rate",
    "uppka_members_kb_participation",
    "dashat_coverage",
]


def _documented() -> set[str]:
    return set(re.findall(r"`([a-z0-9_]+)`", DOC.read_text(encoding="utf-8")))


def test_every_catalogue_indicator_is_documented() -> None:
    names = {i.name for i in CATALOGUE} | {k for k in compute({}) if not k.endswith((NUMERATOR, DENOMINATOR))}
    missing = sorted(names - _documented())
    assert not missing, f"add these indicators to docs/indicators.md: {missing}"


def test_the_names_of_issue_11_and_the_ratio_convention_are_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert not sorted(set(ISSUE_11_NAMES) - _documented())
    assert "`r_numerator`" in text and "`r_denominator`" in text and "small_numbers" in text


def test_the_readme_links_it() -> None:
    assert "(docs/indicators.md)" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_no_guessed_names_are_left() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "*(issue 11)*" not in text and 'missing in reporting" until' not in text
    # Every ratio is documented with the numerator and denominator reporting publishes beside it.
    for indicator in CATALOGUE:
        if indicator.unit == "ratio":
            row = next((ln for ln in text.splitlines() if ln.startswith(f"| `{indicator.name}`")), None)
            assert row is not None, f"docs/indicators.md has no row of its own for {indicator.name}"
