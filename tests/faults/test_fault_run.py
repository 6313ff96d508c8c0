"""The long fault run (`make test-slow`): a steady stream of writes through the public APIs while relays and
consumers are killed and restarted and the broker goes away; afterwards every accepted write must have had
its downstream effect exactly once, and nothing may be dead-lettered.

Figures (the table of EVENTS.md, "Figures a fault test reports") are printed and written to
bench/faults/mixed.json. Only correctness is asserted, never timings.

    KENCANA_FAULT_SECONDS  length of the write stream (default 100)
    KENCANA_FAULT_SEED     seed of the workload and the fault schedule (default 20261129)
    KENCANA_FAULT_RATE     API operations per second (default 4)
    KENCANA_INFRA_SCRIPT   the infra.sh that owns the running broker (default: this checkout's scripts/infra.sh)

Broker outages are skipped when KENCANA_KAFKA_BOOTSTRAP_SERVERS is set (a broker this project does not manage).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.faults import schedule
from tests.faults.harness import OWN_INFRA, Scenario, run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.integration, pytest.mark.kafka]

SECONDS = float(os.environ.get("KENCANA_FAULT_SECONDS", "100"))
SEED = int(os.environ.get("KENCANA_FAULT_SEED", "20261129"))
RATE = float(os.environ.get("KENCANA_FAULT_RATE", "4"))
# Only a broker this run may break is stopped: the fault scenarios' own, or the project's when no external one is
# configured; an external one (CI service, shared cluster) is left alone.
BROKER_FAULTS = OWN_INFRA or not os.environ.get("KENCANA_KAFKA_BOOTSTRAP_SERVERS")


@pytest.mark.timeout(int(SECONDS) + 600)
async def test_faults_lose_no_effect_and_duplicate_none(tmp_path: Path, kafka_bootstrap: str) -> None:
    scenario = Scenario(
        key="mixed",
        title="mixed process kills and broker outages",
        faults=schedule(SEED, SECONDS, broker=BROKER_FAULTS),
        seconds=SECONDS,
        rate=RATE,
        workers=4,
        seed=SEED,
    )
    await run_scenario(scenario, tmp_path, kafka_bootstrap)
