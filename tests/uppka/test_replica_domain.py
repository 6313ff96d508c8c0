"""The pure fold of a poll's KB statuses per person: what applying them in order leaves before the row held."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from uppka.replicas.domain import KbEvent, latest_kb

T = datetime(2026, 11, 30, 9, tzinfo=UTC)
FAMILY, OTHER_FAMILY = uuid.uuid4(), uuid.uuid4()


def _kb(
    at: datetime, method: str | None, *, family: uuid.UUID = FAMILY, proves_use: bool | None = None
) -> KbEvent:
    return KbEvent(
        at=at,
        family_id=family,
        village_code="15.71.01.1001",
        method=method,
        is_user=method is not None,
        mkjp=method in ("iud", "implant"),
        since=date(2026, 11, 1),
        pus=True,
        proves_use=method is not None if proves_use is None else proves_use,
    )


def test_the_newest_status_stays_and_the_first_of_equal_instants() -> None:
    p = uuid.uuid4()
    first_latest = _kb(T, "implant")
    got = latest_kb([(p, _kb(T - timedelta(hours=1), "pil")), (p, first_latest), (p, _kb(T, "suntik"))])
    assert got[p].kb is first_latest
    assert got[p].last_event_at == T


def test_a_late_older_status_changes_nothing_but_still_proves_use_and_time_keeps_the_latest() -> None:
    p = uuid.uuid4()
    newest = _kb(T, None)
    got = latest_kb([(p, newest), (p, _kb(T - timedelta(days=2), "pil"))])
    assert got[p].kb is newest
    assert got[p].ever_kb_user is True  # having ever used KB is monotonic
    assert got[p].last_event_at == T


def test_the_first_status_in_order_names_the_placeholder_family_and_persons_stay_apart() -> None:
    p, q = uuid.uuid4(), uuid.uuid4()
    got = latest_kb(
        [
            (p, _kb(T, None, family=FAMILY, proves_use=False)),
            (q, _kb(T, "pil")),
            (p, _kb(T + timedelta(minutes=1), None, family=OTHER_FAMILY, proves_use=True)),
        ]
    )
    assert got[p].first.family_id == FAMILY and got[p].kb.family_id == OTHER_FAMILY
    assert got[p].ever_kb_user is True  # a previous method, with no method now
    assert (got[q].kb.method, got[q].ever_kb_user) == ("pil", True)


def test_no_proof_of_use_leaves_ever_user_false() -> None:
    p = uuid.uuid4()
    assert latest_kb([(p, _kb(T, None)), (p, _kb(T + timedelta(hours=1), None))])[p].ever_kb_user is False
