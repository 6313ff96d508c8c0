"""The layout docs/architecture.md describes ("Response models and list paging"), held by reading the code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("registry", "uppka", "dashat", "reporting")


def _modules(name: str) -> list[Path]:
    return sorted(p for svc in SERVICES for p in (ROOT / "services" / svc / svc).rglob(name))


def test_services_build_no_response_models() -> None:
    """A service returns rows or records; the endpoint makes the response model (`XRead`) from them."""
    offenders = []
    for path in _modules("service.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            # From the module's schemas or from shared (StatisticsRead): a read model is the endpoint's to make.
            if isinstance(node, ast.ImportFrom):
                offenders += [
                    f"{path.relative_to(ROOT)}: {a.name}" for a in node.names if a.name.endswith("Read")
                ]
    assert offenders == []


def test_endpoints_answer_typed_models_not_dicts() -> None:
    offenders = []
    for path in _modules("endpoints.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.AsyncFunctionDef) and node.returns is not None:
                returns = ast.unparse(node.returns)
                if "dict[" in returns and node.name not in _UNTYPED:
                    offenders.append(f"{path.relative_to(ROOT)}: {node.name} -> {returns}")
    assert offenders == []


# The one answer with no response model yet: the anthropometry batch scorer (its OpenAPI says `object`).
_UNTYPED = {"score_batch"}


def test_no_list_filters_are_retyped_as_typeddicts() -> None:
    """Filters are typed once, by the repository's signature (`shared.db.read_only` checks calls against it)."""
    offenders = []
    for path in _modules("repository.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "TypedDict" for b in node.bases):
                offenders.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert offenders == []
