"""Kemendagri region reference (Kepmendagri 300.2.2-2138/2025), shared by every service.

The data is a dated snapshot committed under ``data/`` (see ``data/PROVENANCE.md``); nothing is fetched at
run time. Codes are dotted: ``PP`` province, ``PP.KK`` regency/city, ``PP.KK.CC`` district, ``PP.KK.CC.DDDD``
village.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Final, Literal

from pydantic import JsonValue

__all__ = [
    "CODE_PATTERN",
    "CODE_SCHEMA",
    "LEVELS",
    "SNAPSHOT_FILE",
    "SNAPSHOT_SHA256",
    "SNAPSHOT_VALID_FROM",
    "Level",
    "Region",
    "RegionIndex",
    "is_within",
    "level_of_code",
    "load_regions",
    "normalize_code",
]

Level = Literal["province", "regency", "district", "village"]
LEVELS: Final[tuple[Level, ...]] = ("province", "regency", "district", "village")

SNAPSHOT_FILE: Final = "regions-2025.tsv.gz"
# Kepmendagri 300.2.2-2138/2025 was signed on 25 April 2025; codes in force from then on.
SNAPSHOT_VALID_FROM: Final = date(2025, 4, 25)
# sha256 of data/regions-2025.tsv.gz; must equal data/PROVENANCE.md (a unit test checks both).
SNAPSHOT_SHA256: Final = "dae51f3040e0f6afa70efdb93d667a4235f32ef2c93a4b8e50d55364c0ff61f6"

_SEGMENT_WIDTHS: Final = (2, 2, 2, 4)
# What `normalize_code` accepts, as a JSON Schema pattern: the APIs declare it on every region code they take
# (`CODE_SCHEMA`), so a code the schema admits is never refused for its shape (only for not existing).
CODE_PATTERN: Final = (
    r"^(?:[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{4})?)?)?|[0-9]{4}|[0-9]{6}|[0-9]{10})$"
)
CODE_SCHEMA: Final[dict[str, JsonValue]] = {"pattern": CODE_PATTERN}
_DOTTED = re.compile(r"[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{4})?)?)?")
_UNDOTTED = re.compile(r"[0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{10}")


@dataclass(frozen=True, slots=True)
class Region:
    """One administrative region; ``parent_code`` is None for provinces."""

    code: str
    name: str
    level: Level
    parent_code: str | None
    postal_code: str | None = None


def normalize_code(code: str) -> str:
    """Return the dotted form of a 2/4/6/10-digit region code, dotted or not; raise ValueError otherwise."""
    c = code.strip()
    if c.isascii() and _DOTTED.fullmatch(c):
        return c
    if c.isascii() and _UNDOTTED.fullmatch(c):
        parts: list[str] = []
        pos = 0
        for width in _SEGMENT_WIDTHS:
            if pos >= len(c):
                break
            parts.append(c[pos : pos + width])
            pos += width
        return ".".join(parts)
    raise ValueError(f"not a region code: {code!r}")


def level_of_code(code: str) -> Level:
    """Level implied by the shape of a code (it need not exist); raise ValueError on a malformed code."""
    return LEVELS[normalize_code(code).count(".")]


def is_within(code: str, prefix: str | None) -> bool:
    """True when region ``code`` is ``prefix`` or lies inside it, compared by dotted segments.

    ``prefix`` None or "" is the national scope and contains everything. A malformed code or prefix is never
    within anything (deny by default): ``15.71`` contains ``15.71.01.1001`` but not ``15.710``.
    """
    if prefix is None or prefix.strip() == "":
        return True
    try:
        c = normalize_code(code).split(".")
        p = normalize_code(prefix).split(".")
    except ValueError:
        return False
    return len(p) <= len(c) and c[: len(p)] == p


def _parent_of(code: str) -> str | None:
    cut = code.rfind(".")
    return code[:cut] if cut > 0 else None


class RegionIndex:
    """In-memory index of all regions of one snapshot; read-only once built."""

    def __init__(self, regions: list[Region]) -> None:
        by_code: dict[str, Region] = {}
        children: dict[str, list[Region]] = {}
        counts: dict[Level, int] = dict.fromkeys(LEVELS, 0)
        for region in regions:
            by_code[region.code] = region
            children.setdefault(region.parent_code or "", []).append(region)
            counts[region.level] += 1
        for siblings in children.values():
            siblings.sort(key=lambda r: r.code)
        self._by_code = by_code
        self._children = children
        self.counts: Mapping[Level, int] = MappingProxyType(counts)

    def __len__(self) -> int:
        return len(self._by_code)

    def _key(self, code: str | None) -> str | None:
        if code is None or code.strip() == "":
            return ""
        try:
            return normalize_code(code)
        except ValueError:
            return None

    def get(self, code: str) -> Region | None:
        """The region with this code (dotted or not), or None."""
        key = self._key(code)
        return self._by_code.get(key) if key else None

    def exists(self, code: str) -> bool:
        """True when the code is in the snapshot."""
        return self.get(code) is not None

    def children(self, code: str | None = None) -> list[Region]:
        """Direct children sorted by code; code None or "" gives the provinces."""
        key = self._key(code)
        if key is None:
            return []
        return list(self._children.get(key, ()))

    def ancestors(self, code: str) -> list[Region]:
        """Known ancestors from the province down to the direct parent (the region itself excluded)."""
        key = self._key(code)
        if not key:
            return []
        chain: list[Region] = []
        parent = _parent_of(key)
        while parent is not None:
            region = self._by_code.get(parent)
            if region is not None:
                chain.append(region)
            parent = _parent_of(parent)
        chain.reverse()
        return chain

    def level_of(self, code: str) -> Level | None:
        """Level of a known region, or None when the code is not in the snapshot."""
        region = self.get(code)
        return region.level if region is not None else None

    def count(self, level: Level) -> int:
        """Number of regions of one level."""
        return self.counts[level]


def _read_snapshot() -> bytes:
    return resources.files(__name__).joinpath("data").joinpath(SNAPSHOT_FILE).read_bytes()


@lru_cache(maxsize=1)
def load_regions() -> RegionIndex:
    """Load the committed snapshot once per process."""
    text = gzip.decompress(_read_snapshot()).decode("utf-8")
    lines = text.splitlines()
    if lines[0] != "code\tname\tlevel\tpostal_code":
        raise ValueError(f"unexpected header in {SNAPSHOT_FILE}: {lines[0]!r}")
    levels: dict[str, Level] = {level: level for level in LEVELS}
    regions: list[Region] = []
    append = regions.append
    for line in lines[1:]:
        code, name, level, postal = line.split("\t")
        append(Region(code, name, levels[level], _parent_of(code), postal or None))
    return RegionIndex(regions)
