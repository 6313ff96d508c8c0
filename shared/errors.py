"""Typed domain errors, mapped once to RFC 9457 problem+json by the web kit."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a rule or a use case raises on purpose; never a 500."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        rule: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.rule = rule
        self.errors = errors or []
        self.extra = extra or {}
        if field is not None and not self.errors:
            # The Problem schema types `errors[].rule` as a string: an error raised without a rule of its own is
            # named by its class's code (precondition-required, not-found...), never null.
            self.errors = [{"field": field, "rule": rule or self.code, "message": detail}]


class ValidationFailed(DomainError):
    """Input breaks a domain rule (422, naming the field and the rule)."""

    status = 422
    code = "validation-failed"
    title = "Input breaks a rule"


def fail(errors: list[dict[str, Any]], detail: str = "the input breaks rules") -> None:
    """Raise one 422 naming every broken rule (`{field, rule, message}` each); nothing when none is broken."""
    if errors:
        first = errors[0]
        raise ValidationFailed(
            detail if len(errors) > 1 else first["message"],
            field=first["field"],
            rule=first["rule"],
            errors=errors,
        )


class NotFound(DomainError):
    """Unknown resource, or one outside the caller's region (no existence leak)."""

    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    """The write collides with existing state (duplicate NIK, second monthly report...)."""

    status = 409
    code = "conflict"
    title = "Conflict"


class PreconditionFailed(DomainError):
    """`If-Match` names a version that is no longer current."""

    status = 412
    code = "precondition-failed"
    title = "Stale write"


class PreconditionRequired(DomainError):
    """An update came without `If-Match`."""

    status = 428
    code = "precondition-required"
    title = "If-Match required"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Not authenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Missing scope"
