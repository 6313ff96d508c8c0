"""API models of the ledger."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import Field

from dashat.kitchens.schemas import KitchenStatus
from shared.events.vocab import ExpenseCategory, FundSource
from shared.web.schemas import ApiDate, ApiInput, ApiOutput

# UPPKA contributions enter only from uppka's events, never by hand.
ManualFundSource = Literal["apbn_bokb", "apbd", "dana_desa", "csr", "community"]


class LedgerEntryCreate(ApiInput):
    kind: Literal["income", "expense"]
    source: ManualFundSource | None = Field(default=None, description="Required for income")
    category: ExpenseCategory | None = Field(default=None, description="Required for an expense")
    amount: int = Field(gt=0, le=10_000_000_000, description="Whole rupiah")
    entry_on: ApiDate
    note: str | None = Field(default=None, max_length=500)


class LedgerEntryRead(ApiOutput):
    id: uuid.UUID
    kitchen_id: uuid.UUID
    kind: str
    source: FundSource | None
    category: ExpenseCategory | None
    amount: int
    entry_on: date
    note: str | None
    contribution_id: uuid.UUID | None
    group_id: uuid.UUID | None


class KitchenSummary(ApiOutput):
    kitchen_id: uuid.UUID
    status: KitchenStatus
    capacity_per_day: int
    active_enrolments: int
    active_by_category: dict[str, int]
    waiting: int
    income_total: int
    expense_total: int
    income_by_source: dict[str, int]
    expense_by_category: dict[str, int]
    balance: int
    portions_delivered: int
    cost_per_portion: int | None
    burn_per_day_last_30: float
    runway_days: int | None
