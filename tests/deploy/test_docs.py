"""The operator and partner documents exist and still name what the deploy files define."""

from __future__ import annotations

import re

from shared.config import REPO_ROOT
from tests.deploy.settings_env import CONSUMER_GROUPS, SERVICES

DOCS = REPO_ROOT / "docs"


def test_architecture_has_one_diagram_naming_services_topics_and_databases() -> None:
    text = (DOCS / "architecture.md").read_text()
    diagrams = re.findall(r"```mermaid\n(.*?)```", text, re.DOTALL)
    assert len(diagrams) == 1
    diagram = diagrams[0]
    for svc in SERVICES:
        assert f"{svc} DB" in diagram
    for topic in (
        "kencana.registry",
        "kencana.uppka",
        "kencana.dashat",
        *(f"{g}.dlq" for g in CONSUMER_GROUPS),
    ):
        assert topic in diagram


def test_runbook_covers_the_procedures() -> None:
    text = (DOCS / "runbook.md").read_text()
    for needle in (
        "make up",
        "make down",
        "kencana migrate",
        "kencana reporting rebuild",
        "dlq.original.topic",
        "REGISTRY_NIK_ENCRYPTION_KEYS",
        "JWKS",
        "When Kafka is down",
        "kencana topics check",
        "kencana topics repair",
        "event-history-at-risk",
    ):
        assert needle in text, needle


def test_integration_guide_covers_tokens_calls_and_events() -> None:
    text = (DOCS / "integration.md").read_text()
    for needle in (
        "kencana token",
        "client_credentials",
        "problem+json",
        "Idempotency-Key",
        "If-Match",
        "next_cursor",
        "structured mode",
        "events/asyncapi.yaml",
        "events/CATALOGUE.md",
    ):
        assert needle in text, needle
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (DOCS / link).exists(), link
