"""The compose stack for the flows of tests/e2e, and a record of the personal data those flows sent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import tests.e2e.test_flows as flows
from tests.compose.stack import ComposeStack


@pytest.fixture(scope="session")
def stack() -> ComposeStack:
    running = ComposeStack.from_environment()
    if running is None:
        pytest.skip("no compose stack: run `make test-compose` (scripts/compose-test.sh)")
    return running


# Every NIK, name and KK number the flows sent to the containers, so that the logs can be searched for them.
SENT: dict[str, set[str]] = {"nik": set(), "name": set(), "kk": set()}


@pytest.fixture(scope="session", autouse=True)
def record_personal_data() -> Iterator[dict[str, set[str]]]:
    make_person = flows._person
    make_kk = getattr(flows, "make_kk")  # noqa: B009 - the name the flows call, imported there from the registry

    def person(*args: Any, **kwargs: Any) -> dict[str, Any]:
        body = make_person(*args, **kwargs)
        SENT["name"].add(body["name"])
        if "nik" in body:
            SENT["nik"].add(body["nik"])
        return body

    def kk(*args: Any, **kwargs: Any) -> str:
        number = str(make_kk(*args, **kwargs))
        SENT["kk"].add(number)
        return number

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(flows, "_person", person)
        patch.setattr(flows, "make_kk", kk)
        patch.setattr(flows, "httpx", SimpleNamespace(AsyncClient=PatientClient))
        yield SENT


# The flows give each request 15 s (tests/e2e). The containers share the host's CPU with whatever else runs there:
# on the 2-core development machine at load 40-60 a registry POST took longer, and the run failed on client
# timeouts while every request the containers did answer was right. A slow answer is not what this test is about.
CLIENT_TIMEOUT = float(os.environ.get("KENCANA_COMPOSE_CLIENT_TIMEOUT", "90"))


class PatientClient(httpx.AsyncClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["timeout"] = max(float(kwargs.get("timeout") or 0), CLIENT_TIMEOUT)
        super().__init__(*args, **kwargs)
