"""Rule version routes: officers change the enrolment rules without a deploy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from dashat.ruleversions import service
from dashat.ruleversions.schemas import RuleVersionCreate, RuleVersionRead
from shared.auth import Principal, require_scopes
from shared.regions import CODE_SCHEMA
from shared.web.deps import SessionDep
from shared.web.problems import PROBLEM_RESPONSES
from shared.web.schemas import ApiDate

router = APIRouter(prefix="/v1/rule-versions", tags=["rule versions"], responses=PROBLEM_RESPONSES)
Read = Annotated[Principal, require_scopes("dashat:read")]
Admin = Annotated[Principal, require_scopes(service.RULES_SCOPE)]

HOW = (
    "Each version is a complete set of enrolment rules (planned days per category, targeting thresholds, age "
    "limits, the recovery confirmation, ibu menyusui from the registry) for a region prefix (none: national; "
    "province, regency, district or village) from `effective_from` on. A decision on a day in a village uses "
    "the most specific prefix with a version in effect, and within it the latest `effective_from`; the code "
    "default (`builtin`) applies where nothing else does. The version id is stamped on every enrolment, "
    "waitlist entry and rule-driven exit (`rule_version`, also in the events). Versions are never edited: "
    "add a new one; one not yet in effect can be withdrawn."
)


@router.get("", summary="Rule versions (the built-in default first)", description=HOW)
async def list_versions(
    session: SessionDep,
    _: Read,
    region: Annotated[
        str | None,
        Query(
            description="Only versions that can decide somewhere inside this region",
            json_schema_extra=CODE_SCHEMA,
        ),
    ] = None,
) -> list[RuleVersionRead]:
    return [RuleVersionRead.from_domain(v) for v in await service.list_versions(session, region)]


@router.get("/effective", summary="The version deciding for a village on a day", description=HOW)
async def effective_version(
    session: SessionDep,
    _: Read,
    village_code: Annotated[
        str, Query(min_length=1, description="Kemendagri village code", json_schema_extra=CODE_SCHEMA)
    ],
    on: Annotated[ApiDate | None, Query(description="Decision date (default today)")] = None,
) -> RuleVersionRead:
    return RuleVersionRead.from_domain(await service.effective(session, village_code, on))


@router.get("/{version}", summary="One rule version")
async def get_version(version: str, session: SessionDep, _: Read) -> RuleVersionRead:
    return RuleVersionRead.from_domain(await service.get_version(session, version))


@router.post(
    "",
    status_code=201,
    summary="Add a rule version (scope dashat:rules)",
    description=HOW
    + " Nonsense is refused with 422 naming the field (negative or zero days, an age limit beyond baduta or "
    "balita, a date in the past); a region outside the caller's is 403.",
)
async def create_version(
    body: RuleVersionCreate, session: SessionDep, principal: Admin, response: Response
) -> RuleVersionRead:
    created = await service.create(session, body, principal)
    response.headers["Location"] = f"/v1/rule-versions/{created.version}"
    return RuleVersionRead.from_domain(created)


@router.delete(
    "/{version}",
    status_code=204,
    summary="Withdraw a version not yet in effect (scope dashat:rules)",
    responses={409: {"description": "In effect already: kept to explain its decisions"}},
)
async def withdraw_version(version: str, session: SessionDep, principal: Admin) -> Response:
    await service.withdraw(session, version, principal)
    return Response(status_code=204)
