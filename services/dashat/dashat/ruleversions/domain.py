"""Which rule version decides: pure, no I/O.

The most specific region prefix wins (village over district over regency over province over national), and
within one prefix the latest `effective_from` on or before the decision date. The code default (national,
effective since ever) is the seed version, so a region without stored versions decides as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from dashat.enrolment.rules import DEFAULT_CONFIG, RuleConfig
from shared.regions import is_within

# The seed version applies from before any decision the system can make.
SEED_EFFECTIVE_FROM = date(2000, 1, 1)


@dataclass(frozen=True)
class StoredVersion:
    version: str
    region_prefix: str | None
    effective_from: date
    config: dict[str, Any]


SEED = StoredVersion(DEFAULT_CONFIG.version, None, SEED_EFFECTIVE_FROM, DEFAULT_CONFIG.to_json())


def specificity(region_prefix: str | None) -> int:
    """Segments of a Kemendagri code prefix: 0 national, 1 province, 2 regency, 3 district, 4 village."""
    return 0 if not region_prefix else region_prefix.count(".") + 1


def candidate_prefixes(village_code: str) -> list[str]:
    """The prefixes a village lies in, from the province down to the village itself."""
    parts = village_code.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts) + 1)]


def pick(versions: list[StoredVersion], village_code: str | None, on: date) -> StoredVersion:
    """The version deciding for a place on a day (the seed when no stored one applies)."""
    applicable = [
        v
        for v in versions
        if v.effective_from <= on
        and (
            v.region_prefix is None or (village_code is not None and is_within(village_code, v.region_prefix))
        )
    ]
    if not applicable:
        return SEED
    return max(applicable, key=lambda v: (specificity(v.region_prefix), v.effective_from))


def to_config(v: StoredVersion) -> RuleConfig:
    return RuleConfig.from_json(v.version, v.config)
