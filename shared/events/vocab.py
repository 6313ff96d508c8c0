"""Shared vocabulary of the event contracts (the users' words, as closed sets)."""

from __future__ import annotations

from typing import Literal

Sex = Literal["L", "P"]
# `mal` (lactational amenorrhoea) is a modern method, `tradisional` (periodic abstinence, withdrawal) is not: BKKBN's
# mCPR needs them apart. `mal_tradisional` is the merged value of earlier events; it cannot be split after the fact,
# so it counts in CPR and never in mCPR, and the APIs no longer take it.
KbMethod = Literal[
    "iud", "implant", "mow", "mop", "suntik", "pil", "kondom", "mal", "tradisional", "mal_tradisional"
]
LEGACY_KB_METHODS: frozenset[str] = frozenset({"mal_tradisional"})
MKJP_METHODS: frozenset[str] = frozenset({"iud", "implant", "mow", "mop"})
MODERN_METHODS: frozenset[str] = frozenset({"mow", "mop", "iud", "implant", "suntik", "pil", "kondom", "mal"})
# The methods a husband uses: with these a couple is a KB participant through him (BKKBN counts per couple).
HUSBAND_METHODS: frozenset[str] = frozenset({"mop", "kondom"})
NonUseReason = Literal["hamil", "ingin_anak_segera", "iat", "tial"]
ServiceSource = Literal["pemerintah", "swasta"]
Relation = Literal[
    "kepala_keluarga",
    "istri",
    "suami",
    "anak",
    "menantu",
    "cucu",
    "orang_tua",
    "mertua",
    "famili_lain",
    "lainnya",
]
MaritalStatus = Literal["belum_kawin", "kawin", "cerai_hidup", "cerai_mati"]
HazClass = Literal["severely_stunted", "stunted", "normal", "tall"]
WhzClass = Literal[
    "severely_wasted", "wasted", "normal", "possible_risk_of_overweight", "overweight", "obese"
]
WazClass = Literal["severely_underweight", "underweight", "normal", "possible_growth_problem"]
Position = Literal["l", "h"]
UppkaCategory = Literal["remaja", "pus", "lansia", "lainnya"]
GroupStatus = Literal["active", "inactive", "dissolved"]
DashatCategory = Literal["catin", "ibu_hamil", "ibu_menyusui", "baduta_stunting", "balita_stunting"]
# `merged`: the enrolment of a duplicate record, ended when the registry merged it into the surviving person.
ExitReason = Literal[
    "completed", "recovered", "aged_out", "moved", "died", "refused", "retracted", "pregnancy_lost", "merged"
]
WaitlistReason = Literal["no_kitchen", "kitchen_full"]
FundSource = Literal["apbn_bokb", "apbd", "dana_desa", "csr", "community", "uppka_contribution"]
ExpenseCategory = Literal["ingredients", "fuel", "labour", "equipment", "other"]
