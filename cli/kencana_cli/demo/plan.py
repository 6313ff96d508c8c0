"""The synthetic programme, drawn from a seeded RNG: the same seed and day give the same bodies.

Pure: nothing here talks to a service. Adults' birth dates are anchored on January 1st of the current year so
their NIKs (which encode the birth date) stay the same from one day to the next; a baduta's birth and measurement
dates are anchored on the first day of the current month (the posyandu weighing day), so a re-import within the month finds the same child
(a person without NIK is matched by name and birth date) and the child stays under two all month.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from faker import Faker
from registry.identity.domain import make_kk, make_nik

from kencana_cli.demo.growth import draw_child
from shared.clock import business_today
from shared.regions import load_regions

# Districts outside Kota Jambi's 15.71.01, which the end-to-end tests use for their own kitchens.
DISTRICTS: tuple[tuple[str, int], ...] = (
    ("15.71.02", 4),  # Kota Jambi, Jambi Selatan
    ("32.01.01", 3),  # Kabupaten Bogor, Cibinong
    ("15.71.03", 3),  # Kota Jambi, Jambi Timur
    ("32.04.05", 4),  # Kabupaten Bandung, Cileunyi
    ("15.05.01", 3),  # Kabupaten Muaro Jambi, Jambi Luar Kota
    ("15.04.03", 3),  # Kabupaten Batanghari, Muara Bulian
)
RWS = ("001", "002", "003", "004")
KITCHEN_RWS = ["001", "002", "003"]  # RW 004 has no kitchen: its targets wait (reason no_kitchen)
STORY_RW = "002"

# Recorded on the wife, so no MOP (vasectomy): the registry refuses a male method for a woman.
MKJP = (("implant", 0.48), ("iud", 0.38), ("mow", 0.14))
SHORT_TERM = (("suntik", 0.60), ("pil", 0.27), ("kondom", 0.09), ("mal", 0.02), ("tradisional", 0.02))
NON_USE = (("iat", 0.45), ("tial", 0.35), ("ingin_anak_segera", 0.20))
BUSINESSES = (
    ("Keripik Pisang", "food_processing", "bungkus", 15_000),
    ("Dodol Nanas", "food_processing", "kotak", 25_000),
    ("Anyaman Pandan", "crafts", "pcs", 40_000),
    ("Batik Jambi", "crafts", "lembar", 250_000),
    ("Budidaya Lele", "livestock", "kg", 28_000),
    ("Warung Sembako", "trade", "paket", 50_000),
    ("Sayur Hidroponik", "agriculture", "ikat", 8_000),
    ("Jahit Seragam", "services", "stel", 120_000),
)
GROUP_NAMES = ("Sejahtera", "Mekar Sari", "Maju Bersama", "Harapan Ibu", "Sumber Rejeki", "Melati", "Berkah")


def today() -> date:
    """The services' business date (shared/clock.py), so no date the demo sends lies in their future."""
    return business_today()


def pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


@dataclass(frozen=True)
class Village:
    code: str
    name: str
    district: str
    regency: str
    regency_name: str
    province: str
    province_name: str

    @property
    def kkb_code(self) -> str:
        return "KKB-DEMO-" + self.code.replace(".", "")


@dataclass
class Extra:
    """A fact recorded after the family exists, about one of its members (by index in `members`)."""

    member: int
    kind: str  # kb | pregnancy | catin | measurement
    body: dict[str, Any]
    expected_haz: float | None = None
    expected_class: str | None = None


@dataclass
class FamilyPlan:
    n: int
    key: str
    village: Village
    rw: str
    body: dict[str, Any]
    extras: list[Extra] = field(default_factory=list)

    @property
    def head_nik(self) -> str:
        return str(self.body["members"][0]["nik"])


@dataclass
class Plan:
    seed: int
    anchor: date
    villages: list[Village]
    families: list[FamilyPlan]
    story: FamilyPlan
    kitchen_villages: list[Village]
    group_count: int

    @property
    def provinces(self) -> list[tuple[str, str]]:
        seen: dict[str, str] = {}
        for v in self.villages:
            seen.setdefault(v.province, v.province_name)
        return sorted(seen.items())


def choose_villages(count: int) -> list[Village]:
    regions = load_regions()
    by_district: list[list[Village]] = []
    for district, wanted in DISTRICTS:
        d = regions.get(district)
        assert d is not None and d.parent_code is not None, district
        regency = regions.get(d.parent_code)
        province = regions.get(district[:2])
        assert regency is not None and province is not None
        by_district.append(
            [
                Village(v.code, v.name, district, regency.code, regency.name, province.code, province.name)
                for v in sorted(regions.children(district), key=lambda r: r.code)[:wanted]
            ]
        )
    # Interleave the districts so a small demo still covers both provinces.
    chosen: list[Village] = []
    while len(chosen) < count and any(by_district):
        for villages in by_district:
            if villages and len(chosen) < count:
                chosen.append(villages.pop(0))
    return chosen


