"""Versioned thresholds of the registry's derived facts (PUS, KRS, maternal and catin risk, stunting cases).

The domain text marks several of these as *configurable* (sources disagree). The values chosen are written here
once, with why; every derived value the registry stores or publishes is stamped with ``RULES_VERSION``, so a
later change of a threshold is a new version and old results stay explainable. Change a value => bump the version.
"""

from __future__ import annotations

from typing import Final

# 2026.2 (issue 11): baduta/balita in completed months (shared/ages), catin "too young" at the wedding, KB method
# plausibility (sex, from 10 years).
RULES_VERSION: Final = "registry-rules-2026.2"

# PUS: a married woman aged 15-49 (inclusive, completed years).
PUS_MIN_AGE: Final = 15
PUS_MAX_AGE: Final = 49

# Child age bands (baduta < 24, balita < 60 completed months) are defined once for every service in shared/ages.

# KB status: a method is recorded only from 10 completed years at `since`. WHO counts reproductive health from
# adolescence (10-19 years) and the registry takes pregnancies from a mother of 10; a method for a younger child
# is a data-entry error (an implant for a four-year-old, the IUD of a mistyped birth date).
KB_MIN_AGE: Final = 10

# Stunting case: non-flagged HAZ below this (WHO/Permenkes 2/2020 "pendek").
STUNTING_HAZ: Final = -2.0
SEVERE_STUNTING_HAZ: Final = -3.0

# Maternal risk. LiLA < 23.5 cm = KEK; pregnancy anaemia Hb < 11 g/dL, graded mild 10-<11, moderate 7-<10, severe <7.
KEK_LILA_CM: Final = 23.5
PREGNANCY_ANAEMIA_HB: Final = 11.0
PREGNANCY_ANAEMIA_MODERATE_HB: Final = 10.0
PREGNANCY_ANAEMIA_SEVERE_HB: Final = 7.0
# Naegele's rule: expected delivery = LMP + 280 days when not given.
GESTATION_DAYS: Final = 280
# A registered pregnancy's LMP may lie at most this far back (about 44 weeks).
MAX_PREGNANCY_DAYS: Final = 308

# Catin screening (configurable): WHO non-pregnant anaemia cut-offs (women Hb < 12, men < 13), BMI < 18.5
# underweight (kurus), LiLA < 23.5 KEK for brides. Screening should happen >= 3 months before the wedding.
CATIN_ANAEMIA_HB_WOMEN: Final = 12.0
CATIN_ANAEMIA_HB_MEN: Final = 13.0
CATIN_UNDERWEIGHT_BMI: Final = 18.5
CATIN_SCREENING_LEAD_DAYS: Final = 90
# A catin under 19 on the planned wedding day is too young: UU 16/2019 (amending UU 1/1974 on marriage) sets 19 as
# the minimum marriage age for both sexes. Judged at the wedding, the day that matters, so it does not age.
CATIN_MIN_AGE: Final = 19

# KRS "4 Terlalu" (configurable). Chosen: too young < 20; too old >= 35 (the wider BKKBN reading "35-40 and
# over", which treats every wife of 35+ as at risk); births too close < 24 months; too many children > 3.
WIFE_TOO_YOUNG_BELOW: Final = 20
WIFE_TOO_OLD_FROM: Final = 35
BIRTH_SPACING_MIN_MONTHS: Final = 24
TOO_MANY_CHILDREN_ABOVE: Final = 3

# Proper drinking-water sources and latrines (KRS); everything else counts as not proper.
PROPER_WATER_SOURCES: Final = frozenset({"kemasan", "isi_ulang", "ledeng", "sumur_bor", "sumur_terlindung"})
PROPER_LATRINES: Final = frozenset({"jamban_sendiri_septik", "jamban_bersama_septik"})

# Physiological ranges accepted for child measurements (outside: 422, not stored). Generous on purpose: a value
# inside these ranges but implausible for the child's age is stored flagged by the WHO z-score rules instead.
CHILD_LENHEI_CM: Final = (38.0, 130.0)
CHILD_WEIGHT_KG: Final = (0.9, 40.0)

# Stateless scoring endpoint: largest batch accepted in one request.
SCORE_BATCH_MAX: Final = 10_000
