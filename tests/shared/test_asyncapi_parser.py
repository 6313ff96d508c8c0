"""The AsyncAPI document as a partner's tooling reads it: the official parser (@asyncapi/parser) finds no error."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from shared.config import REPO_ROOT
from shared.events.envelope import event_types

CHECKER = REPO_ROOT / "tests" / "asyncapi_parser"
DOCS = REPO_ROOT / "docs" / "events"


def installed_parser() -> None:
    """`npm ci` the pinned parser once per checkout (node_modules is not committed)."""
    if (CHECKER / "node_modules" / "@asyncapi" / "parser").is_dir():
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=CHECKER,
        check=True,
        timeout=300,
        capture_output=True,
    )


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node.js and npm"
)
def test_the_official_asyncapi_parser_finds_no_error() -> None:
    installed_parser()
    # Relative $refs (schemas/*.json) resolve from the document's folder.
    result = subprocess.run(
        ["node", str(CHECKER / "check.mjs"), "asyncapi.yaml"],
        cwd=DOCS,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "errors=0" in result.stdout, result.stdout
    assert f"messages={len(event_types())}" in result.stdout, result.stdout
