"""The bounded schemathesis run of `make test`: all four services, every scope, checks `all`, fixed seed.

Fails on any 5xx, any conformance failure (schemathesis' verdict with tests/openapi/schemathesis.toml and
hooks.py) and any ETag sent by an operation that does not declare it; the counts are printed (run with -s to
see them). The long run is `make test-fuzz` (same code, a larger budget; it writes docs/fuzz.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.openapi.fuzz import BOUNDED, failures, fuzz_all

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(1500)]


def test_bounded_fuzz_run_finds_nothing(tmp_path: Path) -> None:
    results = fuzz_all(BOUNDED, tmp_path)
    for result in results:
        print(result.summary())
    assert all(r.requests > 0 for r in results), [r.summary() for r in results]
    assert failures(results) == []
