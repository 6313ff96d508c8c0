"""A province-sized Pendataan Keluarga import file, written row by row to disk, the same for the same seed.

Families are drawn by the demo's `FamilyBuilder` (Faker `id_ID` names, valid NIK/KK numbers, the demo's household
and age structure, KB statuses, pregnancies, baduta measured from the WHO tables), spread over every village of
one province with uneven village sizes, district after district in code order (as a provincial export is
sorted). One in ten families also houses an elderly parent, which the demo's young households lack.

Only one district's serial counters are held at a time, so memory stays flat whatever the number of families.
"""

from __future__ import annotations

import csv
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from kencana_cli.demo.plan import FamilyBuilder, FamilyPlan, Serials, Village, today

from shared.regions import load_regions

FAMILY_CELLS = ("kk_number", "village_code", "rw", "rt", "street", "welfare_decile", "drinking_water_source",
                "latrine_type")  # fmt: skip
PERSON_CELLS = ("nik", "name", "sex", "birth_date", "relation", "marital_status", "education", "occupation")
MEASUREMENT_CELLS = ("measured_on", "weight_kg", "lenhei_cm", "position")
KB_CELLS = ("kb_method", "kb_since", "kb_reason_non_use", "kb_service_source", "pregnancy_lmp")
ELDERLY_SHARE = 0.10
DEFAULT_PROVINCE = "15"  # Jambi: about a million families, 3.6 million people


def importer_columns() -> tuple[str, ...]:
    """The columns the registry's importer accepts, read at run time (the KB columns are new)."""
    from registry.imports.domain import COLUMNS

    return tuple(COLUMNS)


def importer_has_kb() -> bool:
    return "kb_method" in importer_columns()


def columns(with_kb: bool) -> tuple[str, ...]:
    return FAMILY_CELLS + PERSON_CELLS + MEASUREMENT_CELLS + (KB_CELLS if with_kb else ())


class DistrictSerials(Serials):
    """NIK serials counted per district, birth date and sex, KK serials per district and registration date.

    That is what the serial of a real NIK/KK counts within, so numbers never collide however many families a
    district has (up to 9,999 people born the same day there). Counters of a finished district are dropped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.district: str | None = None
        self.births: dict[tuple[date, str], int] = {}
        self.registrations: dict[date, int] = {}

    def _enter(self, district: str) -> None:
        if district != self.district:
            self.district, self.births, self.registrations = district, {}, {}

    def next_nik(self, district: str, birth: date, sex: str) -> int:
        self._enter(district)
        n = self.births[(birth, sex)] = self.births.get((birth, sex), 0) + 1
        if n > 9999:
            raise ValueError(f"more than 9,999 people of one sex born on {birth} in district {district}")
        return n

    def next_kk(self, district: str, registered: date) -> int:
        self._enter(district)
        n = self.registrations[registered] = self.registrations.get(registered, 0) + 1
        if n > 9999:
            raise ValueError(f"more than 9,999 families registered on {registered} in district {district}")
        return n


def province_villages(province: str) -> list[Village]:
    """Every village of the province, in code order."""
    regions = load_regions()
    prov = regions.get(province)
    if prov is None or prov.level != "province":
        raise ValueError(f"{province} is not a province code")
    out = []
    for regency in sorted(regions.children(province), key=lambda r: r.code):
        for district in sorted(regions.children(regency.code), key=lambda r: r.code):
            for v in sorted(regions.children(district.code), key=lambda r: r.code):
                out.append(
                    Village(v.code, v.name, district.code, regency.code, regency.name, prov.code, prov.name)
                )
    if not out:
        raise ValueError(f"province {province} has no villages in the region reference")
    return out


def families_per_village(rng: random.Random, villages: int, families: int) -> list[int]:
    """Uneven village sizes (log-normal, as real villages are), summing exactly to `families`."""
    weights = [rng.lognormvariate(0, 0.6) for _ in range(villages)]
    total = sum(weights)
    exact = [families * w / total for w in weights]
    counts = [int(x) for x in exact]
    # The families lost to rounding go to the villages that lost the most.
    for i in sorted(range(villages), key=lambda i: counts[i] - exact[i])[: families - sum(counts)]:
        counts[i] += 1
    return counts


@dataclass
class FileFigures:
    """What went into the file."""

    path: str
    province: str
    seed: int
    with_kb: bool
    families: int = 0
    persons: int = 0
    persons_without_nik: int = 0
    baduta_measured: int = 0
    kb_statuses: int = 0
    pregnancies: int = 0
    elderly: int = 0
    villages: int = 0
    districts: int = 0
    bytes: int = 0
    seconds: float = 0.0
    household_sizes: dict[str, int] = field(default_factory=dict)
    age_groups: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


AGE_GROUPS = ((0, "0-1"), (2, "2-4"), (5, "5-14"), (15, "15-24"), (25, "25-44"), (45, "45-59"), (60, "60+"))


def _age_group(birth: str, on: date) -> str:
    b = date.fromisoformat(birth)
    years = on.year - b.year - ((on.month, on.day) < (b.month, b.day))
    label = AGE_GROUPS[0][1]
    for lower, name in AGE_GROUPS:
        if years >= lower:
            label = name
    return label


def family_rows(fp: FamilyPlan, with_kb: bool) -> Iterator[dict[str, Any]]:
    """One row per member: the family's cells repeated, a baduta's measurement and a wife's KB on their rows."""
    family = {c: fp.body[c] for c in FAMILY_CELLS if c in fp.body}
    extra: dict[int, dict[str, Any]] = {}
    for e in fp.extras:
        cells = extra.setdefault(e.member, {})
        if e.kind == "measurement":
            cells.update({c: e.body[c] for c in MEASUREMENT_CELLS})
        elif e.kind == "kb" and with_kb:
            cells.update(
                kb_method=e.body.get("method"),
                kb_since=e.body.get("since"),
                kb_reason_non_use=e.body.get("reason_non_use"),
                kb_service_source=e.body.get("service_source"),
            )
        elif e.kind == "pregnancy" and with_kb:
            cells["pregnancy_lmp"] = e.body["lmp"]
    for n, member in enumerate(fp.body["members"]):
        yield {**family, **member, **extra.get(n, {})}


