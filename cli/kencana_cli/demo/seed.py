"""Load the synthetic programme through the public APIs; a second run finds what is there and adds nothing."""

from __future__ import annotations

import asyncio
import csv
import io
import random
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kencana_cli.demo.api import Api, DemoError, problem, rule_of
from kencana_cli.demo.plan import BUSINESSES, GROUP_NAMES, KITCHEN_RWS, FamilyPlan, Plan, Village

# The import's columns the plan fills (the family's, the person's, a baduta's measurement).
IMPORT_COLUMNS = (
    "kk_number",
    "village_code",
    "rw",
    "rt",
    "street",
    "welfare_decile",
    "drinking_water_source",
    "latrine_type",
    "kampung_kb_code",
    "nik",
    "name",
    "sex",
    "birth_date",
    "relation",
    "marital_status",
    "education",
    "occupation",
    "measured_on",
    "weight_kg",
    "lenhei_cm",
    "position",
)
IMPORT_DEADLINE = 600.0
MEMBERS_PER_GROUP = 10
REPORT_MONTHS = 6
REPLICA_DEADLINE = 120.0  # seconds uppka may take to learn a registry person from Kafka


@dataclass
class Seeded:
    kampung_kb: dict[str, str] = field(default_factory=dict)  # village code -> id
    kitchens: dict[str, dict[str, Any]] = field(default_factory=dict)  # village code -> kitchen
    families: dict[int, dict[str, Any]] = field(default_factory=dict)  # plan n -> family with members
    groups: list[dict[str, Any]] = field(default_factory=list)
    menus: dict[str, str] = field(default_factory=dict)  # kitchen id -> baduta menu id


