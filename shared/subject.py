"""Data-subject export (UU 27/2022 PDP, issue 12 item 8): what every service shares of it, once.

Each service answers `GET /v1/subjects/{person_id}/export` with what it holds about one person, in its own
sections; `kencana subject-export` joins the four answers into one document. The rules are the same in all
four, so they live here:

- the scope is `kencana:subject:export` (one scope for the four services: a data-subject request is answered
  from all of them at once, by the officer handling it), and the caller's region applies: a person outside it
  is answered exactly as an unknown person (404);
- an `X-Purpose` header is required (the request's reference, e.g. the PDP request number);
- every export is audited in the service's own database before the answer leaves: the registry in its access
  log (`action = "subject_export"`), the other services in their `subject_access_log` table (same columns).
  The audit row commits even though the export itself only reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Header
from pydantic import BaseModel, Field
from sqlalchemy import ARRAY, Column, DateTime, MetaData, Table, Text, Uuid, func, insert

from shared.auth import Principal, require_scopes
from shared.db import utcnow
from shared.errors import ValidationFailed
from shared.web.context import current_correlation_id

SUBJECT_EXPORT = "kencana:subject:export"
SubjectExporter = Annotated[Principal, require_scopes(SUBJECT_EXPORT)]
EXPORT_ACTION = "subject_export"
# Columns never exported as such: key material and lookup digests (the NIK itself is shown, or masked, by the
# registry alone; a ciphertext or a blind index means nothing to the person and helps an attacker).
SECRET_COLUMNS = frozenset(
    {"nik_ciphertext", "nik_index", "nik_key_id", "kk_ciphertext", "kk_index", "kk_key_id"}
)


class SubjectExport(BaseModel):
    """One service's part of a data-subject export."""

    service: str
    person_id: uuid.UUID
    exported_at: datetime
    sections: dict[str, list[dict[str, Any]]] = Field(
        description="Per kind of record (table), every record this service holds about the person, oldest first"
    )


def subject_access_log_table(metadata: MetaData) -> Table:
    """The audit of data-subject exports in a service without the registry's access log."""
    return Table(
        "subject_access_log",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("accessed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor", Text, nullable=False),
        Column("person_id", Uuid, nullable=False, index=True),
        Column("purpose", Text, nullable=False),
        Column("action", Text, nullable=False),
        Column("sections", ARRAY(Text), nullable=False),
        Column("request_id", Text),
    )


def audit_row(
    table: Table, principal: Principal, person_id: uuid.UUID, purpose: str, sections: Iterable[str]
) -> Any:
    """The INSERT of one audit entry (the caller's repository executes it in its transaction)."""
    return insert(table).values(
        id=uuid.uuid4(),
        actor=principal.sub,
        person_id=person_id,
        purpose=purpose,
        action=EXPORT_ACTION,
        sections=sorted(sections),
        request_id=current_correlation_id(),
    )


async def export_purpose(
    x_purpose: Annotated[
        str | None,
        Header(description="Why the export is made: the data-subject request's reference (audited)"),
    ] = None,
) -> str:
    """The purpose of an export: required (422 naming the header without it)."""
    if x_purpose is None or not x_purpose.strip():
        raise ValidationFailed(
            "a data-subject export requires an X-Purpose header (the request's reference)",
            field="header.X-Purpose",
            rule="subject.purpose_required",
        )
    return x_purpose.strip()[:200]


def plain(value: Any) -> Any:
    """A column value as JSON: ids and dates as strings, numbers as numbers, lists and objects as they are."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def records(rows: Sequence[Any], *, drop: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Rows (mappings or ORM objects) as plain records, secrets and `drop` left out."""
    left_out = SECRET_COLUMNS | set(drop)
    out = []
    for row in rows:
        mapping = row._mapping if hasattr(row, "_mapping") else _orm_mapping(row)
        out.append(
            {k: plain(v) for k, v in mapping.items() if k not in left_out and not isinstance(v, bytes)}
        )
    return out


def _orm_mapping(obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


def export_document(
    service: str, person_id: uuid.UUID, sections: dict[str, list[dict[str, Any]]]
) -> SubjectExport:
    """One service's answer."""
    return SubjectExport(service=service, person_id=person_id, exported_at=utcnow(), sections=sections)
