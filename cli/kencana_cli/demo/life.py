"""A month of programme life after the story: what else happens to a family, a group and the kitchens.

Every kind of domain event the services publish happens here at least once, on one more family (the Saputra
family, in RW 004 of the last kitchen's village: the RW no kitchen serves until the kitchen extends to it), one
UPPKA group of that village, one new group and one trial kitchen, always through the public APIs as a partner
would. A second run finds what the first did (Idempotency-Keys, or the state read back) and does not do it again.

The steps, in the users' words:
- the family registers (twins under two, a daughter of 20, the husband's mother); the mother is added a second
  time by another kader, and the two records are merged;
- twin A is measured stunted at the posyandu weeks ago: no kitchen serves RW 004, she waits; the kitchen
  extends to RW 004 and takes 20 more portions, and she is enrolled from the waitlist; today she measures
  normal: the case is resolved;
- twin B's measurement is entered on A's card by mistake and retracted; B had been fed since the start of
  the programme (recorded late from the paper register) and, past the planned 90 days, shows no improvement:
  the kitchen is told (no-improvement flag);
- the mother is pregnant, joins the UPPKA group and gives birth; after the birth she takes an implant (MKJP);
- the daughter joins the group as a remaja, is screened as a catin, marries (now a PUS) and moves to her
  husband's family in another village, leaving the group; the grandmother dies;
- the family's welfare decile is updated after the DTSEN survey, and it moves to RW 003 of the same village;
- the group holds a PEK stunting session, corrects last month's report; the province's yearly target is set;
  a new group is registered, gets its PLKB and stops meeting (inactive);
- a CSR partner's trial kitchen in a village without families of the demo opens and closes a month later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from registry.identity.domain import make_kk, make_nik
from rich.console import Console

from kencana_cli.demo.api import Api, DemoError, poll, problem, rule_of
from kencana_cli.demo.growth import draw_child
from kencana_cli.demo.plan import Plan, choose_villages, today
from kencana_cli.demo.seed import Seeded, months_before

# Serials of the demo's own districts below the plan's 5000..9998 (plan.Serials): never the same NIK/KK.
SERIAL = 4990
DEADLINE = 60.0  # seconds a consequence (an event applied by another service) may take to show
FAMILY_RW = "004"  # no kitchen serves RW 004 until the kitchen extends to it (plan.KITCHEN_RWS)
MOVED_TO_RW = "003"
EXTRA_PORTIONS = 20
TWINS_AGE_DAYS = 420  # on the first day of the month: about 14 months, under two all year
FED_SINCE_DAYS = 100  # twin B has been fed since before the planned 90 days of a baduta enrolment
_chapter: ContextVar[list[str] | None] = ContextVar("demo_life_chapter", default=None)


@dataclass
class Life:
    api: Api
    plan: Plan
    seeded: Seeded
    console: Console

    def __post_init__(self) -> None:
        villages = self.plan.kitchen_villages
        self.village = villages[-1]
        self.kitchen = self.seeded.kitchens.get(self.village.code)
        self.group = next((g for g in self.seeded.groups if g["village_code"] == self.village.code), None)
        self.today = today()
        self.month = self.today.replace(day=1)
        self.ref = date(self.today.year, 1, 1)  # adults' birth dates anchored like the plan's (stable NIKs)

    def say(self, text: str) -> None:
        buffer = _chapter.get()
        if buffer is None:
            self.console.print("  " + text)
        else:
            buffer.append("  " + text)

    async def chapter(self, part: Callable[[], Awaitable[None]]) -> None:
        """One thread of the month, told in one piece although the threads run side by side."""
        buffer: list[str] = []
        _chapter.set(buffer)  # this task's own context: the other chapters keep theirs
        try:
            await part()
        finally:
            for line in buffer:
                self.console.print(line)

    # ------------------------------------------------------------------------------------------ helpers

    async def post(
        self, svc: str, path: str, body: dict[str, Any], *, key: str | None = None, etag: str | None = None
    ) -> Any:
        r = await self.api.call(
            svc, "POST", path, json=body, key=key, headers={"If-Match": etag} if etag else None
        )
        if r.status_code not in (200, 201):
            raise DemoError(f"{svc} POST {path}: {problem(r)}")
        return r.json()

    async def patch(self, svc: str, path: str, body: dict[str, Any]) -> Any:
        current = await self.api.call(svc, "GET", path)
        if current.status_code != 200:
            raise DemoError(f"{svc} GET {path}: {problem(current)}")
        r = await self.api.call(svc, "PATCH", path, json=body, headers={"If-Match": current.headers["ETag"]})
        if r.status_code != 200:
            raise DemoError(f"{svc} PATCH {path}: {problem(r)}")
        return r.json()

    async def once(
        self, kind: str, svc: str, path: str, body: dict[str, Any], key: str, lookup: Any = None
    ) -> dict[str, Any]:
        """A keyed create; its body moves with the day, so on another day the key is reused and the record
        found (`lookup`) or simply known to exist (no lookup: the answer is empty)."""

        async def known() -> dict[str, Any]:
            return {}

        row = await self.api.create(kind, svc, path, body, key=key, lookup=lookup or known)
        if row is None:
            raise DemoError(f"{svc} POST {path}: " + "; ".join(self.api.tally.failed.get(kind, [])[-1:]))
        return row

    async def etag(self, svc: str, path: str) -> tuple[dict[str, Any], str]:
        r = await self.api.call(svc, "GET", path)
        if r.status_code != 200:
            raise DemoError(f"{svc} GET {path}: {problem(r)}")
        return r.json(), r.headers["ETag"]

    async def until(self, what: str, probe: Any) -> Any:
        found, _ = await poll(probe, timeout=DEADLINE, interval=0.2)
        if not found:
            raise DemoError(f"{what}: not seen within {DEADLINE:.0f} s")
        return found

    async def replica_retry(self, svc: str, path: str, body: dict[str, Any], waiting: set[str]) -> Any:
        """A POST the service answers only once it has learnt a registry person from Kafka (unkeyed, so a
        refusal is not replayed)."""
        deadline = time.monotonic() + DEADLINE
        while True:
            r = await self.api.call(svc, "POST", path, json=body)
            if r.status_code in (200, 201):
                return r.json()
            if rule_of(r) not in waiting or time.monotonic() > deadline:
                raise DemoError(f"{svc} POST {path}: {problem(r)}")
            await asyncio.sleep(0.25)

    # ------------------------------------------------------------------------------------------ the family

    def family_body(self) -> dict[str, Any]:
        v = self.village
        head_birth, wife_birth = (
            self.ref.replace(year=self.ref.year - 34),
            self.ref.replace(year=self.ref.year - 29),
        )
        daughter_birth = self.ref.replace(year=self.ref.year - 20) - timedelta(days=40)
        grandma_birth = self.ref.replace(year=self.ref.year - 66) - timedelta(days=100)
        twins = self.month - timedelta(days=TWINS_AGE_DAYS)

        def nik(birth: date, sex: str, n: int) -> str:
            return str(make_nik(v.district, birth, "L" if sex == "L" else "P", SERIAL + n))

        return {
            "kk_number": make_kk(v.district, self.ref - timedelta(days=2000), SERIAL),
            "village_code": v.code,
            "rw": FAMILY_RW,
            "rt": "002",
            "street": "Jl. Kenanga No. 4",
            "welfare_decile": 1,
            "kampung_kb_id": self.seeded.kampung_kb.get(v.code),
            "drinking_water_source": "sumur_tidak_terlindung",
            "latrine_type": "jamban_tanpa_septik",
            "members": [
                {
                    "name": "Hendra Saputra",
                    "sex": "L",
                    "birth_date": head_birth.isoformat(),
                    "relation": "kepala_keluarga",
                    "marital_status": "kawin",
                    "nik": nik(head_birth, "L", 0),
                    "occupation": "buruh",
                },
                {
                    "name": "Wulan Sari",
                    "sex": "P",
                    "birth_date": wife_birth.isoformat(),
                    "relation": "istri",
                    "marital_status": "kawin",
                    "nik": nik(wife_birth, "P", 1),
                    "occupation": "pedagang",
                },
                {
                    "name": "Putri Lestari",
                    "sex": "P",
                    "birth_date": daughter_birth.isoformat(),
                    "relation": "anak",
                    "marital_status": "belum_kawin",
                    "nik": nik(daughter_birth, "P", 2),
                },
                {
                    "name": "Siti Aminah",
                    "sex": "P",
                    "birth_date": grandma_birth.isoformat(),
                    "relation": "orang_tua",
                    "marital_status": "cerai_mati",
                    "nik": nik(grandma_birth, "P", 3),
                },
                {"name": "Nayla Saputri", "sex": "P", "birth_date": twins.isoformat(), "relation": "anak"},
                {"name": "Naura Saputri", "sex": "P", "birth_date": twins.isoformat(), "relation": "anak"},
            ],
        }

    async def register_family(self) -> dict[str, Any]:
        body = self.family_body()
        head = body["members"][0]

        async def lookup() -> dict[str, Any] | None:
            persons = await self.api.all_pages("registry", "/v1/persons", {"region": self.village.code})
            found = next(
                (p for p in persons if (p["name"], p["birth_date"]) == (head["name"], head["birth_date"])),
                None,
            )
            return await self.api.get("registry", f"/v1/families/{found['family_id']}") if found else None

        family = await self.api.create(
            "life_family",
            "registry",
            "/v1/families",
            body,
            key=f"demo-life-family-{self.plan.seed}",
            lookup=lookup,
        )
        if family is None or not family.get("id"):
            raise DemoError(
                "the Saputra family could not be registered: "
                + "; ".join(self.api.tally.failed.get("life_family", [])[:2])
            )
        members = [
            *family.get("members", []),
            *await self.api.all_pages("registry", "/v1/persons", {"family_id": family["id"]}),
        ]
        # A merged duplicate stays as a tombstone with the same name: the record in force is the one kept.
        self.people: dict[str, dict[str, Any]] = {
            p["name"]: p for p in members if not p["merged_into_person_id"] and not p["deleted"]
        }
        self.family = family
        self.say(
            f"the Saputra family registers in {self.village.name}, RW {FAMILY_RW} (no kitchen serves it):"
            " twins of 14 months, a daughter of 20, the husband's mother"
        )
        return family

    def person(self, name: str) -> dict[str, Any]:
        return self.people[name]

    async def merge_grandmother(self) -> None:
        """Another kader adds the grandmother again (no NIK at hand); the duplicate is merged into her record."""
        kept = self.person("Siti Aminah")
        dup_body = {
            "name": kept["name"],
            "sex": "P",
            "birth_date": kept["birth_date"],
            "relation": "orang_tua",
            "marital_status": "cerai_mati",
        }
        dup = await self.post(
            "registry",
            f"/v1/families/{self.family['id']}/members",
            dup_body,
            key=f"demo-life-dup-{self.plan.seed}",
        )
        _, etag = await self.etag("registry", f"/v1/persons/{kept['id']}")
        r = await self.api.call(
            "registry",
            "POST",
            f"/v1/persons/{kept['id']}/merge",
            json={"merged_person_id": dup["id"]},
            headers={"If-Match": etag},
        )
        if r.status_code in (200, 201):
            self.say(
                "a second kader registered the grandmother again without her NIK: the two records are merged"
            )
        elif r.status_code in (404, 409, 422):
            self.say("the grandmother's duplicate was merged by an earlier run")
        else:
            raise DemoError(f"merge: {problem(r)}")

    # ------------------------------------------------------------------------------------------ children

    def measure(self, child: dict[str, Any], on: date, haz: float, waz: float) -> dict[str, Any]:
        drawn = draw_child(child["sex"], (on - date.fromisoformat(child["birth_date"])).days, haz, waz)
        return {
            "person_id": child["id"],
            "measured_on": on.isoformat(),
            "lenhei_cm": drawn.lenhei_cm,
            "weight_kg": drawn.weight_kg,
            "position": "l",
        }

    async def measurements(self, child: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.api.all_pages("registry", "/v1/measurements", {"person_id": child["id"]})

    async def twin_a(self) -> None:
        """Stunted, waiting (no kitchen for RW 004), enrolled when the kitchen extends, then measured normal."""
        assert self.kitchen is not None
        a = self.person("Nayla Saputri")
        done = await self.measurements(a)
        if not done:
            await self.post(
                "registry", "/v1/measurements", self.measure(a, self.today - timedelta(days=35), -2.5, -1.5)
            )
            self.say(
                f"twin A ({a['name']}) measured stunted 35 days ago at the posyandu: a stunting case opens"
            )

        async def waiting() -> Any:
            items = await self.api.all_pages("dashat", "/v1/waitlist", {"region": self.village.code})
            return next((w for w in items if w["person_id"] == a["id"]), None)

        async def enrolled() -> Any:
            items = await self.api.all_pages("dashat", "/v1/enrolments", {"person_id": a["id"]})
            return next((e for e in items if e["kitchen_id"] == self.kitchen_id), None)

        if not await enrolled():
            entry = await self.until("twin A on the DASHAT waitlist", waiting)
            self.say(f"  DASHAT: no kitchen serves RW {FAMILY_RW}: she waits (reason {entry['reason']})")
            await self.extend_kitchen()
            enrolment = await self.until("twin A enrolled from the waitlist", enrolled)
            self.say(
                f"  she leaves the waitlist: enrolled at {self.kitchen['name']} from {enrolment['start_date']}"
            )
        if len(done) < 2:
            await self.post("registry", "/v1/measurements", self.measure(a, self.today, -1.2, -0.8))
            self.say("  today she measures normal (HAZ -1.2): the registry resolves her case")

    async def extend_kitchen(self) -> None:
        assert self.kitchen is not None
        kitchen = await self.api.get("dashat", f"/v1/kitchens/{self.kitchen_id}")
        if FAMILY_RW in kitchen["rws"]:
            return
        body = {
            "rws": sorted({*kitchen["rws"], FAMILY_RW}),
            "capacity_per_day": kitchen["capacity_per_day"] + EXTRA_PORTIONS,
        }
        await self.patch("dashat", f"/v1/kitchens/{self.kitchen_id}", body)
        self.say(
            f"  {self.kitchen['name']} extends to RW {FAMILY_RW} and cooks {EXTRA_PORTIONS} more portions a day"
        )

    async def twin_b(self) -> None:
        """A measurement on the wrong card, retracted; fed since before the planned 90 days, no improvement."""
        b = self.person("Naura Saputri")
        done = await self.measurements(b)
        if not done:
            wrong = await self.post("registry", "/v1/measurements", self.measure(b, self.today, -1.2, -0.8))
            _, etag = await self.etag("registry", f"/v1/measurements/{wrong['id']}")
            await self.post(
                "registry",
                f"/v1/measurements/{wrong['id']}/retraction",
                {"reason": "dicatat di KMS kembarannya (entered on her twin's card)"},
                etag=etag,
            )
            self.say("twin B's measurement today was her sister's, entered on the wrong card: retracted")
        started = self.today - timedelta(days=FED_SINCE_DAYS)
        enrolments = await self.api.all_pages("dashat", "/v1/enrolments", {"person_id": b["id"]})
        enrolment = next(iter(enrolments), None)
        if enrolment is None:
            body = {
                "person_id": b["id"],
                "kitchen_id": self.kitchen_id,
                "category": "baduta_stunting",
                "start_date": started.isoformat(),
                "note": "dicatat dari buku register (recorded from the paper register)",
            }
            enrolment = await self.replica_retry("dashat", "/v1/enrolments", body, {"person.unknown"})
            self.say(
                f"  a field officer records from the paper register that twin B has been fed since {started}"
            )
        if not any(m["status"] == "active" for m in done):
            # Weighed three days after her start and again yesterday: still stunted, a little further below.
            await self.post(
                "registry", "/v1/measurements", self.measure(b, started + timedelta(days=3), -2.4, -1.4)
            )
            await self.post(
                "registry", "/v1/measurements", self.measure(b, self.today - timedelta(days=1), -2.6, -1.6)
            )

        async def flagged() -> Any:
            out = await self.api.get("dashat", f"/v1/enrolments/{enrolment['id']}/outcome")
            return out if out.get("flagged_no_improvement_on") else None

        out = await self.until("twin B's no-improvement flag", flagged)
        self.say(
            f"  HAZ {out['baseline_haz']} at the start, {out['latest_haz']} now, past the planned 90 days:"
            f" DASHAT flags no improvement ({out['flagged_no_improvement_on']})"
        )

    # ------------------------------------------------------------------------------------------ adults

    async def member(self, person: dict[str, Any], role: str = "anggota") -> dict[str, Any]:
        assert self.group is not None
        url = f"/v1/groups/{self.group['id']}/members"
        mine = [m for m in await self.api.all_pages("uppka", url) if m["person_id"] == person["id"]]
        if mine:
            return mine[0]
        body = {"person_id": person["id"], "role": role, "joined_on": self.today.isoformat()}
        return dict(await self.replica_retry("uppka", url, body, {"member.person_unknown"}))

    async def read_member(self, member: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.api.get("uppka", f"/v1/groups/{member['group_id']}/members/{member['id']}"))

    async def mother(self) -> None:
        """Wulan: pregnant, joins the group, gives birth, takes an implant after the birth (KB pasca salin)."""
        wulan = self.person("Wulan Sari")
        lmp = self.today - timedelta(days=275)

        async def hers() -> dict[str, Any] | None:
            items = await self.api.all_pages("registry", "/v1/pregnancies", {"region": self.village.code})
            return next((p for p in items if p["person_id"] == wulan["id"]), None)

        pregnancy = await self.once(
            "life_pregnancy",
            "registry",
            "/v1/pregnancies",
            {"person_id": wulan["id"], "lmp": lmp.isoformat(), "lila_cm": 24.5, "hb_g_dl": 11.6},
            f"demo-life-pregnancy-{self.plan.seed}",
            hers,
        )
        member = await self.member(wulan)
        self.say(
            f"Wulan (the mother) is pregnant and joins {self.group['name'] if self.group else 'the group'}"
        )
        current, etag = await self.etag("registry", f"/v1/pregnancies/{pregnancy['id']}")
        if current["status"] == "ongoing":
            end = {
                "outcome": "birth",
                "ended_on": self.today.isoformat(),
                "child": {"name": "Bayi Ny. Wulan", "sex": "L"},
            }
            await self.post("registry", f"/v1/pregnancies/{pregnancy['id']}/end", end, etag=etag)
            self.say("  she gives birth to a boy: the pregnancy ends and the baby is registered")
        await self.once(
            "life_kb_status",
            "registry",
            f"/v1/persons/{wulan['id']}/kb-status",
            {"method": "implant", "since": self.today.isoformat(), "service_source": "pemerintah"},
            f"demo-life-kb-{self.plan.seed}",
        )

        async def synced() -> Any:
            m = await self.read_member(member)
            return m if m["kb_method"] == "implant" else None

        m = await self.until("Wulan's new KB method in her UPPKA membership", synced)
        self.say(
            f"  after the birth she takes an implant (MKJP): her UPPKA membership shows {m['kb_method']}"
        )

    async def daughter(self) -> None:
        """Putri: remaja member, catin, marries (a PUS now), moves to her husband's family in another village."""
        putri = self.people.get("Putri Lestari")
        if putri is None:  # read back on another day: she is in her husband's family by now
            self.say("Putri married and moved to her husband's family in an earlier run")
            return
        member = await self.member(putri)
        if member["left_on"]:
            self.say(f"Putri married and left the group in an earlier run ({member['left_reason']})")
            return
        self.say(f"Putri (20) is in the group as a {member['category']}")
        await self.once(
            "life_catin",
            "registry",
            "/v1/catin",
            {
                "person_id": putri["id"],
                "planned_marriage_date": self.today.isoformat(),
                "screened_on": (self.today - timedelta(days=30)).isoformat(),
                "weight_kg": 50.5,
                "height_cm": 154.0,
                "lila_cm": 24.1,
                "hb_g_dl": 12.2,
            },
            f"demo-life-catin-{self.plan.seed}",
        )
        current = await self.api.get("registry", f"/v1/persons/{putri['id']}")
        if current["marital_status"] == "belum_kawin":
            await self.patch("registry", f"/v1/persons/{putri['id']}", {"marital_status": "kawin"})

        async def pus() -> Any:
            m = await self.read_member(member)
            return m if m["category"] == "pus" else None

        m = await self.until("Putri's new UPPKA category", pus)
        self.say(
            f"  screened as a catin, she marries: a PUS now, her UPPKA category changes to {m['category']}"
        )
        husband = next(
            (
                f
                for fp in self.plan.families
                if fp.village.code != self.village.code and (f := self.seeded.families.get(fp.n)) is not None
            ),
            None,
        )
        current, etag = await self.etag("registry", f"/v1/persons/{putri['id']}")
        if husband is not None and current["family_id"] != husband["id"]:
            await self.post(
                "registry",
                f"/v1/persons/{putri['id']}/move",
                {"to_family_id": husband["id"], "relation": "menantu", "moved_on": self.today.isoformat()},
                etag=etag,
            )

        async def left() -> Any:
            m = await self.read_member(member)
            return m if m["left_on"] else None

        m = await self.until("Putri leaving the group", left)
        self.say(
            f"  she moves to her husband's family in {husband['village_code'] if husband else '-'}: she leaves the group ({m['left_reason']})"
        )

    async def grandmother_dies(self) -> None:
        siti = self.person("Siti Aminah")
        current, etag = await self.etag("registry", f"/v1/persons/{siti['id']}")
        if current["died_on"]:
            return
        await self.post(
            "registry", f"/v1/persons/{siti['id']}/death", {"died_on": self.today.isoformat()}, etag=etag
        )
        self.say("the grandmother dies; the registry records it")

    async def family_changes(self) -> None:
        current, _ = await self.etag("registry", f"/v1/families/{self.family['id']}")
        if current["welfare_decile"] == 1:
            await self.patch("registry", f"/v1/families/{self.family['id']}", {"welfare_decile": 2})
            self.say("the DTSEN survey moves the family to welfare decile 2")
        current, etag = await self.etag("registry", f"/v1/families/{self.family['id']}")
        if current["rw"] == FAMILY_RW:
            body = {
                "village_code": self.village.code,
                "rw": MOVED_TO_RW,
                "rt": "001",
                "street": "Jl. Kenanga No. 9",
                # Same village, same Kampung KB: a move names it again (without it the family leaves it).
                "kampung_kb_id": current["kampung_kb_id"],
                "moved_on": self.today.isoformat(),
            }
            await self.post("registry", f"/v1/families/{self.family['id']}/move", body, etag=etag)
            self.say(f"the family moves to RW {MOVED_TO_RW} of the same village (the kitchen serves it too)")

    # ------------------------------------------------------------------------------------------ groups

    async def group_work(self) -> None:
        """A PEK session, last month's report corrected, the yearly targets, a new group that stops meeting."""
        if self.group is not None:
            gid = self.group["id"]
            members = await self.api.all_pages("uppka", f"/v1/groups/{gid}/members", {"active": "true"})
            await self.once(
                "life_activity",
                "uppka",
                f"/v1/groups/{gid}/activities",
                {
                    "activity_type": "pek_stunting",
                    "held_on": self.today.isoformat(),
                    "facilitator": f"PLKB {self.village.name}",
                    "attendee_member_ids": [m["id"] for m in members[:8]],
                },
                f"demo-life-activity-{gid}",
            )
            self.say(f"{self.group['name']} holds a PEK stunting session ({min(len(members), 8)} members)")
            period = months_before(self.plan.anchor, 1)[0]
            reports = await self.api.all_pages("uppka", f"/v1/groups/{gid}/reports")
            report = next((r for r in reports if r["period"] == period), None)
            if report is not None and report["version"] == 1:
                _, etag = await self.etag("uppka", f"/v1/groups/{gid}/reports/{report['id']}")
                figures = {
                    k: report[k]
                    for k in (
                        "omzet",
                        "costs",
                        "capital_balance",
                        "members_present",
                        "active_members",
                        "new_kb_acceptors",
                        "mkjp_switchers",
                    )
                }
                figures["omzet"] += 250_000
                await self.post(
                    "uppka",
                    f"/v1/groups/{gid}/reports/{report['id']}/amendments",
                    {**figures, "reason": "nota penjualan terlambat (a late sales receipt)"},
                    etag=etag,
                )
                self.say(
                    f"  its {period} report is corrected: a late sales receipt adds Rp 250,000 to the omzet"
                )
        for province, name in self.plan.provinces:
            groups = sum(1 for g in self.seeded.groups if g["village_code"].startswith(province + "."))
            r = await self.api.call(
                "uppka",
                "POST",
                "/v1/targets",
                json={"year": self.today.year, "province_code": province, "target_groups": groups + 5},
            )
            if r.status_code == 201:
                self.say(f"the {self.today.year} target for {name}: {groups + 5} UPPKA groups")
            elif rule_of(r) != "target.duplicate":  # set by an earlier run
                raise DemoError(f"uppka POST /v1/targets: {problem(r)}")
        founded = self.today - timedelta(days=60)
        body = {
            "code": f"DEMO-UPPKA-BARU-{self.plan.seed}",
            "name": f"UPPKA Tunas Harapan {self.village.name}",
            "village_code": self.village.code,
            "rw": FAMILY_RW,
            "founded_on": founded.isoformat(),
            "kampung_kb_id": self.seeded.kampung_kb.get(self.village.code),
        }

        async def lookup() -> dict[str, Any] | None:
            items = await self.api.all_pages("uppka", "/v1/groups", {"region": self.village.code})
            return next((g for g in items if g["code"] == body["code"]), None)

        new = await self.api.create(
            "life_group", "uppka", "/v1/groups", body, key=f"demo-life-group-{self.plan.seed}", lookup=lookup
        )
        if new is None or not new.get("id"):
            raise DemoError("the new UPPKA group could not be registered")
        current = await self.api.get("uppka", f"/v1/groups/{new['id']}")
        if current["status"] == "active":
            await self.patch(
                "uppka",
                f"/v1/groups/{new['id']}",
                {
                    "pembina_name": f"PLKB {self.village.name}",
                    "status": "inactive",
                    "status_changed_on": self.today.isoformat(),
                },
            )
            self.say(f"a new group, {body['name']}, gets its PLKB but stops meeting: inactive")

    # ------------------------------------------------------------------------------------------ kitchens

    async def trial_kitchen(self) -> None:
        """A CSR partner's trial kitchen for a month, in a village with no family of the demo: opened, closed."""
        taken = {v.code for v in self.plan.villages}
        spare = [v for v in choose_villages(20) if v.code not in taken]
        # With all 20 villages in use: the last kitchen's village, RW 005, where no family of the demo lives.
        code = spare[0].code if spare else self.village.code
        name = f"Dapur Uji Coba CSR {code}"

        async def lookup() -> dict[str, Any] | None:
            kitchens = await self.api.all_pages("dashat", "/v1/kitchens", {"village_code": code})
            return next((k for k in kitchens if k["name"] == name), None)

        kitchen = await lookup()
        if kitchen is None:
            kitchen = await self.once(
                "life_kitchen",
                "dashat",
                "/v1/kitchens",
                {
                    "name": name,
                    "village_code": code,
                    "rws": ["005"],
                    "management_model": "commercial",
                    "capacity_per_day": 30,
                    "opened_on": (self.today - timedelta(days=30)).isoformat(),
                },
                f"demo-life-kitchen-{self.plan.seed}",
                lookup,
            )
        if kitchen["status"] == "active":
            _, etag = await self.etag("dashat", f"/v1/kitchens/{kitchen['id']}")
            await self.post(
                "dashat",
                f"/v1/kitchens/{kitchen['id']}/close",
                {"closed_on": self.today.isoformat()},
                etag=etag,
            )
            self.say(
                f"a CSR partner's trial kitchen in {code} opens for a month and closes when the trial ends"
            )

    # ------------------------------------------------------------------------------------------ all

    @property
    def kitchen_id(self) -> str:
        assert self.kitchen is not None
        return str(self.kitchen["id"])

    async def run(self) -> None:
        self.console.print()
        self.console.print(
            f"[bold]3. A month of programme life[/] in {self.village.name} ({self.village.code}):"
            " every other kind of event, once"
        )
        if self.kitchen is None:
            raise DemoError("the programme's life needs the kitchen of its village")
        await self.register_family()
        await self.merge_grandmother()
        await self.twin_a()
        # The rest only needs the family: the children, the adults, the groups and kitchens go side by side.
        await asyncio.gather(
            *(self.chapter(part) for part in (self.twin_b, self.adults, self.group_work, self.trial_kitchen))
        )
        await self.family_changes()

    async def adults(self) -> None:
        if self.group is None:
            self.say("[yellow]no UPPKA group in this village: the members' part is skipped[/]")
            return
        await self.mother()
        await self.daughter()
        await self.grandmother_dies()
