"""Verified tokens are remembered, never past their expiry, never for longer than the key cache would be."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest

from shared import auth
from shared.auth import TokenVerifier, issue_dev_token
from shared.config import ServiceSettings
from shared.errors import Unauthorized


def _counting_decode(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = jwt.decode

    def decode(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", decode)
    return calls


async def test_a_token_is_verified_once_while_it_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(ServiceSettings())
    calls = _counting_decode(monkeypatch)
    token = issue_dev_token(scopes=["a:read", "a:write"], region="15.71", sub="kader-1")
    first = await verifier.verify(token)
    again = await verifier.verify(token)
    assert first == again and first.sub == "kader-1" and first.region == "15.71"
    assert len(calls) == 1
    other = issue_dev_token(scopes=["a:read"], sub="kader-2")
    assert (await verifier.verify(other)).scopes == frozenset({"a:read"})
    assert len(calls) == 2


async def test_a_remembered_token_still_expires() -> None:
    verifier = TokenVerifier(ServiceSettings(jwt_leeway_seconds=0))
    token = issue_dev_token(scopes=["a:read"], ttl_seconds=1)
    await verifier.verify(token)
    await asyncio.sleep(1.2)
    with pytest.raises(Unauthorized, match="token expired"):
        await verifier.verify(token)


async def test_a_remembered_token_is_verified_again_after_the_key_cache_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = TokenVerifier(ServiceSettings())
    calls = _counting_decode(monkeypatch)
    token = issue_dev_token(scopes=["a:read"])
    await verifier.verify(token)
    monkeypatch.setattr(auth, "VERIFIED_TOKEN_SECONDS", 0.0)
    await verifier.verify(token)
    assert len(calls) == 2


async def test_a_forged_token_is_never_taken_from_memory() -> None:
    verifier = TokenVerifier(ServiceSettings())
    token = issue_dev_token(scopes=["a:read"])
    await verifier.verify(token)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(Unauthorized):
        await verifier.verify(forged)
