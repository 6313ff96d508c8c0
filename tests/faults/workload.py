"""The write stream of the fault run: public API calls whose accepted (2xx) outcomes say exactly which
downstream effects must exist afterwards."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from registry.identity.domain import make_kk, make_nik

from shared.testing.plugin import bearer, unique
from tests.e2e.stack import Stack

DISTRICT = "15.71.01"
ALL = "registry:read registry:write dashat:read dashat:write uppka:read uppka:write reporting:read"
RWS = ("001", "002", "003")
# Consecutive KB changes always differ, so every accepted change must move the member exactly once.
KB_CYCLE = ("implant", "suntik", "iud", "pil", "kondom")
STUNTED_CM, CORRECTED_CM = 66.0, 76.0


_token: tuple[float, dict[str, str]] | None = None


def admin() -> dict[str, str]:
    """The stream's Authorization header, signed once per 20 minutes (tokens live an hour): signing a new ES256
    token per request cost the one client process ~1 ms of CPU each, and the APIs a signature check each
    (a fresh `jti` never hits their verification cache)."""
    global _token
    now = time.monotonic()
    if _token is None or now - _token[0] > 1200:
        _token = (now, bearer(ALL, sub="fault-run"))
    return _token[1]


class Rejected(Exception):
    """A write the API did not accept; it has no expected effect."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body[:300]}")
        self.status = status


@dataclass
class Child:
    person_id: str
    family_id: str
    kitchen_id: str
    measurement_id: str
    corrected: bool = False


@dataclass
class Member:
    person_id: str
    group_id: str
    member_id: str
    kb_method: str
    changes: list[str] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class Place:
    village: str
    rw: str
    kitchen_id: str
    group_id: str


@dataclass
class Expected:
    """What the APIs accepted, hence which effects must exist exactly once."""

    children: dict[str, Child] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    contributions: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (kitchen, amount)
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    retried: int = 0
    # Of the stream's requests: how many, the 5xx answers by status, the ones with no answer within the client's
    # timeout (a hang), and the slowest answer in seconds.
    requests: int = 0
    server_errors: Counter[int] = field(default_factory=Counter)
    timeouts: int = 0
    slowest: float = 0.0
    bad_503: int = 0  # 503 answers without Retry-After or not problem+json

    def reset_counts(self) -> None:
        """Forget the setup's requests: the figures are about the stream."""
        self.accepted.clear()
        self.rejected.clear()
        self.retried = self.requests = self.timeouts = self.bad_503 = 0
        self.server_errors.clear()
        self.slowest = 0.0

    @property
    def corrections(self) -> int:
        return sum(c.corrected for c in self.children.values())

    @property
    def kb_changes(self) -> int:
        return sum(len(m.changes) for m in self.members.values())


