"""Issue 13: dashat's OpenAPI declares If-Match on exactly the operations that answer 428 without it."""

from __future__ import annotations

from typing import Any

import pytest

from shared.testing.plugin import bearer
from tests.shared.preconditions import if_match_declared_where_taken

pytestmark = pytest.mark.integration

EVERY_SCOPE = bearer("dashat:read dashat:write dashat:rules", region="33")


async def test_if_match_is_declared_where_it_is_required(client: Any) -> None:
    # A kitchen's update and closing, an enrolment's exit: 3 operations, which read the header by hand before.
    assert await if_match_declared_where_taken(client, EVERY_SCOPE) == 3
