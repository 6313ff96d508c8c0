"""What the four OpenAPI documents say, against what the services do (issue 13, "an honest OpenAPI")."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Response
from pydantic import BaseModel

from shared.web import openapi as openapi_kit
from shared.web.etag import set_etag
from tests.openapi.specs import SERVICES, openapi_of

SPECS: dict[str, dict[str, Any]] = {}


def spec(service: str) -> dict[str, Any]:
    if service not in SPECS:
        SPECS[service] = openapi_of(service)
    return SPECS[service]


def _param(operation: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in operation["parameters"] if p["name"] == name)


def _enum(schema: dict[str, Any]) -> list[Any]:
    """The enum of a parameter schema, optional (anyOf with null) or not."""
    for option in schema.get("anyOf", [schema]):
        if "enum" in option:
            return list(option["enum"])
    raise AssertionError(f"no enum in {schema}")


def test_reporting_period_and_format_are_typed() -> None:
    paths = spec("reporting")["paths"]
    for path, names in (
        ("/v1/indicators", ["period"]),
        ("/v1/regions/{code}/summary", ["period"]),
        ("/v1/indicators/{name}/series", ["from", "to"]),
    ):
        operation = paths[path]["get"]
        for name in names:
            assert _param(operation, name)["schema"]["pattern"].startswith("^(19[7-9]")
    assert _enum(_param(paths["/v1/indicators"]["get"], "format")["schema"]) == [
        "json",
        "csv",
        "xlsx",
        "png",
        "svg",
    ]
    assert _enum(_param(paths["/v1/regions/{code}/summary"]["get"], "format")["schema"]) == [
        "json",
        "csv",
        "xlsx",
    ]


@pytest.mark.parametrize(
    ("service", "model", "values"),
    [
        ("registry", "MeasurementRead", ["active", "corrected", "retracted"]),
        ("registry", "StuntingCaseRead", ["open", "resolved", "retracted"]),
        ("registry", "ImportRead", ["queued", "running", "done", "failed"]),
        ("registry", "PregnancyRead", ["ongoing", "ended"]),
        ("uppka", "StatusChangeRead", ["active", "inactive", "dissolved"]),
        ("dashat", "KitchenRead", ["active", "closed"]),
        ("dashat", "KitchenSummary", ["active", "closed"]),
        ("dashat", "EnrolmentRead", ["active", "completed", "exited", "retracted"]),
        ("dashat", "WaitlistRead", ["waiting", "enrolled", "cancelled"]),
    ],
)
def test_status_fields_are_enums(service: str, model: str, values: list[str]) -> None:
    status = spec(service)["components"]["schemas"][model]["properties"]["status"]
    assert status.get("enum") == values


@pytest.mark.parametrize("service", SERVICES)
def test_no_property_named_status_is_a_bare_string(service: str) -> None:
    bare = []
    for name, schema in spec(service)["components"]["schemas"].items():
        for prop, sub in schema.get("properties", {}).items():
            if prop.endswith("status") and sub.get("type") == "string" and "enum" not in sub:
                bare.append(f"{name}.{prop}")
    assert bare == []


def test_score_sex_is_two_enums_of_one_type_each() -> None:
    sex = spec("registry")["components"]["schemas"]["ScoreItem"]["properties"]["sex"]
    assert sex["anyOf"] == [{"enum": ["L", "P"], "type": "string"}, {"enum": [1, 2], "type": "integer"}]


def test_import_bodies_are_described_as_files() -> None:
    body = spec("registry")["paths"]["/v1/imports"]["post"]["requestBody"]
    assert set(body["content"]) == {"text/csv", "application/x-ndjson", "application/octet-stream"}
    assert all(c["schema"] == {"type": "string", "format": "binary"} for c in body["content"].values())


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_with_a_body_documents_the_400(service: str) -> None:
    for path, item in spec(service)["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                assert "400" in operation["responses"], f"{method.upper()} {path}"


class Thing(BaseModel):
    id: int


def test_etag_is_declared_where_the_endpoint_sets_it() -> None:
    router = APIRouter()

    @router.get("/things/{thing_id}")
    async def read(thing_id: int, response: Response) -> Thing:
        set_etag(response, 3)
        return Thing(id=thing_id)

    @router.post("/things", status_code=201)
    async def create(body: Thing, response: Response) -> Thing:
        set_etag(response, 1)
        return body

    @router.get("/things")
    async def listing() -> list[Thing]:
        return []

    app = FastAPI()
    app.include_router(router)
    document = app.openapi()
    openapi_kit.complete(app, document)
    paths = document["paths"]
    assert "ETag" in paths["/things/{thing_id}"]["get"]["responses"]["200"]["headers"]
    assert "ETag" in paths["/things"]["post"]["responses"]["201"]["headers"]
    assert "headers" not in paths["/things"]["get"]["responses"]["200"]
    assert "400" in paths["/things"]["post"]["responses"]
    assert "400" not in paths["/things"]["get"]["responses"]


@pytest.mark.parametrize(
    ("service", "method", "path", "status"),
    [
        ("registry", "get", "/v1/families/{family_id}", "200"),
        ("registry", "get", "/v1/measurements/{measurement_id}", "200"),
        ("registry", "get", "/v1/pregnancies/{pregnancy_id}", "200"),
        ("registry", "post", "/v1/families", "201"),
        ("uppka", "get", "/v1/groups/{group_id}", "200"),
        ("uppka", "get", "/v1/targets/{target_id}", "200"),
        ("dashat", "get", "/v1/kitchens/{kitchen_id}", "200"),
        ("dashat", "get", "/v1/enrolments/{enrolment_id}", "200"),
    ],
)
def test_services_declare_the_etag_they_send(service: str, method: str, path: str, status: str) -> None:
    headers = spec(service)["paths"][path][method]["responses"][status]["headers"]
    assert headers["ETag"]["schema"]["type"] == "string"
