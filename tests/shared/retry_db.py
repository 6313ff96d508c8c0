"""A database of its own for the retry walk: its requests commit for real (no rolled-back session), so they must
not leave rows that the other tests of the session would count."""

from __future__ import annotations

from shared.migrations import upgrade
from shared.testing.plugin import CHECKOUT_TAG, recreate_database


async def committed_database(service: str) -> str:
    """A fresh database for `service`, built by its migrations, for tests whose requests really commit."""
    url = await recreate_database(f"test_{service}_retries_{CHECKOUT_TAG}")
    await upgrade(service, url)
    return url
