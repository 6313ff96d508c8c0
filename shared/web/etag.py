"""Optimistic concurrency over HTTP: `ETag` on reads, `If-Match` required on updates (412 when stale)."""

from __future__ import annotations

from fastapi import Request, Response

from shared.errors import PreconditionFailed, PreconditionRequired


def etag_of(version: int) -> str:
    """Strong ETag for a row's version counter."""
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag_of(version)


def expected_version(request: Request) -> int:
    """The version the client last saw, from `If-Match`; 428 without it, 412 if unparseable."""
    header = request.headers.get("if-match")
    if not header:
        raise PreconditionRequired("send If-Match with the ETag you read", field="header.If-Match")
    value = header.strip().removeprefix("W/").strip('"')
    # A version counter fits a PostgreSQL bigint (19 digits); anything longer names no version (and a string of
    # over 4,300 digits would trip Python's int conversion limit).
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise PreconditionFailed("If-Match does not name a current version", field="header.If-Match")
    return int(value)


def check_version(expected: int, current: int) -> None:
    """412 when the client's version is not the current one."""
    if expected != current:
        raise PreconditionFailed(
            f"the resource changed (now version {current}); read it again", field="header.If-Match"
        )
