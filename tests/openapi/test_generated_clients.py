"""A client generated from each service's OpenAPI with openapi-python-client keeps every operation, no warning.

Partners generate their clients from these documents: an operation the generator cannot read is silently
left out of their client (the score batch and the bulk import were), so any warning fails here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import REPO_ROOT
from tests.openapi.specs import SERVICES, openapi_of, operations

CONFIG = REPO_ROOT / "docs" / "openapi-client.yaml"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


def _generated_operations(out: Path) -> set[str]:
    """`METHOD path` of every endpoint module the generator wrote (read from its `_get_kwargs`)."""
    found: set[str] = set()
    for module in out.rglob("api/*/*.py"):
        if module.name == "__init__.py":
            continue
        tree = ast.parse(module.read_text())
        method = url = None
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "method":
                        method = ast.literal_eval(value)
                    if isinstance(key, ast.Constant) and key.value == "url":
                        # A path with parameters is written "/v1/x/{id}".format(id=quote(...)).
                        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
                            value = value.func.value
                        url = ast.literal_eval(value)
        assert method and url, f"cannot read the operation of {module}"
        found.add(_shape(f"{method.upper()} {url}"))
    return found


def _shape(operation: str) -> str:
    """An operation with its path parameters' names blanked (the generator quotes them, renamed)."""
    method, path = operation.split(" ", 1)
    parts = ["{}" if p.startswith("{") else p for p in path.split("/")]
    return f"{method} {'/'.join(parts)}"


@pytest.mark.parametrize("service", SERVICES)
def test_generated_client_has_every_operation(service: str, tmp_path: Path) -> None:
    spec = openapi_of(service)
    document = tmp_path / f"{service}.json"
    document.write_text(json.dumps(spec))
    out = tmp_path / "client"
    run = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(out),
            "--meta",
            "none",
            "--config",
            str(CONFIG),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "warning" not in output.lower(), output

    expected = {_shape(op) for op in operations(spec)}
    assert expected - _generated_operations(out) == set()
    assert len(list(out.rglob("api/*/*.py"))) - len(list(out.rglob("api/*/__init__.py"))) == len(expected)
