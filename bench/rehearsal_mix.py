"""A registry stream shaped like the scale rehearsal's initial load, for the consumer benches.

`make bench-scale FAMILIES=20000` (docs/scale.md) put about 138k registry events through each consumer: 55%
`person.registered`, 15% `family.registered`, 14% `kb_status.changed`, 11% `family.stunting_risk_changed`, 4%
`child.measured`, plus pregnancies and stunting detections. Per family, as its file held: 3.8 persons (a head,
most with a wife, children of every age, one family in ten an elderly parent), a KB status for 0.94 of them, a
baduta measured for 0.24, a pregnancy for 0.06; a KRS status for 0.76 families. Events come family after family
in that order (one import row is one family), as the registry's import publishes them. No UPPKA or DASHAT events:
the initial load has none.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta

from shared.events import CloudEvent, build_envelope
from shared.events import registry as re
from shared.events.envelope import EventData
from shared.events.vocab import MKJP_METHODS

METHODS = ["suntik", "pil", "implant", "iud", "kondom", "mow", "mal"]
TODAY = date(2026, 12, 1)


class _Load:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.villages = [
            f"15.{r:02d}.{d:02d}.{2000 + v}" for r in (1, 2) for d in (1, 2, 3) for v in range(40)
        ]
        self.events: list[CloudEvent] = []
        self.at = datetime(2026, 11, 30, 1, tzinfo=UTC)

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def emit(self, data: EventData, key: uuid.UUID) -> None:
        self.at += timedelta(milliseconds=1)  # the import's own clock: one family after another
        self.events.append(build_envelope(data, key=str(key), time=self.at))

    def person(
        self, fid: uuid.UUID, village: str, rw: str, relation: str, sex: str, born: date, married: bool
    ) -> uuid.UUID:
        pid = self.uid()
        age = (TODAY - born).days // 365
        self.emit(
            re.PersonRegistered(
                person_id=pid,
                family_id=fid,
                village_code=village,
                rw=rw,
                sex=sex,  # type: ignore[arg-type]
                birth_date=born,
                relation=relation,  # type: ignore[arg-type]
                marital_status="kawin" if married else "belum_kawin",
                has_nik=True,
                pus=married and sex == "P" and 15 <= age <= 49,
                rule_version="pus-1",
            ),
            fid,
        )
        return pid

    def family(self) -> None:
        r = self.rng
        fid, village, rw = self.uid(), r.choice(self.villages), f"{r.randint(1, 8):03d}"
        decile = r.randint(1, 10)
        self.emit(re.FamilyRegistered(family_id=fid, village_code=village, rw=rw, welfare_decile=decile), fid)
        mother_age = r.randint(19, 58)
        head_born = TODAY - timedelta(days=365 * (mother_age + r.randint(0, 8)) + r.randint(0, 364))
        self.person(fid, village, rw, "kepala_keluarga", "L", head_born, True)
        wife: uuid.UUID | None = None
        if r.random() < 0.92:
            wife_born = TODAY - timedelta(days=365 * mother_age + r.randint(0, 364))
            wife = self.person(fid, village, rw, "istri", "P", wife_born, True)
        babies: list[uuid.UUID] = []
        for _ in range(r.choice([0, 1, 1, 2, 2, 2, 3])):
            born = TODAY - timedelta(days=r.randint(30, 365 * min(20, mother_age - 18)))
            child = self.person(fid, village, rw, "anak", r.choice(["L", "P"]), born, False)
            if (TODAY - born).days < 730:
                babies.append(child)
                self.measure(fid, village, rw, child, born)
        if r.random() < 0.10:
            self.person(fid, village, rw, "orang_tua", "P", TODAY - timedelta(days=365 * 70), False)
        if wife is not None and mother_age <= 49:
            method = r.choice([*METHODS, None, None])
            since = TODAY - timedelta(days=r.randint(30, 900))
            self.emit(
                re.KbStatusChanged(
                    person_id=wife,
                    family_id=fid,
                    village_code=village,
                    method=method,  # type: ignore[arg-type]
                    is_user=method is not None,
                    mkjp=method in MKJP_METHODS,
                    since=since,
                    reason_non_use=None if method else "ingin_anak_segera",
                    pus=True,
                ),
                fid,
            )
            if method is None and r.random() < 0.25:
                self.emit(
                    re.PregnancyRegistered(
                        pregnancy_id=self.uid(),
                        person_id=wife,
                        family_id=fid,
                        village_code=village,
                        rw=rw,
                        expected_delivery=TODAY + timedelta(days=r.randint(20, 250)),
                        kek=r.random() < 0.15,
                        mother_age_years=mother_age,
                        welfare_decile=decile,
                        krs=decile <= 4,
                        rule_version="preg-1",
                    ),
                    fid,
                )
        if r.random() < 0.76:
            at_risk = decile <= 4 or bool(babies)
            self.emit(
                re.StuntingRiskChanged(
                    family_id=fid,
                    village_code=village,
                    at_risk=at_risk,
                    reasons=["air_minum"] if at_risk else [],
                    target=True,
                    welfare_decile=decile,
                    rule_version="krs-1",
                ),
                fid,
            )

    def measure(self, fid: uuid.UUID, village: str, rw: str, child: uuid.UUID, born: date) -> None:
        r = self.rng
        measured_on = TODAY - timedelta(days=r.randint(1, 25))
        haz = round(r.gauss(-1.2, 1.1), 2)
        cls = "severely_stunted" if haz < -3 else "stunted" if haz < -2 else "normal"
        mid = self.uid()
        self.emit(
            re.ChildMeasured(
                measurement_id=mid,
                person_id=child,
                family_id=fid,
                village_code=village,
                sex="L",
                measured_on=measured_on,
                age_days=(measured_on - born).days,
                weight_kg=9.0,
                lenhei_cm=75.0,
                position="l",
                haz=haz,
                haz_class=cls,
                rule_version="who-2006",
            ),
            fid,
        )
        if cls != "normal":
            self.emit(
                re.BadutaStuntingDetected(
                    case_id=self.uid(),
                    person_id=child,
                    family_id=fid,
                    village_code=village,
                    rw=rw,
                    measurement_id=mid,
                    measured_on=measured_on,
                    haz=haz,
                    age_days=(measured_on - born).days,
                    rule_version="case-1",
                    severity=cls,
                    sex="L",
                    birth_date=born,
                ),
                fid,
            )


def build_rehearsal_mix(n: int, seed: int = 11) -> list[CloudEvent]:
    """About n registry events of whole families, in the rehearsal's proportions."""
    load = _Load(seed)
    while len(load.events) < n:
        load.family()
    return load.events[:n]
