"""The story the system exists for, told as it happens: stunting -> enrolment -> meals -> funds -> figures."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from kencana_cli.demo.api import Api, DemoError, poll, problem, rule_of
from kencana_cli.demo.growth import draw_child
from kencana_cli.demo.pipeline import wait_for_pipeline
from kencana_cli.demo.plan import Plan, today
from kencana_cli.demo.seed import Seeded

DEADLINE = 90.0
CONTRIBUTION = 750_000
# The story adds a handful of events: reporting projects them in seconds unless something is wrong.
STORY_PIPELINE_DEADLINE = 120.0


def flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """Numbers of a reporting answer by dotted name, whatever its exact shape."""
    out: dict[str, float] = {}
    if isinstance(value, bool):
        return out
    if isinstance(value, int | float):
        out[prefix or "value"] = float(value)
    elif isinstance(value, dict):
        label = value.get("indicator") or value.get("code") or value.get("name")
        if isinstance(label, str) and isinstance(value.get("value"), int | float):
            out[label] = float(value["value"])
        else:
            for k, v in value.items():
                out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list):
        for n, item in enumerate(value[:60]):
            sub = flatten(item, prefix)
            if isinstance(item, dict) and any(
                isinstance(item.get(k), str) for k in ("indicator", "code", "name")
            ):
                out.update(sub)
            else:
                out.update({f"{k}[{n}]": v for k, v in sub.items()})
    return out


# The figures the demo shows from the reporting service (the full catalogue is in its /docs).
MAIN_INDICATORS = (
    "families_registered",
    "pus",
    "cpr",
    "mkjp_share",
    "unmet_need",
    "krs_share",
    "baduta_measured",
    "stunting_prevalence",
    "stunting_open_cases",
    "stunting_retracted",
    "uppka_groups_active",
    "uppka_members",
    "uppka_members_kb_participation",
    "uppka_omzet",
    "uppka_dashat_contributions",
    "dashat_kitchens_active",
    "dashat_enrolled",
    "dashat_waitlisted",
    "dashat_portions_served",
    "dashat_funds",
)


async def indicators(api: Api, region: str, level: str, period: str) -> tuple[dict[str, float] | None, str]:
    """The reporting service's indicators of one region (`level` names it for the message), or None and why."""
    r = await api.call(
        "reporting", "GET", f"/v1/regions/{region}/summary", params={"period": period}, attempts=2
    )
    if r.status_code == 404 and "indicators" not in r.text:
        # An older reporting API had only the breakdown table; ask it for the region's own row.
        r = await api.call(
            "reporting",
            "GET",
            "/v1/indicators",
            params={"region": region, "level": level, "period": period},
            attempts=2,
        )
    if r.status_code in (404, 405, 501, 503):
        return None, f"reporting answered {r.status_code} for {level} {region}"
    if r.status_code != 200:
        return None, f"reporting: {problem(r)}"
    body = r.json()
    if isinstance(body.get("indicators"), dict):
        return {k: float(v) for k, v in body["indicators"].items() if isinstance(v, int | float)}, ""
    return flatten(body), ""


