"""Issue 13: registry's OpenAPI declares If-Match on exactly the operations that answer 428 without it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.registry.conftest import auth
from tests.shared.preconditions import if_match_declared_where_taken

pytestmark = pytest.mark.integration

EVERY_SCOPE = auth("registry:read registry:write registry:import registry:pii:read registry:nik:search")


async def test_if_match_is_declared_where_it_is_required(client: Any) -> None:
    # Updates of a kampung KB, a family and a person; a family's move and removal; a person's death, move and
    # removal; a measurement's correction and retraction; a pregnancy's end; a merge: 12 operations.
    assert await if_match_declared_where_taken(client, {**EVERY_SCOPE, "X-Purpose": "PDP-2026-013"}) == 12