def progress(console: Console) -> Progress:
    return Progress(
        TextColumn("  {task.description:<34}"),
        BarColumn(bar_width=36),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def months_before(anchor: date, count: int) -> list[str]:
    periods = []
    y, m = anchor.year, anchor.month
    for _ in range(count):
        m -= 1
        if m == 0:
            y, m = y - 1, 12
        periods.append(f"{y:04d}-{m:02d}")
    return sorted(periods)


class Seeder:
    def __init__(self, api: Api, plan: Plan, console: Console) -> None:
        self.api, self.plan, self.console = api, plan, console
        self.out = Seeded()
        self.import_summary: dict[str, Any] | None = None

    # ------------------------------------------------------------------------------------------ places

    async def kampung_kb(self) -> None:
        existing = {
            k["code"]: k["id"]
            for k in await self.api.all_pages(
                "registry", "/v1/kampung-kb", {"region": self.plan.villages[0].province}
            )
        }
        for province, _ in self.plan.provinces[1:]:
            for k in await self.api.all_pages("registry", "/v1/kampung-kb", {"region": province}):
                existing[k["code"]] = k["id"]

        async def one(v: Village) -> None:
            if v.kkb_code in existing:
                self.api.tally.add("kampung_kb", created=False)
                self.out.kampung_kb[v.code] = existing[v.kkb_code]
                return
            body = {
                "code": v.kkb_code,
                "name": f"Kampung KB {v.name}",
                "village_code": v.code,
                "rws": [],
                "designated_on": date(self.plan.anchor.year - 2, 3, 1).isoformat(),
            }

            async def lookup() -> dict[str, Any] | None:
                items = await self.api.all_pages("registry", "/v1/kampung-kb", {"region": v.code})
                return next((k for k in items if k["code"] == v.kkb_code), None)

            row = await self.api.create(
                "kampung_kb", "registry", "/v1/kampung-kb", body, key=f"demo-kkb-{v.code}", lookup=lookup
            )
            if row is not None:
                self.out.kampung_kb[v.code] = row["id"]

        await asyncio.gather(*(one(v) for v in self.plan.villages))

    async def kitchens(self) -> None:
        existing = {
            (k["village_code"], k["name"]): k
            for k in await self.api.all_pages("dashat", "/v1/kitchens", {"status": "active"})
        }
        models = ("combined", "social", "commercial")
        for i, v in enumerate(self.plan.kitchen_villages):
            name = f"Dapur Sehat Atasi Stunting {v.name}"
            if (v.code, name) in existing:
                self.api.tally.add("kitchen", created=False)
                self.out.kitchens[v.code] = existing[(v.code, name)]
                continue
            body = {
                "name": name,
                "kampung_kb_id": self.out.kampung_kb.get(v.code),
                "village_code": v.code,
                "rws": KITCHEN_RWS,
                "management_model": models[i % len(models)],
                "capacity_per_day": 60,
                "opened_on": (self.plan.anchor - timedelta(days=120)).isoformat(),
            }
            row = await self.api.create("kitchen", "dashat", "/v1/kitchens", body, key=None)
            if row is not None:
                self.out.kitchens[v.code] = row

    # ------------------------------------------------------------------------------------------ families

    async def registered(self) -> dict[int, dict[str, Any]]:
        """The plan's families the registry already holds, with their members, read from the village lists.

        A family is recognised by its head's name and birth date in its village (the NIK is masked in lists);
        an ambiguous or missing match is settled by a search on the head's NIK.
        """
        villages = sorted({fp.village.code for fp in self._all_families()})
        persons_by_village, families_by_village = await asyncio.gather(
            asyncio.gather(*(self.api.all_pages("registry", "/v1/persons", {"region": v}) for v in villages)),
            asyncio.gather(
                *(self.api.all_pages("registry", "/v1/families", {"region": v}) for v in villages)
            ),
        )
        members: dict[str, list[dict[str, Any]]] = {}
        for persons in persons_by_village:
            for person in persons:
                members.setdefault(person["family_id"], []).append(person)
        families = {f["id"]: f for batch in families_by_village for f in batch}
        heads: dict[tuple[str, str, str], list[str]] = {}
        for family_id, people in members.items():
            family = families.get(family_id)
            for person in people:
                if family is not None and person["relation"] == "kepala_keluarga":
                    heads.setdefault(
                        (family["village_code"], person["name"], person["birth_date"]), []
                    ).append(family_id)
        out: dict[int, dict[str, Any]] = {}
        unsure: list[FamilyPlan] = []
        for fp in self._all_families():
            head = fp.body["members"][0]
            found = heads.get((fp.village.code, head["name"], head["birth_date"]), [])
            if len(found) == 1:
                out[fp.n] = self._matched(fp, families[found[0]], members[found[0]])
            elif found:
                unsure.append(fp)

        async def by_nik(fp: FamilyPlan) -> None:
            r = await self.api.call(
                "registry",
                "POST",
                "/v1/persons:search",
                json={"nik": fp.head_nik},
                # A NIK search is a personal-data operation: scoped, logged with its purpose.
                headers={"X-Purpose": "demo: find a family seeded by an earlier run"},
            )
            if r.status_code == 200 and r.json()["items"]:
                family_id = r.json()["items"][0]["family_id"]
                if family_id in families:
                    out[fp.n] = self._matched(fp, families[family_id], members.get(family_id, []))

        await asyncio.gather(*(by_nik(fp) for fp in unsure))
        return out

    def _all_families(self) -> list[FamilyPlan]:
        return [self.plan.story, *self.plan.families]

    @staticmethod
    def _matched(fp: FamilyPlan, family: dict[str, Any], people: list[dict[str, Any]]) -> dict[str, Any]:
        """The registry's family with the plan's members in plan order (None for one it does not hold).

        `exact` says whether every planned member is there with the planned birth date; a baduta registered in
        another month (its birth date is anchored on the month) is still found by its name.
        """
        exact = {(p["name"], p["birth_date"]): p for p in people}
        by_name = {p["name"]: p for p in people}
        planned = [exact.get((m["name"], m["birth_date"])) for m in fp.body["members"]]
        return {
            **family,
            "exact": all(p is not None for p in planned),
            "planned_members": [
                p if p is not None else by_name.get(m["name"])
                for p, m in zip(planned, fp.body["members"], strict=True)
            ],
        }

    def import_file(self, known: dict[int, dict[str, Any]]) -> tuple[bytes, int, int]:
        """The families as a Pendataan Keluarga CSV, one row per person with the baduta's measurement on its row.

        A family in a Kampung KB village carries that Kampung KB's code, so the import links it.

        A family the registry holds with other members than planned (a baduta registered in another month,
        when its anchored birth date differed) is left out: a re-import would add that child a second time.
        Returns the file, its families and the families left out.
        """
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=IMPORT_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        families = skipped = 0
        for fp in self._all_families():
            found = known.get(fp.n)
            if found is not None and not found["exact"]:
                skipped += 1
                continue
            measured = {e.member: e.body for e in fp.extras if e.kind == "measurement"}
            family_cells = {k: v for k, v in fp.body.items() if k != "members"}
            if fp.village.code in self.out.kampung_kb:  # the village's Kampung KB exists (seeded above)
                family_cells["kampung_kb_code"] = fp.village.kkb_code
            for n, member in enumerate(fp.body["members"]):
                writer.writerow({**family_cells, **member, **measured.get(n, {})})
            families += 1
        return out.getvalue().encode(), families, skipped

    async def bulk_import(self, bar: Progress, payload: bytes, rows: int) -> None:
        """`POST /v1/imports?mode=commit`; a large file becomes a job whose Location is polled to the end."""
        task = bar.add_task("families and baduta (bulk import)", total=rows)
        r = await self.api.call(
            "registry",
            "POST",
            "/v1/imports",
            content=payload,
            params={"mode": "commit"},
            headers={"Content-Type": "text/csv"},
            attempts=3,
        )
        if r.status_code not in (201, 202):
            raise DemoError(f"the registry refused the import: {problem(r)}")
        job = r.json()
        location = r.headers.get("Location", f"/v1/imports/{job['id']}")
        started = time.monotonic()
        while job["status"] not in ("done", "failed"):
            bar.update(task, total=job["total_rows"] or rows, completed=job["processed_rows"])
            if time.monotonic() - started > IMPORT_DEADLINE:
                raise DemoError(f"the import {location} did not finish within {IMPORT_DEADLINE:.0f} s")
            await asyncio.sleep(0.5)
            job = await self.api.get("registry", location)
        if job["status"] == "failed":
            raise DemoError(f"the import {location} failed: {job.get('error')}")
        bar.update(task, total=job["total_rows"], completed=job["total_rows"])
        summary = job["summary"]
        for kind, counts in (
            ("family", summary["families"]),
            ("person", summary["persons"]),
            ("measurement", summary["measurements"]),
        ):
            self.api.tally.add_many(kind, created=True, count=counts["created"])
            self.api.tally.add_many(kind, created=False, count=counts["unchanged"] + counts["updated"])
            if counts["rejected"]:
                issues = await self.api.get(
                    "registry", job["errors_url"], params={"level": "error", "limit": 3}
                )
                for issue in issues["items"]:
                    self.api.tally.fail(
                        kind,
                        f"import row {issue['row']} {issue['field']}: {issue['rule']} ({issue['message']})",
                    )
        self.import_summary = summary

    async def extras(self, fp: FamilyPlan, family: dict[str, Any]) -> None:
        """What the import does not carry: KB status, pregnancy and catin screening."""
        members = family["planned_members"]
        for extra in fp.extras:
            person = members[extra.member]
            if person is None or extra.kind == "measurement":  # measurements came with the import
                continue
            pid = person["id"]
            key = f"{fp.key}-{extra.kind}-{extra.member}"
            if extra.kind == "kb":
                await self.api.create(
                    "kb_status",
                    "registry",
                    f"/v1/persons/{pid}/kb-status",
                    extra.body,
                    key=key,
                    lookup=_found,
                )
            elif extra.kind == "pregnancy":
                await self.api.create(
                    "pregnancy",
                    "registry",
                    "/v1/pregnancies",
                    {"person_id": pid, **extra.body},
                    key=key,
                    lookup=_found,
                )
            elif extra.kind == "catin":
                await self.api.create(
                    "catin", "registry", "/v1/catin", {"person_id": pid, **extra.body}, key=key, lookup=_found
                )

    async def families(self, bar: Progress) -> None:
        known = await self.registered()
        payload, count, skipped = self.import_file(known)
        if skipped:
            self.api.tally.add_many("family", created=False, count=skipped)
            self.console.print(
                f"  {skipped} families registered in another month are kept as they are (not re-imported)"
            )
        rows = payload.count(b"\n") - 1
        started = time.monotonic()
        await self.bulk_import(bar, payload, rows)
        done = self.import_summary or {}
        self.console.print(
            f"  import of {count} families ({rows} rows, {len(payload) / 1e6:.1f} MB) in"
            f" {time.monotonic() - started:.1f} s: "
            + "; ".join(
                f"{kind} " + ", ".join(f"{n} {what}" for what, n in done.get(kind, {}).items() if n)
                for kind in ("families", "persons", "measurements")
                if any(done.get(kind, {}).values())
            )
        )
        if self.api.tally.created.get("family") or self.api.tally.created.get("person"):
            known = await self.registered()  # the new records' ids
        task = bar.add_task("KB status, pregnancy, catin", total=len(known))
        started = time.monotonic()

        async def one(fp: FamilyPlan) -> None:
            family = known.get(fp.n)
            if family is not None:
                self.out.families[fp.n] = family
                await self.extras(fp, family)
                bar.advance(task)

        await asyncio.gather(*(one(fp) for fp in self._all_families()))
        self.console.print(f"  KB statuses, pregnancies and catin in {time.monotonic() - started:.1f} s")

    # ------------------------------------------------------------------------------------------ UPPKA

    def _group_plans(self) -> list[dict[str, Any]]:
        founded = self.plan.anchor - timedelta(days=400)
        plans = []
        for i in range(self.plan.group_count):
            v = self.plan.villages[i % len(self.plan.villages)]
            plans.append(
                {
                    "code": f"DEMO-UPPKA-{i + 1:03d}",
                    "name": f"UPPKA {GROUP_NAMES[i % len(GROUP_NAMES)]} {v.name}",
                    "register_number": f"REG/DEMO/{i + 1:03d}",
                    "sk_number": f"SK/{i + 1:03d}/KB/{founded.year}",
                    "sk_date": founded.isoformat(),
                    "founded_on": founded.isoformat(),
                    "kampung_kb_id": self.out.kampung_kb.get(v.code),
                    "village_code": v.code,
                    "rw": f"{1 + (i // len(self.plan.villages)) % 4:03d}",
                    "pembina_name": f"PLKB {v.name}",
                    "funding": [{"source": "apbd", "amount": 5_000_000, "received_on": founded.isoformat()}],
                }
            )
        return plans

    async def groups(self, bar: Progress) -> None:
        plans = self._group_plans()
        task = bar.add_task("UPPKA groups and members", total=len(plans))
        existing: dict[str, dict[str, Any]] = {}
        for province, _ in self.plan.provinces:
            for g in await self.api.all_pages("uppka", "/v1/groups", {"region": province}):
                existing[g["code"]] = g
        # The group's members: wives of the village (KB users first, so the chair is one).
        wives: dict[str, list[tuple[dict[str, Any], bool]]] = {}
        for fp in self.plan.families:
            family = self.out.families.get(fp.n)
            kb = next((e for e in fp.extras if e.kind == "kb"), None)
            if family is None or kb is None or family["planned_members"][kb.member] is None:
                continue
            wives.setdefault(fp.village.code, []).append(
                (family["planned_members"][kb.member], bool(kb.body["method"]))
            )

        async def one(i: int, body: dict[str, Any]) -> None:
            group = existing.get(body["code"])
            if group is None:

                async def lookup() -> dict[str, Any] | None:
                    items = await self.api.all_pages("uppka", "/v1/groups", {"region": body["village_code"]})
                    return next((g for g in items if g["code"] == body["code"]), None)

                group = await self.api.create(
                    "uppka_group", "uppka", "/v1/groups", body, key=f"demo-group-{i}", lookup=lookup
                )
            else:
                self.api.tally.add("uppka_group", created=False)
            if group is None:
                bar.advance(task)
                return
            group = {**group, "plan_index": i}
            self.out.groups.append(group)
            pool = wives.get(body["village_code"], [])
            share = len(self.plan.villages)
            mine = [w for n, w in enumerate(pool) if n % 4 == i // share % 4][:MEMBERS_PER_GROUP]
            mine.sort(key=lambda w: not w[1])  # a KB user first: she chairs the group
            await self.members(group, mine, date.fromisoformat(body["founded_on"]) + timedelta(days=30))
            await self.business_and_reports(group, i)
            bar.advance(task)

        await asyncio.gather(*(one(i, body) for i, body in enumerate(plans)))

    async def members(
        self, group: dict[str, Any], people: list[tuple[dict[str, Any], bool]], joined: date
    ) -> None:
        url = f"/v1/groups/{group['id']}/members"
        present = {m["person_id"] for m in await self.api.all_pages("uppka", url)}
        for n, (person, kb_user) in enumerate(people):
            if person["id"] in present:
                self.api.tally.add("uppka_member", created=False)
                continue
            role = "ketua" if n == 0 and kb_user else "anggota"
            body = {"person_id": person["id"], "role": role, "joined_on": joined.isoformat()}
            # uppka learns people from the registry's events: until it has, a join is refused as unknown.
            # Unkeyed on purpose: a stored 422 would be replayed for ever.
            deadline = time.monotonic() + REPLICA_DEADLINE
            while True:
                r = await self.api.call("uppka", "POST", url, json=body)
                rule = rule_of(r)
                if r.status_code == 201:
                    self.api.tally.add("uppka_member", created=True)
                    break
                if r.status_code == 409 and rule in ("member.duplicate", "member.role_taken"):
                    self.api.tally.add("uppka_member", created=False)
                    break
                waiting = rule in ("member.person_unknown", "member.leader_not_kb_user")
                if not waiting or time.monotonic() > deadline:
                    self.api.tally.fail("uppka_member", f"POST {url}: {problem(r)}")
                    break
                await asyncio.sleep(0.25)

    async def business_and_reports(self, group: dict[str, Any], i: int) -> None:
        gid = group["id"]
        name, sector, unit, price = BUSINESSES[i % len(BUSINESSES)]
        businesses = await self.api.all_pages("uppka", f"/v1/groups/{gid}/businesses")
        if any(b["name"] == name for b in businesses):
            self.api.tally.add("business", created=False)
        else:
            body = {
                "name": name,
                "sector": sector,
                "started_on": (self.plan.anchor - timedelta(days=360)).isoformat(),
                "description": f"Usaha bersama anggota {group['name']}",
                "supplies_dashat": sector in ("food_processing", "agriculture", "livestock"),
                "products": [{"name": name, "unit": unit, "price": price}],
                "capital": [{"source": "group_fund", "amount": 2_000_000}],
            }
            await self.api.create(
                "business",
                "uppka",
                f"/v1/groups/{gid}/businesses",
                body,
                key=f"demo-business-{i}",
                lookup=_found,
            )
        members = len(await self.api.all_pages("uppka", f"/v1/groups/{gid}/members", {"active": "true"}))
        for period in months_before(self.plan.anchor, REPORT_MONTHS):
            rng = random.Random(f"{self.plan.seed}-{i}-{period}")
            omzet = rng.randrange(1_500_000, 9_000_000, 50_000)
            active = max(members, 1)
            body = {
                "period": period,
                "omzet": omzet,
                "costs": int(omzet * rng.uniform(0.55, 0.85)) // 1000 * 1000,
                "capital_balance": rng.randrange(2_000_000, 12_000_000, 100_000),
                "members_present": rng.randint(max(1, active - 3), active),
                "active_members": active,
                "new_kb_acceptors": rng.choice([0, 0, 1, 1, 2, 3]),
                "mkjp_switchers": rng.choice([0, 0, 0, 1, 1, 2]),
            }
            await self.api.create(
                "uppka_report",
                "uppka",
                f"/v1/groups/{gid}/reports",
                body,
                key=f"demo-report-{i}-{period}",
                lookup=_found,
            )

    # ------------------------------------------------------------------------------------------ DASHAT

    async def menus_and_funds(self, bar: Progress) -> None:
        task = bar.add_task("DASHAT menus and funds", total=len(self.out.kitchens))
        foods = await self.api.all_pages("dashat", "/v1/foods")
        by_group: dict[str, list[dict[str, Any]]] = {}
        for f in sorted(foods, key=lambda f: f["code"]):
            by_group.setdefault(f["food_group"], []).append(f)
        groups = sorted(by_group)

        def menu_items(offset: int, grams: tuple[int, ...]) -> list[dict[str, Any]]:
            chosen = []
            for n, g in enumerate(groups[: len(grams)]):
                options = by_group[g]
                chosen.append({"food_id": options[(offset + n) % len(options)]["id"], "grams": grams[n]})
            return chosen

        async def one(k: int, kitchen: dict[str, Any]) -> None:
            kid = kitchen["id"]
            names = {
                m["name"]: m for m in await self.api.all_pages("dashat", "/v1/menus", {"kitchen_id": kid})
            }
            wanted = [
                (f"Menu Baduta {kitchen['name'][27:]}", "baduta_stunting", (60, 40, 30, 30, 20, 10)),
                (f"Menu Ibu Hamil {kitchen['name'][27:]}", "ibu_hamil", (150, 80, 60, 60, 40, 15)),
            ]
            for name, category, grams in wanted:
                menu: dict[str, Any] | None
                if name in names:
                    self.api.tally.add("menu", created=False)
                    menu = names[name]
                elif foods:
                    body = {
                        "name": name,
                        "category": category,
                        "kitchen_id": kid,
                        "items": menu_items(k, grams),
                    }
                    menu = await self.api.create(
                        "menu", "dashat", "/v1/menus", body, key=f"demo-menu-{kid}-{category}", lookup=_found
                    )
                else:
                    menu = None
                if menu and category == "baduta_stunting" and menu.get("id"):
                    self.out.menus[kid] = menu["id"]
            ledger = await self.api.all_pages("dashat", f"/v1/kitchens/{kid}/ledger")
            if any((e.get("note") or "").startswith("demo:") for e in ledger):
                self.api.tally.add("ledger_entry", created=False)
            else:
                opened = date.fromisoformat(kitchen["opened_on"])
                entries = [
                    {
                        "kind": "income",
                        "source": "apbn_bokb",
                        "amount": 15_000_000,
                        "entry_on": opened.isoformat(),
                        "note": "demo: BOKB DASHAT",
                    },
                    {
                        "kind": "income",
                        "source": "dana_desa",
                        "amount": 6_000_000,
                        "entry_on": (opened + timedelta(days=14)).isoformat(),
                        "note": "demo: dana desa",
                    },
                    {
                        "kind": "income",
                        "source": "csr",
                        "amount": 2_500_000 + 500_000 * (k % 4),
                        "entry_on": (opened + timedelta(days=45)).isoformat(),
                        "note": "demo: CSR",
                    },
                    {
                        "kind": "expense",
                        "category": "ingredients",
                        "amount": 3_200_000,
                        "entry_on": (opened + timedelta(days=30)).isoformat(),
                        "note": "demo: bahan makanan",
                    },
                ]
                for n, body in enumerate(entries):
                    await self.api.create(
                        "ledger_entry",
                        "dashat",
                        f"/v1/kitchens/{kid}/ledger",
                        body,
                        key=f"demo-ledger-{kid}-{n}",
                        lookup=_found,
                    )
            bar.advance(task)

        await asyncio.gather(*(one(k, kitchen) for k, kitchen in enumerate(self.out.kitchens.values())))

    # ------------------------------------------------------------------------------------------ all

    async def run(self) -> Seeded:
        started = time.monotonic()
        self.console.print("[bold]1. Seeding the programme[/] (through the public APIs)")
        await self.kampung_kb()
        self.console.print(
            f"  Kampung KB: {len(self.out.kampung_kb)} villages in {len(self.plan.provinces)} provinces"
        )
        await self.kitchens()
        self.console.print(
            f"  DASHAT kitchens: {len(self.out.kitchens)}, each serving RW {', '.join(KITCHEN_RWS)}"
        )
        with progress(self.console) as bar:
            await self.families(bar)
            await self.groups(bar)
            await self.menus_and_funds(bar)
        if self.plan.story.n not in self.out.families:
            raise DemoError(
                "the story family could not be registered: "
                + "; ".join(self.api.tally.failed.get("family", [])[:3])
            )
        self.console.print(f"  seeded in {time.monotonic() - started:.1f} s")
        return self.out


async def _found() -> dict[str, Any]:
    """Lookup for records the demo never reads back: a conflict or replay simply means 'already there'."""
    return {}
