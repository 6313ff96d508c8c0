"""docker-compose.yml running: the end-to-end flows of tests/e2e against the containers' published APIs, then
every container healthy, the one-shot steps finished cleanly, and no personal data in any container's log.

Runs under `make test-compose` (scripts/compose-test.sh brings the stack up and takes it down); skipped elsewhere.
"""

from __future__ import annotations

import time

import pytest

import tests.e2e.test_flows as flows
from tests.compose.stack import ONE_SHOT, ComposeStack, long_running

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.kafka]

# The flows themselves, unchanged (tests/e2e/test_flows.py); this directory's conftest gives them the compose
# stack instead of local processes. Collected in this order (the restarts last), before the checks below that
# look back at them.
test_stunting_case_enrols_the_child_and_a_correction_withdraws_it = (
    flows.test_stunting_case_enrols_the_child_and_a_correction_withdraws_it
)
test_kb_status_change_reaches_the_uppka_member = flows.test_kb_status_change_reaches_the_uppka_member
test_uppka_contribution_reaches_the_dashat_ledger = flows.test_uppka_contribution_reaches_the_dashat_ledger
test_reporting_shows_the_flow_at_village_regency_and_province_level = (
    flows.test_reporting_shows_the_flow_at_village_regency_and_province_level
)
test_region_scope_holds_across_services = flows.test_region_scope_holds_across_services
test_a_consumer_and_a_relay_restarted_mid_flow_lose_nothing = (
    flows.test_a_consumer_and_a_relay_restarted_mid_flow_lose_nothing
)

# A container restarted by the flows above is `starting` until its first probe passes (interval 10-15 s); on a
# loaded host a probe can miss its deadline now and then, and the next passing one makes the container healthy.
HEALTHY_DEADLINE = 300


def test_every_container_is_healthy_and_every_step_finished(stack: ComposeStack) -> None:
    deadline = time.monotonic() + HEALTHY_DEADLINE
    while True:
        containers = stack.containers()
        health = {
            name: containers[name]["State"].get("Health", {}).get("Status", "no health check")
            if name in containers
            else "missing"
            for name in long_running()
        }
        unhealthy = {name: status for name, status in health.items() if status != "healthy"}
        if not unhealthy:
            break
        assert time.monotonic() < deadline, f"not healthy after {HEALTHY_DEADLINE}s: {unhealthy}"
        time.sleep(2)
    for name in long_running():
        state = containers[name]["State"]
        assert state["Running"] and state["Restarting"] is False, name
        # The image's user, not root: the Dockerfile's USER 10001:10001.
        assert containers[name]["Config"]["User"] == "10001:10001", name
    for name in ONE_SHOT:
        state = containers[name]["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 0, f"{name}: {state}"


def test_no_container_log_holds_the_personal_data_the_flows_sent(
    stack: ComposeStack, record_personal_data: dict[str, set[str]]
) -> None:
    sent = record_personal_data
    # The flows ran first (same session): if they sent nothing, this check would prove nothing.
    assert sent["nik"] and sent["name"] and sent["kk"], sent
    logs = stack.logs()
    assert len(logs.splitlines()) > 10, "the containers logged (the check reads real logs)"
    for kind, values in sent.items():
        leaked = sorted(value for value in values if value in logs)
        assert not leaked, f"{kind} in the container logs: {len(leaked)} of {len(values)}"
