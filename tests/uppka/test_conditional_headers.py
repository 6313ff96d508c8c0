"""Issue 13: uppka's OpenAPI declares If-Match on exactly the operations that answer 428 without it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.shared.preconditions import if_match_declared_where_taken

pytestmark = pytest.mark.integration


async def test_if_match_is_declared_where_it_is_required(client: Any) -> None:
    # Group, member role, business and target updates, a member leaving, a report amendment: 6 operations,
    # which read the header by hand before and so declared nothing.
    assert await if_match_declared_where_taken(client, {}) == 6