class Story:
    def __init__(self, api: Api, plan: Plan, seeded: Seeded, console: Console) -> None:
        self.api, self.plan, self.seeded, self.console = api, plan, seeded, console
        self.village = plan.story.village
        self.family = seeded.families[plan.story.n]
        self.child = self.family["planned_members"][-1]
        self.kitchen = seeded.kitchens.get(self.village.code)
        self.say = console.print

    def levels(self) -> list[tuple[str, str, str]]:
        v = self.village
        return [
            ("village", v.code, v.name),
            ("regency", v.regency, v.regency_name),
            ("province", v.province, v.province_name),
        ]

    async def figures(self) -> dict[str, dict[str, float]] | None:
        period = today().strftime("%Y-%m")
        out: dict[str, dict[str, float]] = {}
        for level, code, _ in self.levels():
            got, why = await indicators(self.api, code, level, period)
            if got is None:
                self.say(f"  [yellow]reporting is not available yet ({why}); its figures are skipped[/]")
                return None
            out[code] = got
        return out

    async def region_scope(self) -> None:
        v = self.village
        other = next(
            (
                f
                for n, f in self.seeded.families.items()
                if n and not f["village_code"].startswith(v.province)
            ),
            None,
        )
        own = await self.api.call(
            "registry", "GET", f"/v1/families/{self.family['id']}", token=self.api.kader_token
        )
        line = f"  kader token (region {self.api.kader_region}): family in {v.name} -> {own.status_code}"
        if other is not None:
            far = await self.api.call(
                "registry", "GET", f"/v1/families/{other['id']}", token=self.api.kader_token
            )
            line += (
                f"; family in {other['village_code']} -> {far.status_code} (outside the region: not found)"
            )
        self.say(line)

    async def enrolments(self, **params: Any) -> list[dict[str, Any]]:
        return list((await self.api.get("dashat", "/v1/enrolments", params=params))["items"])

    async def run(self) -> None:
        say, api, v = self.say, self.api, self.village
        if self.kitchen is None or self.child is None:
            raise DemoError("the story needs the kitchen and the baduta of the story family")
        say()
        say(
            f"[bold]2. The story[/] in {v.name} ({v.code}), {v.regency_name}, {v.province_name}, RW {self.plan.story.rw}"
        )
        await self.region_scope()
        before = await self.figures()
        known = {e["id"] for e in await self.enrolments(person_id=self.child["id"])}

        # A kader measures the child: length drawn at HAZ -2.6 from the WHO median and SD for her age.
        birth = self.child["birth_date"]
        age_days = (today() - date.fromisoformat(birth)).days
        drawn = draw_child(self.child["sex"], age_days, -2.6, -1.6)
        body = {
            "person_id": self.child["id"],
            "measured_on": today().isoformat(),
            "lenhei_cm": drawn.lenhei_cm,
            "weight_kg": drawn.weight_kg,
            "position": "l",
        }
        started = time.monotonic()
        r = await api.call("registry", "POST", "/v1/measurements", json=body, token=api.kader_token)
        if r.status_code != 201:
            raise DemoError(f"the kader's measurement was refused: {problem(r)}")
        m = r.json()
        etag = r.headers.get("ETag", f'"{m["version"]}"')
        say(
            f"  kader measures {self.child['name']} ({age_days} days): {m['lenhei_cm']} cm, {m['weight_kg']} kg"
            f" -> HAZ {m['haz']} ([red]{m['haz_class']}[/]), rules {m['rule_version']}"
        )
        cases = await api.all_pages("registry", "/v1/stunting-cases", {"region": v.code, "status": "open"})
        case = next((c for c in cases if c["measurement_id"] == m["id"]), None)
        if case is not None:
            say(
                f"  registry opens stunting case {case['id'][:8]} (severity {case['severity']}) -> event on Kafka"
            )
        else:
            say("  [yellow]registry opened no new case (the child already had an open one)[/]")

        async def enrolled() -> dict[str, Any] | None:
            items = await self.enrolments(person_id=self.child["id"], status="active")
            return next((e for e in items if e["id"] not in known), None) or (
                items[0] if items and case is None else None
            )

        enrolment, _ = await poll(enrolled, timeout=DEADLINE)
        waited = time.monotonic() - started
        if enrolment is None:
            waiting = await api.all_pages("dashat", "/v1/waitlist", {"region": v.code})
            mine = [w for w in waiting if w["person_id"] == self.child["id"]]
            raise DemoError(
                f"DASHAT did not enrol the child within {DEADLINE:.0f} s"
                + (f" (waitlisted: {mine[0]['reason']})" if mine else "")
            )
        detail = await api.get("dashat", f"/v1/enrolments/{enrolment['id']}")
        ex = detail["explanation"]
        say(
            f"  DASHAT enrols the child at [bold]{self.kitchen['name']}[/] (serves RW {', '.join(self.kitchen['rws'])})"
            f" {waited * 1000:.0f} ms after the measurement was sent"
        )
        service_ms = detail.get("latency_ms")
        say(
            f"    rule [cyan]{ex['rule_id']}[/] version {ex['rule_version']}, triggered by event {ex['trigger_event_id']}"
            + (f"; event-to-enrolment {service_ms:.0f} ms inside DASHAT" if service_ms is not None else "")
        )
        await self.meals()
        await self.contribution()
        after = await self.settled("the story") if before is not None else None

        # The measurement was misread: the correction retracts the case and DASHAT withdraws the enrolment.
        fixed = draw_child(self.child["sex"], age_days, -0.8, -0.5)
        correction = {
            "measured_on": m["measured_on"],
            "lenhei_cm": fixed.lenhei_cm,
            "weight_kg": fixed.weight_kg,
            "position": "l",
            "reason": "panjang badan salah baca (length misread)",
        }
        r = await api.call(
            "registry",
            "POST",
            f"/v1/measurements/{m['id']}/corrections",
            json=correction,
            headers={"If-Match": etag},
        )
        if r.status_code != 201:
            raise DemoError(f"the correction was refused: {problem(r)}")
        say(
            f"  correction: {fixed.lenhei_cm} cm -> HAZ {r.json()['haz']} ({r.json()['haz_class']}); the case is retracted"
        )

        async def withdrawn() -> dict[str, Any] | None:
            item = await api.get("dashat", f"/v1/enrolments/{enrolment['id']}")
            return item if item["status"] != "active" else None

        ended, waited = await poll(withdrawn, timeout=DEADLINE)
        if ended is None:
            raise DemoError(f"the enrolment was not withdrawn within {DEADLINE:.0f} s")
        say(
            f"  DASHAT withdraws the enrolment after {waited * 1000:.0f} ms: status {ended['status']},"
            f" exit reason [bold]{ended['exit_reason']}[/]"
        )
        if before is not None and after is not None:
            corrected = await self.settled("the correction")
            self.show_change(before, after, corrected)

    async def settled(self, why: str) -> dict[str, dict[str, float]] | None:
        """Reporting's figures once every event so far is projected (or what it has at the deadline)."""
        await wait_for_pipeline(
            self.api,
            self.console,
            why=why,
            region=self.village.province,
            dashat_regions=[code for code, _ in self.plan.provinces],
            deadline=STORY_PIPELINE_DEADLINE,
        )
        return await self.figures()

    async def meals(self) -> None:
        assert self.kitchen is not None
        kid = self.kitchen["id"]
        active = await self.api.all_pages("dashat", "/v1/enrolments", {"kitchen_id": kid, "status": "active"})
        menu = self.seeded.menus.get(kid)
        table = Table(title=f"Meals at {self.kitchen['name']}", title_justify="left", show_edge=False)
        for col in ("day", "slot", "beneficiaries", "portions", "by category", ""):
            table.add_column(col)
        opened = date.fromisoformat(self.kitchen["opened_on"])
        # Enrolments start on the day DASHAT makes them, so earlier days only have the earlier runs' children.
        batches = [(today() - timedelta(days=back), "lunch") for back in range(6, 0, -1)]
        batches += [(today(), "lunch"), (today(), "snack")]
        for day, slot in batches:
            if day < opened:
                continue
            # A person is served once however many categories she is enrolled in (a mother breastfeeding one
            # baby while pregnant with the next is both ibu_menyusui and ibu_hamil); DASHAT refuses repeats.
            served = sorted({e["person_id"] for e in active if e["start_date"] <= day.isoformat()})
            if not served:
                continue
            portions = min(len(served) + 3, self.kitchen["capacity_per_day"])
            served = served[:portions]
            body = {
                "served_on": day.isoformat(),
                "slot": slot,
                "menu_id": menu,
                "portions_cooked": portions,
                "portions_delivered": portions,
                "portions_consumed": max(0, portions - 1),
                "served_person_ids": served,
            }
            r = await self.api.call("dashat", "POST", f"/v1/kitchens/{kid}/meals", json=body)
            if r.status_code in (200, 201):
                b = r.json()
                note = "already recorded" if r.status_code == 200 else "recorded"
                by_category = ", ".join(f"{k} {n}" for k, n in b["by_category"].items())
                table.add_row(
                    day.isoformat(),
                    slot,
                    str(b["beneficiaries_served"]),
                    str(b["portions_delivered"]),
                    by_category,
                    note,
                )
            elif r.status_code == 409:
                table.add_row(day.isoformat(), slot, "-", "-", "", "recorded by an earlier run")
            else:
                table.add_row(day.isoformat(), slot, "-", "-", "", f"[red]{problem(r)}[/]")
        self.console.print(table)

    async def contribution(self) -> None:
        assert self.kitchen is not None
        api, kid = self.api, self.kitchen["id"]
        group = next((g for g in self.seeded.groups if g["village_code"] == self.village.code), None)
        if group is None:
            self.say("  [yellow]no UPPKA group in this village; the contribution step is skipped[/]")
            return
        url = f"/v1/groups/{group['id']}/dashat-contributions"
        mine = [c for c in await api.all_pages("uppka", url) if c["kitchen_id"] == kid]
        if mine:
            contribution = mine[0]
            self.say(
                f"  {group['name']} already contributed Rp {contribution['amount']:,} to the kitchen (earlier run)"
            )
        else:
            body = {"kitchen_id": kid, "kind": "cash", "amount": CONTRIBUTION}
            deadline = time.monotonic() + DEADLINE
            while True:  # uppka knows kitchens from DASHAT's events; unkeyed so a refusal is not replayed
                r = await api.call("uppka", "POST", url, json=body)
                if (
                    r.status_code == 201
                    or rule_of(r) != "contribution.kitchen_unknown"
                    or time.monotonic() > deadline
                ):
                    break
                await asyncio.sleep(0.25)
            if r.status_code != 201:
                raise DemoError(f"the UPPKA contribution was refused: {problem(r)}")
            contribution = r.json()
            self.say(
                f"  {group['name']} contributes Rp {CONTRIBUTION:,} in cash to the kitchen -> event on Kafka"
            )

        async def in_ledger() -> dict[str, Any] | None:
            entries = await api.all_pages("dashat", f"/v1/kitchens/{kid}/ledger")
            return next((e for e in entries if e.get("contribution_id") == contribution["id"]), None)

        entry, waited = await poll(in_ledger, timeout=DEADLINE)
        if entry is None:
            raise DemoError("the contribution did not reach the kitchen ledger")
        summary = await api.get("dashat", f"/v1/kitchens/{kid}/summary")
        self.say(
            f"  kitchen ledger: income Rp {entry['amount']:,} from {entry['source']} (after {waited * 1000:.0f} ms);"
            f" balance Rp {summary['balance']:,}, {summary['active_enrolments']} enrolled,"
            f" runway {summary['runway_days'] if summary['runway_days'] is not None else '-'} days"
        )

    def show_change(
        self,
        before: dict[str, dict[str, float]],
        after: dict[str, dict[str, float]],
        corrected: dict[str, dict[str, float]] | None,
    ) -> None:
        table = Table(
            title="Reporting: indicators before the story, after it, and after the correction",
            title_justify="left",
            show_edge=False,
        )
        for col in ("level", "region", "indicator", "before", "after story", "after correction"):
            table.add_column(col, justify="right" if col.startswith(("before", "after")) else "left")
        for level, code, name in self.levels():
            b, a = before.get(code, {}), after.get(code, {})
            c = (corrected or {}).get(code, {})
            changed = [k for k in {**a, **c} if a.get(k) != b.get(k) or (c and c.get(k) != b.get(k))]
            shown = [k for k in MAIN_INDICATORS if k in changed] + [
                k for k in changed if k not in MAIN_INDICATORS
            ]
            for k in shown[:10]:
                table.add_row(
                    level,
                    name,
                    k,
                    format_figure(b.get(k)),
                    _delta(b.get(k), a.get(k)),
                    _delta(b.get(k), c.get(k)),
                )
            if not shown:
                table.add_row(level, name, "(no change: reporting did not catch up in time)", "", "", "")
        self.console.print(table)


def _delta(before: float | None, now: float | None) -> str:
    """The value with its change since before, e.g. `13 (+1)`."""
    if now is None:
        return "-"
    if before is None or now == before:
        return format_figure(now)
    diff = now - before
    sign = "+" if diff > 0 else "-"
    return f"{format_figure(now)} ({sign}{format_figure(abs(diff))})"


def format_figure(v: float | None) -> str:
    if v is None:
        return "-"
    if float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:.3f}" if abs(v) < 1 else f"{v:,.1f}"  # ratios (cpr 0.612) keep their precision
