"""Each service's OpenAPI document, built from its app factory (nothing runs, no database is opened)."""

from __future__ import annotations

import importlib
from typing import Any

SERVICES = ("registry", "uppka", "dashat", "reporting")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def openapi_of(service: str) -> dict[str, Any]:
    """The OpenAPI document the service serves at /openapi.json."""
    app = importlib.import_module(f"{service}.main").create_app()
    spec: dict[str, Any] = app.openapi()
    return spec


def operations(spec: dict[str, Any]) -> set[str]:
    """`METHOD path` of every operation in the document."""
    return {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }
