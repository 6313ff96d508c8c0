"""Pure rules of a bulk import: the file layout, parsing, per-row validation and grouping into families.

File layout (CSV with a header line, or NDJSON with one JSON object per line; same names for both):
one row per person, the family's columns repeated on every row of the family. Rows with the same KK number
form one family (in any order); the KK number and the NIK (where a person has one) are the natural keys, so
re-importing a file finds what the first import created and changes nothing.

- family: ``kk_number`` (required), ``village_code`` (required, ``PP.KK.CC.DDDD``), ``rw``, ``rt``, ``street``,
  ``welfare_decile`` (1-10), ``drinking_water_source``, ``latrine_type``, ``kampung_kb_code`` (the code of an
  existing Kampung KB in the caller's region; an empty cell leaves the family's Kampung KB as it is)
- person: ``nik`` (optional), ``name``, ``sex`` (L/P), ``birth_date`` (YYYY-MM-DD), ``relation`` (one row of
  each family is ``kepala_keluarga``), ``marital_status``, ``education``, ``occupation``, ``legal_basis``
- optional measurement of a child on the same row: ``measured_on``, ``weight_kg``, ``lenhei_cm``,
  ``position`` (l/h), ``oedema`` (y/n)
- optional KB status of the person (the rules and event of ``POST /v1/persons/{id}/kb-status``): ``kb_method``
  (empty = not using KB), ``kb_since`` (required with any KB cell), ``kb_reason_non_use`` (for a non-user),
  ``kb_service_source``; a re-import with the same status changes nothing, a different one adds a new status
- optional current pregnancy of a woman (the rules and event of ``POST /v1/pregnancies``): ``pregnancy_lmp``
  (HPHT); a re-import with the same HPHT changes nothing, another HPHT while one is ongoing is a row error

``row`` numbers count data records from 1 (the CSV header is not counted; an NDJSON line is a record).
A person without NIK is matched on a re-import by normalised name and birth date inside the same family.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from registry.families.schemas import LatrineType, LegalBasis, WaterSource
from registry.health.schemas import KbMethodInput
from shared.events.vocab import (
    MaritalStatus,
    NonUseReason,
    Position,
    Relation,
    ServiceSource,
    Sex,
)
from shared.web.schemas import ApiDate, forbidden_char

Format = Literal["csv", "ndjson"]
Mode = Literal["validate", "commit"]
OnMismatch = Literal["reject", "flag"]

FAMILY_COLUMNS: Final = (
    "kk_number",
    "village_code",
    "rw",
    "rt",
    "street",
    "welfare_decile",
    "drinking_water_source",
    "latrine_type",
    "kampung_kb_code",
)
PERSON_COLUMNS: Final = (
    "nik",
    "name",
    "sex",
    "birth_date",
    "relation",
    "marital_status",
    "education",
    "occupation",
    "legal_basis",
)
MEASUREMENT_COLUMNS: Final = ("measured_on", "weight_kg", "lenhei_cm", "position", "oedema")
KB_COLUMNS: Final = ("kb_method", "kb_since", "kb_reason_non_use", "kb_service_source")
PREGNANCY_COLUMNS: Final = ("pregnancy_lmp",)
COLUMNS: Final = FAMILY_COLUMNS + PERSON_COLUMNS + MEASUREMENT_COLUMNS + KB_COLUMNS + PREGNANCY_COLUMNS
REQUIRED_COLUMNS: Final = ("kk_number", "village_code", "name", "sex", "birth_date", "relation")
# The family's own facts: every row of a family must agree on them.
FAMILY_FACTS: Final = FAMILY_COLUMNS[1:]
# Facts stored on the family as the file gives them; the Kampung KB code is resolved to the family's id link.
FAMILY_ATTRIBUTES: Final = tuple(c for c in FAMILY_FACTS if c != "kampung_kb_code")
MISMATCH_RULES: Final = frozenset({"nik.birth_date_mismatch", "nik.sex_mismatch"})
_DIGITS_ONLY = re.compile(r"[\s.\-]")
_NAME_KEY = re.compile(r"[^0-9a-z]+")


class FileRejected(Exception):
    """The file as a whole cannot be read (wrong columns, not text): nothing is imported."""

    def __init__(self, message: str, *, field: str, rule: str) -> None:
        super().__init__(message)
        self.message, self.field, self.rule = message, field, rule


@dataclass(frozen=True, slots=True)
class Issue:
    """A broken rule of one row (``level`` error) or an accepted conflict (``level`` flagged)."""

    row_no: int
    field: str | None
    rule: str
    message: str
    level: Literal["error", "flagged"] = "error"


class ImportRow(BaseModel):
    """One person row as the file gives it (empty cells are absent)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    kk_number: str = Field(max_length=40)
    village_code: str = Field(pattern=r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$")
    rw: str | None = Field(default=None, pattern=r"^\d{1,3}$")
    rt: str | None = Field(default=None, pattern=r"^\d{1,3}$")
    street: str | None = Field(default=None, max_length=300)
    welfare_decile: int | None = Field(default=None, ge=1, le=10)
    drinking_water_source: WaterSource | None = None
    latrine_type: LatrineType | None = None
    kampung_kb_code: str | None = Field(default=None, min_length=1, max_length=40)
    nik: str | None = Field(default=None, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    sex: Sex
    birth_date: ApiDate
    relation: Relation
    marital_status: MaritalStatus = "belum_kawin"
    education: str | None = Field(default=None, max_length=80)
    occupation: str | None = Field(default=None, max_length=80)
    legal_basis: LegalBasis = "public_service_mandate"
    measured_on: ApiDate | None = None
    weight_kg: float | None = None
    lenhei_cm: float | None = None
    position: Position | None = None
    oedema: bool = False
    kb_method: KbMethodInput | None = None
    kb_since: ApiDate | None = None
    kb_reason_non_use: NonUseReason | None = None
    kb_service_source: ServiceSource | None = None
    pregnancy_lmp: ApiDate | None = None

    @property
    def has_measurement(self) -> bool:
        return self.measured_on is not None or self.weight_kg is not None or self.lenhei_cm is not None

    @property
    def has_kb_status(self) -> bool:
        return not (
            self.kb_method is None
            and self.kb_since is None
            and self.kb_reason_non_use is None
            and self.kb_service_source is None
        )

    def kb_status(self) -> tuple[str | None, date | None, str | None, str | None]:
        """(method, since, reason for non-use, service source) as the KB-status API takes them."""
        return self.kb_method, self.kb_since, self.kb_reason_non_use, self.kb_service_source

    def family_facts(self) -> tuple[Any, ...]:
        return tuple(getattr(self, c) for c in FAMILY_FACTS)


@dataclass(slots=True)
class Row:
    """A parsed row: the validated values, or the reasons it could not be read."""

    row_no: int
    data: ImportRow | None
    issues: list[Issue] = field(default_factory=list)
    raw_kk: str | None = None


@dataclass(slots=True)
class FamilyGroup:
    """The rows of one family (same KK number), in file order."""

    key: str
    rows: list[Row]

    @property
    def first_row(self) -> int:
        return self.rows[0].row_no


def name_key(name: str) -> str:
    """Normalised name for matching (same rule as the database's `person.name_key`)."""
    return _NAME_KEY.sub(" ", name.lower()).strip()


def digits(number: str) -> str:
    """A NIK/KK number without the separators people type (spaces, dots, dashes)."""
    return _DIGITS_ONLY.sub("", number)


def _row_from_values(
    row_no: int, values: dict[str, Any], *, cleaned: bool = False, text_checked: bool = False
) -> Row:
    """A row from its cells; `cleaned` when the caller already left out the empty cells, `text_checked` when
    it already found no forbidden character anywhere in the file's text."""
    raw_kk = values.get("kk_number")
    if not cleaned:
        values = {
            k: v for k, v in values.items() if v is not None and not (isinstance(v, str) and not v.strip())
        }
    # The same characters every API body refuses (NUL would fail in PostgreSQL: a 500, and the whole import).
    for key, value in () if text_checked else values.items():
        if forbidden_char(value) is not None or forbidden_char(key) is not None:
            field = key if forbidden_char(key) is None else None
            message = "a control or direction-override character is not allowed"
            # The row keeps its KK number (when that is clean) so its whole family is rejected with it.
            kk = raw_kk if isinstance(raw_kk, str) and forbidden_char(raw_kk) is None else None
            return Row(row_no, None, [Issue(row_no, field, "text_forbidden_character", message)], kk)
    try:
        data = ImportRow.model_validate(values)
    except ValidationError as exc:
        issues = [
            Issue(
                row_no,
                ".".join(str(p) for p in err["loc"]) or None,
                err["type"],
                err["msg"],
            )
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        return Row(row_no, None, issues, raw_kk if isinstance(raw_kk, str) else None)
    issues = []
    if data.has_measurement and data.measured_on is None:
        issues.append(Issue(row_no, "measured_on", "missing", "a measurement needs its date (measured_on)"))
    if data.has_kb_status and data.kb_since is None:
        issues.append(Issue(row_no, "kb_since", "missing", "a KB status needs its date (kb_since)"))
    return Row(row_no, None if issues else data, issues, data.kk_number)


def _decode(payload: bytes) -> str:
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRejected("the file is not UTF-8 text", field="file", rule="import.encoding") from exc


def check_header(header: Sequence[str]) -> list[str]:
    """The CSV header's column names; unknown or missing columns reject the file."""
    names = [h.strip().lower() for h in header]
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise FileRejected(
            f"unknown column(s): {', '.join(unknown)}; see the documented layout",
            field="file.header",
            rule="import.column_unknown",
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise FileRejected(
            f"missing column(s): {', '.join(missing)}", field="file.header", rule="import.column_missing"
        )
    if len(set(names)) != len(names):
        raise FileRejected("a column appears twice", field="file.header", rule="import.column_duplicate")
    return names


def parse(payload: bytes, fmt: Format) -> Iterator[Row]:
    """Rows of the file in order; a malformed row becomes a row with an issue, never an exception."""
    text = _decode(payload)
    if fmt == "csv":
        yield from _parse_csv(text)
    else:
        yield from _parse_ndjson(text)


def _parse_csv(text: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise FileRejected("the file is empty", field="file", rule="import.empty") from None
    except csv.Error as exc:
        raise FileRejected(
            f"unreadable header: {exc}", field="file.header", rule="import.row_malformed"
        ) from exc
    names = check_header(header)
    # One search of the whole text instead of one per cell: a CSV cell holds exactly the file's characters, so
    # a file without any forbidden character has no cell with one (NDJSON escapes like \u0000 do not allow this).
    text_checked = forbidden_char(text) is None
    row_no = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row_no += 1
            yield Row(row_no, None, [Issue(row_no, None, "import.row_malformed", f"unreadable row: {exc}")])
            continue
        if not record or all(not c.strip() for c in record):
            continue
        row_no += 1
        if len(record) != len(names):
            yield Row(
                row_no,
                None,
                [
                    Issue(
                        row_no,
                        None,
                        "import.row_malformed",
                        f"the row has {len(record)} cells, the header {len(names)}",
                    )
                ],
            )
            continue
        # Every CSV cell is text: an empty or blank cell is an absent value.
        yield _row_from_values(
            row_no,
            {k: v for k, v in zip(names, record, strict=True) if v.strip()},
            cleaned=True,
            text_checked=text_checked,
        )


def _parse_ndjson(text: str) -> Iterator[Row]:
    row_no = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        row_no += 1
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield Row(row_no, None, [Issue(row_no, None, "import.row_malformed", "the line is not JSON")])
            continue
        if not isinstance(value, dict):
            yield Row(
                row_no, None, [Issue(row_no, None, "import.row_malformed", "the line is not an object")]
            )
            continue
        yield _row_from_values(row_no, value)


def count_rows(payload: bytes, fmt: Format) -> int:
    """Records in a file (for progress), after the header check; cheap compared with parsing."""
    text = _decode(payload)
    if fmt == "csv":
        # The header read as parse() reads it: a bare carriage return ends a record there too (splitting on
        # "\n" alone left it inside the line, and csv refused it with an uncaught error: a 500).
        try:
            check_header(next(csv.reader(io.StringIO(text, newline=""))))
        except StopIteration:
            raise FileRejected("the file is empty", field="file", rule="import.empty") from None
        except csv.Error as exc:
            raise FileRejected(
                f"unreadable header: {exc}", field="file.header", rule="import.row_malformed"
            ) from exc
        return sum(1 for line in text.splitlines()[1:] if line.strip())
    return sum(1 for line in text.splitlines() if line.strip())


def group_families(rows: Sequence[Row]) -> list[FamilyGroup]:
    """Rows grouped by KK number in order of first appearance; a row without a KK number stands alone."""
    groups: dict[str, FamilyGroup] = {}
    for row in rows:
        kk = row.data.kk_number if row.data is not None else row.raw_kk
        key = digits(kk) if kk and kk.strip() else f"row:{row.row_no}"
        group = groups.get(key)
        if group is None:
            groups[key] = FamilyGroup(key, [row])
        else:
            group.rows.append(row)
    return list(groups.values())


def chunk(groups: Sequence[FamilyGroup], max_rows: int) -> list[list[FamilyGroup]]:
    """Whole families into chunks of about `max_rows` rows (deterministic: a resumed job sees the same)."""
    chunks: list[list[FamilyGroup]] = []
    current: list[FamilyGroup] = []
    size = 0
    for g in groups:
        if current and size + len(g.rows) > max_rows:
            chunks.append(current)
            current, size = [], 0
        current.append(g)
        size += len(g.rows)
    if current:
        chunks.append(current)
    return chunks


def consistency_issues(group: FamilyGroup) -> list[Issue]:
    """Every row of a family must repeat the same family facts as its first row."""
    rows = [r for r in group.rows if r.data is not None]
    if not rows:
        return []
    first = rows[0].data
    assert first is not None
    issues = []
    for r in rows[1:]:
        assert r.data is not None
        for col in FAMILY_FACTS:
            if getattr(r.data, col) != getattr(first, col):
                issues.append(
                    Issue(
                        r.row_no,
                        col,
                        "import.family_inconsistent",
                        f"{col} differs from the family's first row ({group.first_row})",
                    )
                )
    return issues


def empty_summary() -> dict[str, dict[str, int]]:
    """Counters of a job or chunk."""
    return {
        kind: {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
        for kind in ("rows", "families", "persons", "measurements", "kb_statuses", "pregnancies")
    } | {"issues": {"errors": 0, "flagged": 0}}


def add_summaries(a: dict[str, dict[str, int]], b: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    out = {k: dict(v) for k, v in a.items()}
    for kind, counts in b.items():
        for name, n in counts.items():
            out.setdefault(kind, {})[name] = out.get(kind, {}).get(name, 0) + n
    return out
