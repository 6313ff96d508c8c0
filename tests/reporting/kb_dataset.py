"""Registry and UPPKA events of six couples and one group whose family planning figures are computed by hand.

Registered on 10 January 2026 (all wives married, relation istri unless said):
- FA (V2): wife WA (born 1990), husband HA (head) with a vasectomy (MOP) since 2020: the couple uses MKJP.
- FB (V3): wife WB, born 15 March 1976, on suntik from a private service since 2025: she completes 50 on
  15 March 2026 and leaves PUS that month (the registry's sweep says so too, twice, and once more late).
- FC (V1): wife WC, not using (IAT) from 12 January, on the pill from 2 March: a new acceptor in March.
- FD (V1): wife WD heads the family (her husband HD is `suami`); on the pill since 2025 (continuing use), HD
  on condoms from 1 February (the couple already used a method), implant from a private service from
  10 March: an MKJP switcher in March.
- FE (V1): wife WE, not using (TIAL) from 15 January: unmet need.
- FF (V1): wife WF, on the legacy merged MAL/traditional method since 2024: CPR, not mCPR.
UPPKA group G (V1): WE (pus) and a remaja join on 20 January as non-users; WC (pus) joins on 10 March as a
non-user, and her KB change effective 2 March (pil) is learnt on 20 March, after the join.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from shared.events import CloudEvent, build_envelope
from shared.events import registry as re
from shared.events import uppka as ue
from shared.events.vocab import MKJP_METHODS
from tests.reporting.dataset import V1, V2, V3


@dataclass
class KbDataset:
    id: dict[str, uuid.UUID]
    envelopes: list[CloudEvent]
    duplicates: list[CloudEvent]


def build_kb() -> KbDataset:
    names = ["FA", "FB", "FC", "FD", "FE", "FF", "WA", "HA", "WB", "WC", "HC", "WD", "HD", "WE", "HE", "WF"]
    names += ["G", "M1", "M2", "M3", "R"]
    i = {n: uuid.uuid4() for n in names}
    out: list[CloudEvent] = []
    dup: list[CloudEvent] = []

    def emit(data: Any, key: uuid.UUID, when: datetime) -> CloudEvent:
        env = build_envelope(data, key=str(key), time=when)
        out.append(env)
        return env

    jan10 = datetime(2026, 1, 10, 9, tzinfo=UTC)
    village = {"FA": V2, "FB": V3, "FC": V1, "FD": V1, "FE": V1, "FF": V1}
    for f, v in village.items():
        emit(re.FamilyRegistered(family_id=i[f], village_code=v), i[f], jan10)

    def facts(p: str, f: str, *, sex: str, birth: date, relation: str, pus: bool) -> dict[str, Any]:
        return dict(
            person_id=i[p],
            family_id=i[f],
            village_code=village[f],
            sex=sex,
            birth_date=birth,
            relation=relation,
            marital_status="kawin",
            has_nik=True,
            pus=pus,
            rule_version="pus-1",
        )

    wives = {"WA": "FA", "WB": "FB", "WC": "FC", "WD": "FD", "WE": "FE", "WF": "FF"}
    for w, f in wives.items():
        birth = date(1976, 3, 15) if w == "WB" else date(1990, 6, 1)
        relation = "kepala_keluarga" if w == "WD" else "istri"
        emit(
            re.PersonRegistered(**facts(w, f, sex="P", birth=birth, relation=relation, pus=True)), i[f], jan10
        )
    for h, f in {"HA": "FA", "HC": "FC", "HD": "FD", "HE": "FE"}.items():
        relation = "suami" if h == "HD" else "kepala_keluarga"
        emit(
            re.PersonRegistered(**facts(h, f, sex="L", birth=date(1988, 2, 2), relation=relation, pus=False)),
            i[f],
            jan10,
        )

    def kb(
        p: str,
        f: str,
        since: date,
        method: str | None,
        *,
        reason: str | None = None,
        source: str | None = None,
        previous: str | None = None,
        pus: bool = True,
    ) -> CloudEvent:
        data = re.KbStatusChanged(
            person_id=i[p],
            family_id=i[f],
            village_code=village[f],
            method=method,
            is_user=method is not None,
            mkjp=method in MKJP_METHODS,
            since=since,
            reason_non_use=reason,
            service_source=source,
            previous_method=previous,
            previous_mkjp=previous in MKJP_METHODS,
            pus=pus,
        )
        # Recorded on 15 January or on the day the use began, whichever is later.
        return emit(data, i[f], datetime.combine(max(since, date(2026, 1, 15)), datetime.min.time(), UTC))

    kb("HA", "FA", date(2020, 5, 1), "mop", pus=False)
    kb("WB", "FB", date(2025, 6, 1), "suntik", source="swasta")
    kb("WC", "FC", date(2026, 1, 12), None, reason="iat")
    kb("WC", "FC", date(2026, 3, 2), "pil", source="pemerintah")
    kb("WD", "FD", date(2025, 1, 1), "pil")
    kb("HD", "FD", date(2026, 2, 1), "kondom", pus=False)
    kb("WD", "FD", date(2026, 3, 10), "implant", source="swasta", previous="pil")
    kb("WE", "FE", date(2026, 1, 15), None, reason="tial")
    kb("WF", "FF", date(2024, 1, 1), "mal_tradisional")

    # The registry's daily sweep on WB's 50th birthday (pus false), redelivered, and a later run's repeat.
    sweep = re.PersonUpdated(
        **facts("WB", "FB", sex="P", birth=date(1976, 3, 15), relation="istri", pus=False)
    )
    dup.append(emit(sweep, i["FB"], datetime(2026, 3, 15, 0, 5, tzinfo=UTC)))
    emit(sweep, i["FB"], datetime(2026, 3, 16, 0, 5, tzinfo=UTC))

    # --- UPPKA
    emit(
        ue.GroupRegistered(group_id=i["G"], code="G", village_code=V1, status="active", name="UPPKA G"),
        i["G"],
        datetime(2026, 1, 5, tzinfo=UTC),
    )

    def join(m: str, p: str, f: str, cat: str, on: date) -> None:
        data = ue.MemberJoined(
            group_id=i["G"],
            member_id=i[m],
            person_id=i[p],
            family_id=i[f],
            village_code=V1,
            category=cat,
            role="anggota",
            joined_on=on,
            kb_user=False,
            mkjp=False,
        )
        emit(data, i["G"], datetime.combine(on, datetime.min.time(), UTC))

    join("M2", "WE", "FE", "pus", date(2026, 1, 20))
    join("M3", "R", "FE", "remaja", date(2026, 1, 20))
    join("M1", "WC", "FC", "pus", date(2026, 3, 10))
    late = ue.MemberKbStatusChanged(
        group_id=i["G"],
        member_id=i["M1"],
        person_id=i["WC"],
        village_code=V1,
        kb_method="pil",
        kb_user=True,
        mkjp=False,
        previous_mkjp=False,
        changed_on=date(2026, 3, 2),
    )
    emit(late, i["G"], datetime(2026, 3, 20, tzinfo=UTC))
    return KbDataset(i, out, dup)
