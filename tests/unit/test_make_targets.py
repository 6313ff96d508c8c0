"""Every `make` target that talks to the managed broker takes the client settings `scripts/infra.sh env` prints.

The broker the scripts start is secured (SASL/SCRAM over TLS) by default: a target that runs without them gets
"connection closed" on its first Kafka call on a fresh machine, whatever its own code does right.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Targets whose recipe reaches Kafka on this machine's managed broker (fault runs and compose bring their own).
TALKS_TO_THE_BROKER = ("test", "test-slow", "test-fuzz", "bench", "bench-scale", "demo")


def _recipes() -> dict[str, str]:
    recipes: dict[str, str] = {}
    target = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("\t") and target is not None:
            recipes[target] += line.strip() + "\n"
            continue
        match = re.match(r"^([A-Za-z][\w-]*):(?!=)", line)
        target = match.group(1) if match else None
        if target is not None:
            recipes[target] = ""
    return recipes


def test_targets_that_reach_the_broker_take_its_client_settings() -> None:
    recipes = _recipes()
    missing = [t for t in TALKS_TO_THE_BROKER if 'eval "$$(scripts/infra.sh env' not in recipes.get(t, "")]
    assert missing == []