class Serials:
    """NIK/KK serials counted per district, so numbers never collide within the demo.

    The birth, sex and registration dates are what a NIK/KK serial really counts within; the demo's few
    families per district do not need them, a province-sized file does (bench/scale).
    """

    def __init__(self) -> None:
        self.nik: dict[str, int] = {}
        self.kk: dict[str, int] = {}

    def next_nik(self, district: str, birth: date, sex: str) -> int:
        self.nik[district] = self.nik.get(district, 0) + 1
        return 5000 + self.nik[district] % 4999  # 5000..9998: apart from the e2e tests' low serials

    def next_kk(self, district: str, registered: date) -> int:
        self.kk[district] = self.kk.get(district, 0) + 1
        return 5000 + self.kk[district] % 4999


def _birth(ref: date, rng: random.Random, years_min: int, years_max: int) -> date:
    return ref - timedelta(days=rng.randint(years_min * 365 + 10, years_max * 365 + 300))


class FamilyBuilder:
    """Draws families one at a time (the demo's plan, and the scale rehearsal's province file)."""

    def __init__(
        self, seed: int, anchor: date, serials: Serials | None = None, *, score_children: bool = True
    ) -> None:
        self.rng = random.Random(seed)
        self.fake = Faker("id_ID")
        self.fake.seed_instance(seed)
        self.anchor = anchor
        self.ref = date(anchor.year, 1, 1)
        self.month = anchor.replace(day=1)
        self.serials = serials or Serials()
        self.score_children = score_children

    def person(
        self, village: Village, relation: str, sex: str, birth: date, marital: str, *, nik: bool = True
    ) -> dict[str, Any]:
        first = self.fake.first_name_male() if sex == "L" else self.fake.first_name_female()
        body: dict[str, Any] = {
            "name": f"{first} {self.fake.last_name()}",
            "sex": sex,
            "birth_date": birth.isoformat(),
            "relation": relation,
            "marital_status": marital,
        }
        if nik:
            nik_sex: Literal["L", "P"] = "L" if sex == "L" else "P"
            serial = self.serials.next_nik(village.district, birth, sex)
            body["nik"] = make_nik(village.district, birth, nik_sex, serial)
        if relation in ("kepala_keluarga", "istri", "suami"):
            body["education"] = self.rng.choice(["SD", "SMP", "SMA", "SMA", "D3", "S1"])
            body["occupation"] = self.rng.choice(
                [
                    "petani",
                    "pedagang",
                    "buruh",
                    "wiraswasta",
                    "ibu rumah tangga",
                    "nelayan",
                    "guru",
                    "karyawan",
                ]
            )
        return body

    def kb(self, member: int, pregnant: bool) -> Extra:
        rng = self.rng
        since = (self.ref - timedelta(days=rng.randint(60, 1800))).isoformat()
        if pregnant:
            body: dict[str, Any] = {"method": None, "since": since, "reason_non_use": "hamil"}
        elif rng.random() < 0.65:
            method = pick(rng, MKJP) if rng.random() < 0.25 else pick(rng, SHORT_TERM)
            source = "pemerintah" if rng.random() < 0.7 else "swasta"
            body = {"method": method, "since": since, "service_source": source}
        else:
            body = {"method": None, "since": since, "reason_non_use": pick(rng, NON_USE)}
        return Extra(member, "kb", body)

    def family(self, n: int, village: Village, rw: str, *, story: bool = False) -> FamilyPlan:
        rng, anchor = self.rng, self.anchor
        head_age = rng.randint(24, 52)
        head_birth = _birth(self.ref, rng, head_age, head_age)
        members: list[dict[str, Any]] = []
        extras: list[Extra] = []
        female_head = not story and rng.random() < 0.06
        if female_head:
            members.append(self.person(village, "kepala_keluarga", "P", head_birth, "cerai_mati"))
            wife_index: int | None = None
        else:
            members.append(self.person(village, "kepala_keluarga", "L", head_birth, "kawin"))
            wife_age = max(18, head_age - rng.randint(0, 8))
            members.append(
                self.person(village, "istri", "P", _birth(self.ref, rng, wife_age, wife_age), "kawin")
            )
            wife_index = 1
        mother_age = head_age if female_head else wife_age
        # Older children, then possibly a baduta (the youngest).
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
            age = rng.randint(3, max(3, min(mother_age - 18, 26)))
            sex = rng.choice("LP")
            birth = _birth(self.ref, rng, age, age)
            members.append(self.person(village, "anak", sex, birth, "belum_kawin", nik=age >= 17))
            if age >= 19 and rng.random() < 0.35:
                planned = anchor + timedelta(days=rng.randint(30, 180))
                catin = {
                    "planned_marriage_date": planned.isoformat(),
                    "screened_on": (anchor - timedelta(days=rng.randint(0, 20))).isoformat(),
                    "weight_kg": round(rng.gauss(52 if sex == "P" else 60, 7), 1),
                    "height_cm": round(rng.gauss(153 if sex == "P" else 164, 6), 1),
                    "lila_cm": round(rng.gauss(25, 2.4), 1),
                    "hb_g_dl": round(rng.gauss(12.4, 1.3), 1),
                }
                extras.append(Extra(len(members) - 1, "catin", catin))
        has_baduta = story or (mother_age < 42 and rng.random() < 0.32)
        if has_baduta:
            sex = rng.choice("LP")
            # At most 690 days on the 1st: still under two (730 days) on the month's last day.
            age_days = rng.randint(380, 460) if story else rng.randint(40, 690)
            birth = self.month - timedelta(days=age_days)
            members.append(self.person(village, "anak", sex, birth, "belum_kawin", nik=False))
            if not story:
                # Weighed at the posyandu on the 1st: inside this month's indicators, never in the future,
                # and the same date on every run of the month (the import matches a measurement by its date).
                measured = self.month
                haz = max(-4.8, min(3.0, rng.gauss(-1.15, 1.05)))
                waz = max(-4.0, min(2.5, 0.6 * haz + rng.gauss(0, 0.75)))
                drawn = draw_child(sex, (measured - birth).days, haz, waz, score=self.score_children)
                extras.append(
                    Extra(
                        len(members) - 1,
                        "measurement",
                        {
                            "measured_on": measured.isoformat(),
                            "lenhei_cm": drawn.lenhei_cm,
                            "weight_kg": drawn.weight_kg,
                            "position": "l",
                        },
                        expected_haz=drawn.haz,
                        expected_class=drawn.haz_class,
                    )
                )
        if wife_index is not None and not story:
            pregnant = mother_age < 40 and rng.random() < 0.09
            extras.insert(0, self.kb(wife_index, pregnant))
            if pregnant:
                lmp = anchor - timedelta(days=rng.randint(30, 230))
                extras.append(
                    Extra(
                        wife_index,
                        "pregnancy",
                        {
                            "lmp": lmp.isoformat(),
                            "lila_cm": round(rng.gauss(24.8, 2.3), 1),
                            "hb_g_dl": round(rng.gauss(11.3, 1.3), 1),
                        },
                    )
                )
        registered = max(
            head_birth + timedelta(days=20 * 365), self.ref - timedelta(days=rng.randint(200, 4000))
        )
        body: dict[str, Any] = {
            "kk_number": make_kk(
                village.district, registered, self.serials.next_kk(village.district, registered)
            ),
            "village_code": village.code,
            "rw": rw,
            "rt": f"{rng.randint(1, 8):03d}",
            "street": self.fake.street_address(),
            "welfare_decile": rng.choices(range(1, 11), weights=[14, 13, 12, 11, 10, 10, 9, 8, 7, 6])[0],
            "drinking_water_source": rng.choices(
                [
                    "isi_ulang",
                    "ledeng",
                    "sumur_bor",
                    "sumur_terlindung",
                    "sumur_tidak_terlindung",
                    "air_permukaan",
                ],
                weights=[25, 20, 20, 20, 10, 5],
            )[0],
            "latrine_type": rng.choices(
                ["jamban_sendiri_septik", "jamban_bersama_septik", "jamban_tanpa_septik", "tidak_ada"],
                weights=[60, 15, 18, 7],
            )[0],
            "members": members,
        }
        key = "demo-story-family" if story else f"demo-family-{n}"
        return FamilyPlan(n, key, village, rw, body, extras)


def build_plan(*, seed: int, families: int, villages: int, kitchens: int, groups: int) -> Plan:
    anchor = today()
    chosen = choose_villages(villages)
    builder = FamilyBuilder(seed, anchor)
    plans = []
    for n in range(1, families + 1):
        village = chosen[(n - 1) % len(chosen)]
        plans.append(builder.family(n, village, builder.rng.choice(RWS)))
    story = builder.family(0, chosen[0], STORY_RW, story=True)
    return Plan(seed, anchor, chosen, plans, story, chosen[: min(kitchens, len(chosen))], groups)
