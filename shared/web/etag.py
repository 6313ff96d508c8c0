"""Optimistic concurrency over HTTP: `ETag` on reads, `If-Match` required on updates (412 when stale).

`If-Match` follows RFC 9110 §13.1.1: the field is `*` or a comma-separated list of entity tags. `*` matches any
current representation (the route has already answered 404 when there is none); otherwise the condition holds
when one of the listed tags matches the current `ETag` by *strong* comparison (§8.8.3.2), so a weak tag (`W/"3"`)
never matches. Our tags are strong: the row's version counter in quotes.

Three answers, each for one thing (issue 13):
- no `If-Match` at all: 428 (RFC 6585 §3, the write needs a precondition);
- a field value that is neither `*` nor a list of at least one entity tag (empty, unquoted, longer than
  `MAX_LENGTH`): 400 `if-match-malformed`, malformed syntax (RFC 9110 §15.5.1) — there is no condition to
  evaluate, so 412 ("the condition evaluated to false", §15.5.13) would not be true;
- a well-formed list none of whose tags names the current version (stale, weak, not a counter): 412.
The OpenAPI declares the header with `IF_MATCH_PATTERN`, which is exactly what `parse_if_match` reads, so a
value outside the declared schema is the 400 and a value inside it is never refused as malformed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Response
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from shared.errors import DomainError, PreconditionFailed, PreconditionRequired

FIELD = "header.If-Match"
# A version counter fits a PostgreSQL bigint (19 digits); a longer tag names no version (and a string of over
# 4,300 digits would trip Python's int conversion limit, so it is never converted).
_VERSION_DIGITS = 19
# An entity tag (RFC 9110 §8.8.3): optional weak prefix, then an opaque tag of etagc = %x21 / %x23-7E / obs-text.
_ENTITY_TAG = r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"'
_ENTITY_TAG_PLAIN = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
# `*` or a comma-separated list of at least one entity tag (§13.1.1), empty list elements allowed and ignored
# (§5.6.1.2: a recipient must accept them), as the OpenAPI declares it: the same expression is the header's
# schema pattern (ECMA-262 reads it alike) and what the parser accepts.
IF_MATCH_PATTERN = rf"^(?:\*|[ \t,]*{_ENTITY_TAG_PLAIN}(?:[ \t]*,[ \t,]*{_ENTITY_TAG_PLAIN})*[ \t,]*)$"
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_MEMBER = re.compile(_ENTITY_TAG)
# How long a list we read; a real client sends one tag.
MAX_LENGTH = 4096
_MALFORMED = 'If-Match is neither * nor a list of entity tags such as "3"'


@dataclass(frozen=True)
class IfMatchCondition:
    """What an `If-Match` asks for: any current version (`*`) or one of the versions its strong tags name."""

    any_version: bool
    versions: frozenset[int]

    def matches(self, current: int) -> bool:
        return self.any_version or current in self.versions


def etag_of(version: int) -> str:
    """Strong ETag for a row's version counter."""
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag_of(version)


class MalformedIfMatch(DomainError):
    """`If-Match` is present but is no `*` and no entity-tag list: malformed syntax, not a false condition."""

    status = 400
    code = "if-match-malformed"
    title = "If-Match is malformed"


def parse_if_match(header: str) -> IfMatchCondition:
    """Read an `If-Match` field value; 400 naming the header when it is neither `*` nor a list of entity tags."""
    value = header.strip(" \t")
    if len(value) > MAX_LENGTH or not _IF_MATCH.fullmatch(value):
        raise MalformedIfMatch(_MALFORMED, field=FIELD)
    if value == "*":
        return IfMatchCondition(any_version=True, versions=frozenset())
    versions: set[int] = set()
    for member in _MEMBER.finditer(value):
        weak, opaque = member.group(1), member.group(2)
        # Strong comparison: a weak tag never matches, and a tag that is no decimal counter names no version.
        if not weak and opaque.isascii() and opaque.isdigit() and len(opaque) <= _VERSION_DIGITS:
            versions.add(int(opaque))
    return IfMatchCondition(any_version=False, versions=frozenset(versions))


def expected_version(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description=(
                'The `ETag` you read (a strong tag such as `"3"`), or `*` for any current version (RFC 9110). '
                "Missing: 428; not `*` or an entity-tag list: 400; stale, weak or not a version: 412."
            ),
        ),
    ] = None,
) -> IfMatchCondition:
    """The version(s) the client last saw, from `If-Match`; 428 without it, 400 if it is no entity-tag list."""
    if if_match is None:
        raise PreconditionRequired("send If-Match with the ETag you read", field=FIELD)
    return parse_if_match(if_match)


# Declaring the dependency puts the `If-Match` header parameter into the operation's OpenAPI.
IfMatch = Annotated[IfMatchCondition, Depends(expected_version)]


def check_version(expected: IfMatchCondition | int, current: int) -> None:
    """412 when the client's `If-Match` does not match the current version."""
    matched = expected == current if isinstance(expected, int) else expected.matches(current)
    if not matched:
        raise PreconditionFailed(
            f"the resource changed (now version {current}), or If-Match named no current version with a strong "
            "tag; read it again",
            field=FIELD,
        )


_PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
ETAG_HEADER: dict[str, Any] = {
    "description": "Version of the resource (a strong tag); send it back as If-Match",
    "schema": {"type": "string"},
}


def document_preconditions(schema: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    """Declare 412/428 where `If-Match` is taken, and the `ETag` header on the answers of routes that set it.

    A route sends `ETag` when its endpoint calls `set_etag` (read from the function's code, so a new route is
    covered without a declaration to forget); the `If-Match` parameter comes from the `IfMatch` dependency.
    """
    for context in iter_route_contexts(routes):
        # Included routers nest their routes; a context carries the full path and the endpoint of each.
        endpoint = context.endpoint
        if not isinstance(context.original_route, APIRoute) or endpoint is None:
            continue
        compiled = getattr(endpoint, "__code__", None)
        if compiled is None or "set_etag" not in compiled.co_names:
            continue
        item = schema.get("paths", {}).get(context.path_format or "", {})
        for method in context.methods or ():
            for status, response in item.get(method.lower(), {}).get("responses", {}).items():
                if status.startswith("2"):
                    response.setdefault("headers", {})["ETag"] = ETAG_HEADER
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            parameters = operation.get("parameters", []) if isinstance(operation, dict) else []
            taken = [p for p in parameters if p.get("in") == "header" and p.get("name") == "If-Match"]
            if not taken:
                continue
            # Optional to FastAPI only so that a missing header is our 428 rather than its 422; for a client
            # the operation cannot succeed without it.
            for parameter in taken:
                parameter["required"] = True
                parameter["schema"] = {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_LENGTH,
                    "pattern": IF_MATCH_PATTERN,
                }
            responses = operation.setdefault("responses", {})
            responses.setdefault("412", {"content": _PROBLEM_CONTENT})["description"] = (
                "If-Match names no current version (stale, weak or not an entity tag)"
            )
            responses.setdefault("428", {"content": _PROBLEM_CONTENT})["description"] = "If-Match is missing"
            malformed = responses.setdefault(
                "400", {"description": "Bad request (problem+json)", "content": _PROBLEM_CONTENT}
            )
            malformed["description"] += (
                "; `if-match-malformed`: If-Match is neither `*` nor an entity-tag list"
            )
