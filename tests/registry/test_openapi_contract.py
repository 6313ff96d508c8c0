"""The registry does what its OpenAPI now says (issue 13): the score batch's sex, the import's file bodies."""

from __future__ import annotations

import httpx
import pytest

from tests.registry.conftest import auth
from tests.registry.test_imports import family_rows, imp_auth, to_csv

pytestmark = pytest.mark.integration


async def test_score_takes_sex_as_letters_or_who_codes(client: httpx.AsyncClient) -> None:
    # One child of 730 days and 85 cm (lying) under each spelling: L and 1 are boys, P and 2 girls.
    child = {"age_days": 730, "lenhei_cm": 85.0, "position": "l"}
    items = [{"sex": sex, **child} for sex in ("L", 1, "P", 2)]
    r = await client.post("/v1/anthropometry:score", json={"items": items}, headers=auth("registry:read"))
    assert r.status_code == 200, r.text
    boy_l, boy_1, girl_p, girl_2 = (item["haz"] for item in r.json()["items"])
    assert boy_l == boy_1 and girl_p == girl_2
    assert boy_l < girl_p  # 85 cm is shorter for a boy of two than for a girl (WHO medians 87.1 / 85.7 cm)


@pytest.mark.parametrize("sex", [True, False, "1", "l", 0, 3])
async def test_score_refuses_any_other_sex(client: httpx.AsyncClient, sex: object) -> None:
    items = [{"sex": sex, "age_days": 731}]
    r = await client.post("/v1/anthropometry:score", json={"items": items}, headers=auth("registry:read"))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"].startswith("body.items.0.sex")


async def test_import_as_octet_stream_with_format(client: httpx.AsyncClient) -> None:
    # What a client generated from the OpenAPI sends: raw bytes, the format in the query.
    body = to_csv(family_rows())
    r = await client.post(
        "/v1/imports?mode=validate&format=csv",
        content=body,
        headers={**imp_auth(), "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "done"
    assert r.json()["total_rows"] == 3


async def test_import_as_octet_stream_without_format_names_the_header(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/imports?mode=validate",
        content=b"a,b\n",
        headers={**imp_auth(), "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "header.Content-Type"
