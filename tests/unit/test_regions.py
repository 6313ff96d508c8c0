"""Region reference snapshot: counts, checksum, lookups and the scope check."""

from __future__ import annotations

import hashlib
import re
from importlib import resources

import pytest

from shared.regions import (
    SNAPSHOT_FILE,
    SNAPSHOT_SHA256,
    SNAPSHOT_VALID_FROM,
    Region,
    is_within,
    level_of_code,
    load_regions,
    normalize_code,
)


def _snapshot_bytes() -> bytes:
    return resources.files("shared.regions").joinpath("data").joinpath(SNAPSHOT_FILE).read_bytes()


def test_counts_per_level() -> None:
    regions = load_regions()
    assert dict(regions.counts) == {"province": 38, "regency": 514, "district": 7285, "village": 83762}
    assert regions.count("village") == 83762
    assert len(regions) == 38 + 514 + 7285 + 83762


def test_checksum_matches_constant_and_provenance() -> None:
    digest = hashlib.sha256(_snapshot_bytes()).hexdigest()
    assert digest == SNAPSHOT_SHA256
    provenance = resources.files("shared.regions").joinpath("data").joinpath("PROVENANCE.md").read_text()
    assert re.search(rf"sha256 \| `{digest}`", provenance)
    assert "300.2.2-2138/2025" in provenance
    assert SNAPSHOT_VALID_FROM.isoformat() in provenance


def test_snapshot_is_small() -> None:
    assert len(_snapshot_bytes()) < 2 * 1024 * 1024


def test_load_is_cached() -> None:
    # How fast the load is belongs to benchmarks, not to tests (shared machines are noisy).
    load_regions.cache_clear()
    first = load_regions()
    assert load_regions() is first


def test_get_village_with_postal_code() -> None:
    regions = load_regions()
    village = regions.get("32.76.01.1006")
    assert village == Region("32.76.01.1006", "Depok", "village", "32.76.01", "16431")
    assert regions.get("3276011006") == village
    assert regions.get("99") is None
    assert regions.get("not a code") is None
    assert regions.get("") is None


def test_children_of_jambi_include_kota_jambi() -> None:
    regions = load_regions()
    kids = regions.children("15")
    assert Region("15.71", "Kota Jambi", "regency", "15") in kids
    assert all(r.parent_code == "15" and r.level == "regency" for r in kids)
    assert [r.code for r in kids] == sorted(r.code for r in kids)


def test_children_of_national_are_provinces() -> None:
    regions = load_regions()
    provinces = regions.children(None)
    assert len(provinces) == 38
    assert regions.children("") == provinces
    assert {r.level for r in provinces} == {"province"}
    assert all(r.parent_code is None for r in provinces)


def test_children_of_village_and_unknown_are_empty() -> None:
    regions = load_regions()
    assert regions.children("32.76.01.1006") == []
    assert regions.children("99.99") == []
    assert regions.children("garbage") == []


def test_children_list_is_a_copy() -> None:
    regions = load_regions()
    regions.children("15").clear()
    assert regions.children("15")


def test_tree_reaches_every_region() -> None:
    regions = load_regions()
    seen = 0
    stack = [""]
    while stack:
        for child in regions.children(stack.pop()):
            seen += 1
            stack.append(child.code)
    assert seen == len(regions)


def test_ancestors() -> None:
    regions = load_regions()
    chain = regions.ancestors("32.76.01.1006")
    assert [r.code for r in chain] == ["32", "32.76", "32.76.01"]
    assert [r.level for r in chain] == ["province", "regency", "district"]
    assert regions.ancestors("32") == []
    assert regions.ancestors("") == []
    assert [r.code for r in regions.ancestors("15.71.99")] == ["15", "15.71"]


def test_level_of() -> None:
    regions = load_regions()
    assert regions.level_of("15") == "province"
    assert regions.level_of("15.71") == "regency"
    assert regions.level_of("157101") == "district"
    assert regions.level_of("32.76.01.1006") == "village"
    assert regions.level_of("15.98") is None
    assert level_of_code("15.98") == "regency"
    with pytest.raises(ValueError):
        level_of_code("1")


def test_exists() -> None:
    regions = load_regions()
    assert regions.exists("15.71")
    assert regions.exists("1571")
    assert not regions.exists("15.98")
    assert not regions.exists("15.710")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("15", "15"),
        ("1571", "15.71"),
        ("157101", "15.71.01"),
        ("1571011001", "15.71.01.1001"),
        ("15.71.01.1001", "15.71.01.1001"),
        (" 15.71 ", "15.71"),
    ],
)
def test_normalize_code(raw: str, expected: str) -> None:
    assert normalize_code(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "1",
        "157",
        "15710",
        "15.7",
        "15.71.1",
        "15.71.01.100",
        "157101100",
        "15-71",
        "\uff11\uff15",
        "15..71",
    ],
)
def test_normalize_code_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_code(raw)


@pytest.mark.parametrize(
    ("code", "prefix", "inside"),
    [
        ("15.71.01.1001", "15.71", True),
        ("15.71.01.1001", "15", True),
        ("15.71.01.1001", "15.71.01", True),
        ("15.71.01.1001", "15.71.01.1001", True),
        ("15.71", "15.71", True),
        ("1571011001", "1571", True),
        ("15.71.01.1001", "1571", True),
        ("15.71.01.1001", None, True),
        ("15.71.01.1001", "", True),
        ("anything", None, True),
        ("15.72.01.1001", "15.71", False),
        ("15.710", "15.71", False),
        ("15.71", "15.71.01", False),
        ("15", "15.71", False),
        ("16.71.01.1001", "15.71", False),
        ("15.71.01.1001", "15.7", False),
        ("garbage", "15", False),
        ("15.71.01.1001", "garbage", False),
        ("", "15", False),
    ],
)
def test_is_within(code: str, prefix: str | None, inside: bool) -> None:
    assert is_within(code, prefix) is inside
