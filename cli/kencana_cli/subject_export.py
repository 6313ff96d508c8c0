"""`kencana subject-export`: one person's data from the four services as one JSON document (UU 27/2022 PDP).

It only calls each service's `GET /v1/subjects/{person_id}/export` with the caller's token, as a partner
system would; each service checks the scope (`kencana:subject:export`) and the region, and audits the export
in its own database. The NIK is unmasked in the document only when the token also holds `registry:pii:read`
(the registry decides, and logs that read).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from shared.db import utcnow

SERVICES = ("registry", "uppka", "dashat", "reporting")


class SubjectExportError(Exception):
    """A service refused or failed: no document is written."""


@dataclass(frozen=True)
class Answer:
    service: str
    status: int
    body: Any


async def _ask(
    client: httpx.AsyncClient, service: str, url: str, person_id: uuid.UUID, headers: dict[str, str]
) -> Answer:
    try:
        response = await client.get(f"{url.rstrip('/')}/v1/subjects/{person_id}/export", headers=headers)
    except httpx.HTTPError as exc:
        raise SubjectExportError(f"{service} did not answer: {type(exc).__name__}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    return Answer(service, response.status_code, body)


async def collect(
    person_id: uuid.UUID,
    *,
    token: str,
    purpose: str,
    urls: dict[str, str],
    timeout: float = 30,
) -> dict[str, Any]:
    """The document: every service's sections under its name; a service that holds nothing about the person
    (404 while the registry knows them) is present with `held: false`.

    The registry is the source of the person: its 404 (unknown, or outside the token's region) ends the
    export. Any other refusal or failure (401, 403, 5xx) ends it too, so a partial document is never written.
    """
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": purpose}
    async with httpx.AsyncClient(timeout=timeout) as client:
        answers = await asyncio.gather(*(_ask(client, s, urls[s], person_id, headers) for s in SERVICES))
    services: dict[str, Any] = {}
    for answer in answers:
        if answer.status == 200:
            services[answer.service] = {
                "held": True,
                "exported_at": answer.body["exported_at"],
                "sections": answer.body["sections"],
            }
        elif answer.status == 404 and answer.service != "registry":
            services[answer.service] = {"held": False, "exported_at": None, "sections": {}}
        else:
            detail = answer.body.get("detail") if isinstance(answer.body, dict) else None
            raise SubjectExportError(f"{answer.service} answered {answer.status}: {detail or 'no detail'}")
    return {
        "person_id": str(person_id),
        "purpose": purpose,
        "exported_at": utcnow().isoformat(),
        "services": services,
    }
