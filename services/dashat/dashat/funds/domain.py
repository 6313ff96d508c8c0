"""Pure money rules of a kitchen ledger (integer rupiah)."""

from __future__ import annotations

from dataclasses import dataclass

BURN_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Sustainability:
    balance: int
    cost_per_portion: int | None
    burn_per_day: float
    runway_days: int | None


def sustainability(
    *, income: int, expenses: int, expenses_last_window: int, portions_served: int
) -> Sustainability:
    """Balance, cost per portion served (rounded rupiah) and runway at the last 30 days' burn.

    Runway is None when nothing was spent in the window (it would be infinite) and 0 when the money is gone.
    """
    balance = income - expenses
    cost = round(expenses / portions_served) if portions_served > 0 else None
    burn = expenses_last_window / BURN_WINDOW_DAYS
    runway = int(balance // burn) if burn > 0 else None
    return Sustainability(
        balance=balance, cost_per_portion=cost, burn_per_day=round(burn, 2), runway_days=runway
    )


def expense_allowed(balance: int, amount: int) -> bool:
    """A kitchen cannot spend money its ledger does not hold (the balance never goes negative)."""
    return amount <= balance