def _add_elderly(builder: FamilyBuilder, fp: FamilyPlan) -> None:
    """A widowed parent of the head, 60 to 85, living in the household."""
    rng = builder.rng
    age = rng.randint(60, 85)
    birth = builder.ref - timedelta(days=age * 365 + rng.randint(10, 300))
    sex = "P" if rng.random() < 0.65 else "L"
    fp.body["members"].append(builder.person(fp.village, "orang_tua", sex, birth, "cerai_mati"))


def generate(
    path: Path,
    *,
    families: int,
    seed: int = 20261201,
    province: str = DEFAULT_PROVINCE,
    with_kb: bool | None = None,
    progress_every: int = 100_000,
) -> FileFigures:
    """Write the CSV to `path` (streaming) and return what it holds; `with_kb=None` follows the importer."""
    started = time.perf_counter()
    if with_kb is None:
        with_kb = importer_has_kb()
    header = columns(with_kb)
    unknown = [c for c in header if c not in importer_columns()]
    if unknown:
        print(f"[scale] note: the importer does not know {', '.join(unknown)}; it will reject this file")
    villages = province_villages(province)
    rng = random.Random(seed)
    counts = families_per_village(rng, len(villages), families)
    builder = FamilyBuilder(seed, today(), DistrictSerials(), score_children=False)
    figures = FileFigures(str(path), province, seed, with_kb)
    on = builder.anchor
    districts: set[str] = set()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8", buffering=1 << 20) as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        n = 0
        for village, count in zip(villages, counts, strict=True):
            if count:
                figures.villages += 1
                districts.add(village.district)
            for _ in range(count):
                n += 1
                fp = builder.family(n, village, f"{builder.rng.randint(1, 12):03d}")
                if builder.rng.random() < ELDERLY_SHARE:
                    _add_elderly(builder, fp)
                    figures.elderly += 1
                members = fp.body["members"]
                figures.families += 1
                figures.persons += len(members)
                figures.persons_without_nik += sum(1 for m in members if "nik" not in m)
                size = str(min(len(members), 7)) + ("+" if len(members) >= 7 else "")
                figures.household_sizes[size] = figures.household_sizes.get(size, 0) + 1
                for m in members:
                    group = _age_group(m["birth_date"], on)
                    figures.age_groups[group] = figures.age_groups.get(group, 0) + 1
                for e in fp.extras:
                    figures.baduta_measured += e.kind == "measurement"
                    figures.kb_statuses += with_kb and e.kind == "kb"
                    figures.pregnancies += with_kb and e.kind == "pregnancy"
                writer.writerows(family_rows(fp, with_kb))
                if progress_every and n % progress_every == 0:
                    rate = n / (time.perf_counter() - started)
                    print(f"[scale] generated {n:,}/{families:,} families ({rate:,.0f}/s)", flush=True)
    figures.districts = len(districts)
    figures.bytes = path.stat().st_size
    figures.seconds = round(time.perf_counter() - started, 1)
    return figures