class Workload:
    """Setup before the faults (kitchens, groups, members) and the bounded write stream during them."""

    def __init__(self, stack: Stack, client: httpx.AsyncClient, rng: random.Random) -> None:
        self.stack = stack
        self.client = client
        self.rng = rng
        self.expected = Expected()
        self.places: list[Place] = []
        self._serials = itertools.count(1)
        # Tries per write (transport errors, 5xx, 409 are retried with the same Idempotency-Key); a scenario
        # that takes PostgreSQL away for a while raises it.
        self.attempts = 5

    # ------------------------------------------------------------------------------------------------ http
    async def post(
        self, service: str, path: str, body: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """POST with an Idempotency-Key, retried on transport errors and 5xx so an accepted write is known."""
        key = str(uuid.uuid4())
        url = self.stack.base_url(service) + path
        last = ""
        for attempt in range(self.attempts):
            t0 = time.monotonic()
            self.expected.requests += 1
            try:
                r = await self.client.post(
                    url, json=body, headers={**admin(), "Idempotency-Key": key, **(headers or {})}
                )
            except httpx.HTTPError as exc:
                if isinstance(exc, httpx.TimeoutException):
                    self.expected.timeouts += 1
                last = repr(exc)
            else:
                self.expected.slowest = max(self.expected.slowest, time.monotonic() - t0)
                if r.status_code >= 500:
                    self.expected.server_errors[r.status_code] += 1
                    if r.status_code == 503 and not (
                        r.headers.get("retry-after", "").isdigit()
                        and r.headers.get("content-type", "").startswith("application/problem+json")
                    ):
                        self.expected.bad_503 += 1
                if r.status_code < 300:
                    return dict(r.json())
                if r.status_code < 500 and r.status_code != 409:
                    raise Rejected(r.status_code, r.text)
                last = f"{r.status_code} {r.text[:300]}"
            self.expected.retried += 1
            await asyncio.sleep(min(0.3 * (attempt + 1), 2.0))
        raise Rejected(599, f"no answer after retries: {last}")

    async def get(self, service: str, path: str, **params: Any) -> dict[str, Any]:
        r = await self.client.get(self.stack.base_url(service) + path, params=params, headers=admin())
        r.raise_for_status()
        return dict(r.json())

    async def pages(self, service: str, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
            body = await self.get(service, path, **query)
            items.extend(body["items"])
            cursor = body.get("next_cursor")
            if not cursor:
                return items

    # ----------------------------------------------------------------------------------------------- setup
    def _person(self, relation: str, birth: date, sex: str, *, nik: bool = True) -> dict[str, Any]:
        n = next(self._serials)
        body: dict[str, Any] = {
            "name": f"Warga {relation} {n}",
            "sex": sex,
            "birth_date": birth.isoformat(),
            "relation": relation,
            "marital_status": "kawin" if relation in ("kepala_keluarga", "istri") else "belum_kawin",
        }
        if nik:
            body["nik"] = make_nik(DISTRICT, birth, sex, n % 9999 + 1)
        return body

    async def family(self, place: Place) -> dict[str, Any]:
        rng = self.rng
        baduta_birth = date.today() - timedelta(days=rng.randint(395, 405))
        body = {
            "kk_number": make_kk(DISTRICT, date(2016, 4, 1), next(self._serials) % 9999 + 1),
            "village_code": place.village,
            "rw": place.rw,
            "rt": f"{rng.randint(1, 9):03d}",
            "members": [
                self._person("kepala_keluarga", date(1985 + rng.randint(0, 10), 2, rng.randint(1, 28)), "L"),
                self._person("istri", date(1992 + rng.randint(0, 6), 6, rng.randint(1, 28)), "P"),
                self._person("anak", baduta_birth, "P", nik=False),
            ],
        }
        return await self.post("registry", "/v1/families", body)

    async def open_places(self, villages: list[str]) -> None:
        """A kitchen (ample capacity: nobody waits) and an UPPKA group per village/RW."""
        for village in villages:
            kitchen = await self.post(
                "dashat",
                "/v1/kitchens",
                {
                    "name": f"Dapur Sehat {unique()}",
                    "village_code": village,
                    "rws": list(RWS),
                    "management_model": "combined",
                    "capacity_per_day": 10_000,
                    "opened_on": (date.today() - timedelta(days=10)).isoformat(),
                },
            )
            group = await self.post(
                "uppka",
                "/v1/groups",
                {
                    "code": unique("UPPKA-"),
                    "name": "UPPKA Tahan Banting",
                    "register_number": unique("REG-"),
                    "sk_number": "SK/9/2024",
                    "sk_date": "2024-01-10",
                    "founded_on": "2024-01-10",
                    "village_code": village,
                    "rw": RWS[0],
                    "pembina_name": "PLKB Kota Jambi",
                },
            )
            for rw in RWS:
                self.places.append(Place(village, rw, kitchen["id"], group["id"]))

    async def enlist_members(self, per_group: int, timeout: float) -> None:
        """Wives with a KB method who join their village's group (once uppka has their replica)."""
        groups = {p.group_id: p for p in self.places}
        deadline = time.monotonic() + timeout
        for group_id, place in groups.items():
            for _ in range(per_group):
                family = await self.family(place)
                wife = next(m for m in family["members"] if m["relation"] == "istri")
                await self.post("registry", f"/v1/persons/{wife['id']}/kb-status", _kb("pil"))
                while True:
                    try:
                        joined = await self.post(
                            "uppka", f"/v1/groups/{group_id}/members", {"person_id": wife["id"]}
                        )
                        break
                    except Rejected:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.3)
                self.expected.members[wife["id"]] = Member(wife["id"], group_id, joined["id"], "pil")

    async def await_kitchens_known_to_uppka(self, timeout: float) -> None:
        """A contribution needs uppka's replica of the kitchen; the probe is a real contribution (and counts)."""
        deadline = time.monotonic() + timeout
        pending = {p.kitchen_id: p.group_id for p in self.places}
        while pending:
            for kitchen_id, group_id in list(pending.items()):
                try:
                    await self.contribute(Place("", "", kitchen_id, group_id))
                    del pending[kitchen_id]
                except Rejected:
                    pass
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"uppka never learnt kitchens {sorted(pending)}")
                await asyncio.sleep(0.3)

    async def await_members_synced(self, timeout: float) -> None:
        """Every member carries the setup KB method before the stream starts changing it."""
        deadline = time.monotonic() + timeout
        for m in self.expected.members.values():
            while (await self.get("uppka", f"/v1/groups/{m.group_id}/members/{m.member_id}")).get(
                "kb_method"
            ) != m.kb_method:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"member {m.member_id} never showed KB {m.kb_method}")
                await asyncio.sleep(0.3)

    # ---------------------------------------------------------------------------------------------- stream
    async def stunted_child(self) -> None:
        place = self.rng.choice(self.places)
        length = STUNTED_CM + self.rng.choice((-0.5, 0.0, 0.5))
        family = await self.family(place)
        self.expected.accepted["families"] += 1
        child = next(m for m in family["members"] if m["relation"] == "anak")
        measurement = await self.post(
            "registry",
            "/v1/measurements",
            {
                "person_id": child["id"],
                "measured_on": date.today().isoformat(),
                "lenhei_cm": length,
                "weight_kg": 8.0,
                "position": "l",
            },
        )
        assert measurement["haz"] < -2 and not measurement["haz_flag"], measurement
        self.expected.accepted["stunted measurements"] += 1
        self.expected.children[child["id"]] = Child(
            child["id"], family["id"], place.kitchen_id, measurement["id"]
        )

    async def correction(self) -> None:
        open_children = [c for c in self.expected.children.values() if not c.corrected]
        if not open_children:
            return
        child = self.rng.choice(open_children)
        child.corrected = True  # claimed before awaiting, so no other worker picks it
        try:
            await self.post(
                "registry",
                f"/v1/measurements/{child.measurement_id}/corrections",
                {
                    "measured_on": date.today().isoformat(),
                    "lenhei_cm": CORRECTED_CM,
                    "weight_kg": 8.0,
                    "position": "l",
                    "reason": "length misread",
                },
                headers={"If-Match": '"1"'},
            )
        except Rejected:
            child.corrected = False
            raise
        self.expected.accepted["corrections"] += 1

    async def kb_change(self) -> None:
        member = self.rng.choice(list(self.expected.members.values()))
        async with member.lock:  # one change at a time per person: "the last accepted" is well defined
            current = member.changes[-1] if member.changes else member.kb_method
            method = KB_CYCLE[(KB_CYCLE.index(current) + 1) % len(KB_CYCLE)]
            await self.post("registry", f"/v1/persons/{member.person_id}/kb-status", _kb(method))
            member.changes.append(method)
        self.expected.accepted["kb changes"] += 1

    async def contribute(self, place: Place | None = None) -> None:
        place = place or self.rng.choice(self.places)
        amount = self.rng.randint(1, 200) * 5_000
        body = {"kitchen_id": place.kitchen_id, "kind": "cash", "amount": amount}
        made = await self.post("uppka", f"/v1/groups/{place.group_id}/dashat-contributions", body)
        self.expected.contributions[made["id"]] = (place.kitchen_id, amount)
        self.expected.accepted["contributions"] += 1

    async def stream(
        self, seconds: float, rate: float, workers: int, keep_going: Callable[[], bool] = lambda: False
    ) -> None:
        """`rate` operations per second in total, spread over `workers`, for `seconds` and as long as
        `keep_going()` (the faults need traffic until the last one landed); bounded, not a flood."""
        # A new family with a stunted baduta is two writes and about seven events that every consumer reads
        # (family, three persons, measurement, case, risk): at 50 operations/s a larger share of them buries the
        # consumers of the shared 2-core machine for many minutes after each scenario.
        ops = (
            (self.stunted_child, 20),
            (self.correction, 10),
            (self.kb_change, 40),
            (self.contribute, 30),
        )
        choices = [op for op, _ in ops]
        weights = [w for _, w in ops]
        end = time.monotonic() + seconds
        interval = workers / rate

        async def worker(n: int) -> None:
            rng = random.Random(self.rng.random() + n)
            next_at = time.monotonic() + rng.random() * interval
            while time.monotonic() < end or keep_going():
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
                op = rng.choices(choices, weights)[0]
                try:
                    await op()
                except Rejected as exc:
                    self.expected.rejected[f"{op.__name__} {exc.status}"] += 1

        await asyncio.gather(*(worker(n) for n in range(workers)))


def _kb(method: str) -> dict[str, Any]:
    return {"method": method, "since": date.today().isoformat()}
