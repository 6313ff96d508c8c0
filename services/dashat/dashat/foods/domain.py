"""Pure nutrition arithmetic: a menu's nutrient totals and how they compare with per-category targets."""

from __future__ import annotations

from dataclasses import dataclass

NUTRIENTS = ("energy_kcal", "protein_g", "fat_g", "carbohydrate_g", "iron_mg")

TARGETS_VERSION = "dashat-portion-targets-2026.1"

# Targets for ONE supplementary portion (not the whole day's needs): roughly a third of the daily AKG 2019
# (Permenkes 28/2019) reference intake of the group, rounded. Configurable: the programme's nutritionist sets them.
PORTION_TARGETS: dict[str, dict[str, float]] = {
    "baduta_stunting": {"energy_kcal": 350, "protein_g": 8, "iron_mg": 2.5},
    "balita_stunting": {"energy_kcal": 450, "protein_g": 10, "iron_mg": 3},
    "ibu_hamil": {"energy_kcal": 700, "protein_g": 25, "iron_mg": 9},
    "ibu_menyusui": {"energy_kcal": 750, "protein_g": 25, "iron_mg": 3},
    "catin": {"energy_kcal": 650, "protein_g": 20, "iron_mg": 6},
}


@dataclass(frozen=True)
class FoodNutrients:
    """Nutrients per 100 g of a food."""

    energy_kcal: float
    protein_g: float
    fat_g: float
    carbohydrate_g: float
    iron_mg: float


def totals(items: list[tuple[FoodNutrients, float]]) -> dict[str, float]:
    """Sum of nutrients for (food, grams) pairs, rounded to one decimal."""
    out = dict.fromkeys(NUTRIENTS, 0.0)
    for food, grams in items:
        for n in NUTRIENTS:
            out[n] += getattr(food, n) * grams / 100.0
    return {n: round(v, 1) for n, v in out.items()}


def shortfalls(category: str, total: dict[str, float]) -> list[dict[str, object]]:
    """Warnings for each nutrient below the category's portion target."""
    warnings: list[dict[str, object]] = []
    for nutrient, target in PORTION_TARGETS.get(category, {}).items():
        have = total.get(nutrient, 0.0)
        if have < target:
            warnings.append(
                {
                    "nutrient": nutrient,
                    "target": target,
                    "actual": have,
                    "short_by": round(target - have, 1),
                    "message": f"{nutrient} {have} is below the {category} portion target {target}",
                }
            )
    return warnings
