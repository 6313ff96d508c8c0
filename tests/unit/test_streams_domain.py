"""Pure rules of the curated streams (reporting/streams/domain.py): pseudonyms, curation, signatures, targets."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest
from reporting.streams import domain
from reporting.streams.contract import BY_NAME, PUBLIC_TYPES

from shared.errors import ValidationFailed

CHILD = "0b6f7e9e-1f43-4b7a-9d8e-111111111111"
FAMILY = "0b6f7e9e-1f43-4b7a-9d8e-222222222222"
MEASUREMENT = "0b6f7e9e-1f43-4b7a-9d8e-333333333333"
TIME = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

MEASURED = {
    "measurement_id": MEASUREMENT,
    "person_id": CHILD,
    "family_id": FAMILY,
    "village_code": "15.71.01.1001",
    "rw": None,
    "sex": "P",
    "measured_on": "2026-11-30",
    # Born 2025-02-28: 640 days before 2026-11-30 (2025-02-28 -> 2026-02-28 is 365, -> 2026-11-30 is 275 more).
    "age_days": 640,
    "haz": -2.41,
    "haz_class": "stunted",
    "haz_flag": False,
    "corrects_measurement_id": None,
    "rule_version": "who2006-v1",
}


def profile(**kwargs: object) -> domain.Profile:
    base: dict[str, object] = {
        "legal_basis": "health_surveillance",
        "events": {"child.measured": ["age", "haz"]},
    }
    return domain.Profile.model_validate({**base, **kwargs})


def test_pseudonyms_stable_in_a_stream_and_different_across_streams() -> None:
    health = domain.consumer_key("master", "kemenkes")
    social = domain.consumer_key("master", "kemensos")
    ref = domain.Ref("person", CHILD)
    assert domain.pseudonym(health, ref) == domain.pseudonym(health, domain.Ref("person", CHILD))
    assert domain.pseudonym(health, ref) != domain.pseudonym(social, ref)
    assert domain.pseudonym(health, ref) != domain.pseudonym(health, domain.Ref("person", FAMILY))
    assert len(domain.pseudonym(health, ref)) == 32 and CHILD.replace("-", "") not in domain.pseudonym(
        health, ref
    )
    # Another master key (another deployment) gives other pseudonyms for the same consumer name.
    assert domain.pseudonym(domain.consumer_key("other", "kemenkes"), ref) != domain.pseudonym(health, ref)
    event = str(uuid.uuid4())
    assert domain.public_event_id(health, event) == domain.public_event_id(health, event)
    assert domain.public_event_id(health, event) != domain.public_event_id(social, event)
    assert domain.public_event_id(health, event).version == 8


def test_curation_keeps_only_core_and_profile_fields_coarsened() -> None:
    key = domain.consumer_key("master", "kemenkes")
    public = BY_NAME["child.measured"]
    curated = domain.curate(
        public,
        MEASURED,
        event_id=str(uuid.uuid4()),
        time=TIME,
        profile=profile(region="district", age="months"),
        key=key,
    )
    data = curated.envelope["data"]
    # 2025-02-28 to 2026-11-30: 21 completed months (the 21st completed on 2026-11-28).
    assert data == {
        "child_id": domain.pseudonym(key, domain.Ref("person", CHILD)),
        "region_code": "15.71.01",
        "measured_on": "2026-11-30",
        "age_months": 21,
        "haz": -2.41,
    }
    assert curated.envelope["subject"] == data["child_id"]
    assert curated.envelope["type"] == "kencana.public.child.measured.v1"
    assert set(curated.envelope) == {
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "dataschema",
        "data",
    }
    text = str(curated.envelope)
    for internal in (CHILD, FAMILY, MEASUREMENT):
        assert internal not in text


def test_age_bands_instead_of_months() -> None:
    key = domain.consumer_key("master", "bgn")
    curated = domain.curate(
        BY_NAME["child.measured"], MEASURED, event_id="e", time=TIME, profile=profile(age="band"), key=key
    )
    assert curated.envelope["data"]["age_band"] == "12-23"
    assert "age_months" not in curated.envelope["data"]
    assert [domain.child_age_band(m) for m in (0, 5, 6, 11, 12, 23, 24, 59, 60)] == [
        "0-5",
        "0-5",
        "6-11",
        "6-11",
        "12-23",
        "12-23",
        "24-59",
        "24-59",
        "60+",
    ]
    assert [domain.adult_age_band(y) for y in (15, 19, 20, 34, 35, 49)] == [
        "<20",
        "<20",
        "20-34",
        "20-34",
        "35+",
        "35+",
    ]


def test_clinical_fields_need_a_health_legal_basis() -> None:
    with pytest.raises(ValidationFailed) as err:
        domain.check_profile(
            profile(legal_basis="social_protection", events={"child.measured": ["sex", "haz"]})
        )
    assert err.value.field == "profile.events.child.measured[1]" and err.value.rule == "legal-basis"
    domain.check_profile(profile(legal_basis="social_protection", events={"child.measured": ["sex", "age"]}))
    with pytest.raises(ValidationFailed) as unknown:
        domain.check_profile(profile(events={"child.measured": ["birth_date"]}))
    assert unknown.value.field == "profile.events.child.measured[0]"
    with pytest.raises(ValidationFailed) as bad_type:
        domain.check_profile(profile(events={"person.registered": []}))
    assert bad_type.value.field == "profile.events.person.registered"


def test_every_public_type_has_its_subject_and_core_among_its_fields() -> None:
    for public in PUBLIC_TYPES:
        names = [f.name for f in public.fields]
        assert public.subject in public.core and set(public.core) <= set(names), public.name
        assert len(names) == len(set(names)), public.name
        assert not {"birth_date", "rt", "rw", "nik", "name"} & set(names), public.name


def test_standard_webhooks_signature_test_vector() -> None:
    # The example of the Standard Webhooks specification (and of the svix libraries' tests).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert domain.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    two = domain.signature_header([secret, domain.new_webhook_secret()], "m", 1, body)
    assert len(two.split(" ")) == 2 and all(s.startswith("v1,") for s in two.split(" "))


def test_retry_delay_is_exponential_capped_and_jittered() -> None:
    rng = random.Random(7)
    for attempt, ceiling in ((1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (12, 3600.0)):
        delays = [domain.retry_delay(attempt, base=5.0, cap=3600.0, rng=rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert len(set(delays)) > 1


@pytest.mark.parametrize(
    ("url", "addresses", "loopback", "refused"),
    [
        (
            "https://ppgbm.kemkes.go.id/hook",
            ["203.0.113.9"],
            False,
            "private",
        ),  # TEST-NET-3: documentation, in Python's private ranges
        ("https://ppgbm.kemkes.go.id/hook", ["8.8.8.8"], False, None),
        ("http://ppgbm.kemkes.go.id/hook", ["8.8.8.8"], False, "https is required"),
        ("https://intranet/hook", ["10.1.2.3"], False, "private"),
        ("https://meta/hook", ["169.254.169.254"], False, "link-local"),
        ("https://x/hook", ["8.8.8.8", "192.168.1.5"], False, "private"),
        ("http://127.0.0.1:8080/hook", ["127.0.0.1"], False, "https is required"),
        ("https://localhost/hook", ["127.0.0.1", "::1"], False, "loopback"),
        ("http://127.0.0.1:8080/hook", ["127.0.0.1"], True, None),
        ("https://x/hook", ["::ffff:127.0.0.1"], False, "loopback"),
        ("https://user:pw@x/hook", ["8.8.8.8"], False, "credentials"),
        ("ftp://x/hook", ["8.8.8.8"], False, "absolute http(s) URL"),
        ("https://nowhere/hook", [], True, "does not resolve"),
    ],
)
def test_webhook_targets(url: str, addresses: list[str], loopback: bool, refused: str | None) -> None:
    reason = domain.target_refusal(url, addresses, allow_loopback=loopback)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason
