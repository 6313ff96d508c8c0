#!/usr/bin/env bash
# The fault scenarios' own PostgreSQL and Kafka: a separate state folder and other ports, so that the scenarios
# may kill, stop and restart them without touching the servers anyone else uses (the default 5432/9092).
#
# Usage: scripts/faults.sh up|down|env|run [pytest args...]
#
#   up    start PostgreSQL on $KENCANA_FAULT_PG_PORT (5442) and Kafka on $KENCANA_FAULT_KAFKA_PORT (9192,
#         controller +1) with state under $KENCANA_FAULT_STATE_DIR (<repo>/.local-faults)
#   down  stop both
#   env   print the exports that point a shell (services, pytest, scripts/infra.sh) at them
#   run   up, the fault scenarios (`pytest -m faults` plus the given arguments; the single-node ones, then the
#         three-broker one with KAFKA_BROKERS=3), down, whatever happened
#   infra ARGS  scripts/infra.sh ARGS on these servers (KAFKA_BROKERS=3 for the cluster)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KENCANA_FAULT_STATE_DIR="${KENCANA_FAULT_STATE_DIR:-$REPO/.local-faults}"
PG_PORT="${KENCANA_FAULT_PG_PORT:-5442}"
KAFKA_PORT="${KENCANA_FAULT_KAFKA_PORT:-9192}"

# The fault scenarios measure crash and recovery, not authorisation: their own servers run PLAINTEXT unless
# the caller asks otherwise (the secured bus is what `make test` and `make demo` run).
export KENCANA_KAFKA_SECURITY="${KENCANA_KAFKA_SECURITY:-plaintext}"
if [[ "$KENCANA_KAFKA_SECURITY" == plaintext ]]; then
  unset KENCANA_KAFKA_SECURITY_PROTOCOL KENCANA_KAFKA_SASL_USERNAME KENCANA_KAFKA_SASL_PASSWORD KENCANA_KAFKA_SSL_CAFILE
fi
# A broker restarted on the busy shared machine (three JVMs, other engineers' tests) can take minutes.
export KENCANA_KAFKA_READY_TIMEOUT="${KENCANA_KAFKA_READY_TIMEOUT:-300}"

infra() {
  # Without the two URLs infra.sh manages (starts, kills) its own servers; with them it would only use them.
  env -u KENCANA_DATABASE_URL -u KENCANA_KAFKA_BOOTSTRAP_SERVERS \
    KENCANA_STATE_DIR="$KENCANA_FAULT_STATE_DIR" KENCANA_PG_PORT="$PG_PORT" KENCANA_KAFKA_PORT="$KAFKA_PORT" \
    KENCANA_KAFKA_CONTROLLER_PORT="$((KAFKA_PORT + 1))" "$REPO/scripts/infra.sh" "$@"
}

exports() {
  cat <<ENV
export KENCANA_FAULT_STATE_DIR=$KENCANA_FAULT_STATE_DIR
export KENCANA_FAULT_PG_PORT=$PG_PORT
export KENCANA_FAULT_KAFKA_PORT=$KAFKA_PORT
export KENCANA_DATABASE_URL=postgresql+asyncpg://kencana:kencana@127.0.0.1:$PG_PORT
export KENCANA_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT
ENV
}

case "${1:-}" in
  up) infra up ;;
  down) infra down ;;
  env) exports ;;
  infra)
    shift
    infra "$@"
    ;;
  run)
    # Two passes: the single-node scenarios, then scenario 10 on a three-broker KRaft cluster (same ports,
    # its own data under kafka-cluster/) with every service's topics on 3 replicas.
    shift
    trap 'infra down || true; KAFKA_BROKERS=3 infra stop-kafka || true' EXIT
    # A full run (no pytest arguments) starts from no figures, so the report shows this run's only; its start
    # and end go to run.json (the report's wall-clock time of the whole run, servers' start-up included).
    mkdir -p "$REPO/bench/faults"
    if [ "$#" -eq 0 ]; then rm -f "$REPO"/bench/faults/s*.json; fi
    started="$(date -u +%FT%T+00:00)"
    infra up
    eval "$(exports)"
    rc=0
    # tests/faults: the scenarios live there; collecting the whole suite for them cost a minute or two of a
    # loaded machine per pass.
    KAFKA_BROKERS=1 "$REPO/.venv/bin/pytest" -q -s -p no:cacheprovider -m faults "$@" tests/faults || rc=$?
    infra stop-kafka
    KAFKA_BROKERS=3 infra up
    brokers="127.0.0.1:$KAFKA_PORT,127.0.0.1:$((KAFKA_PORT + 2)),127.0.0.1:$((KAFKA_PORT + 4))"
    KAFKA_BROKERS=3 KENCANA_KAFKA_BOOTSTRAP_SERVERS="$brokers" REGISTRY_TOPIC_REPLICATION_FACTOR=3 \
      UPPKA_TOPIC_REPLICATION_FACTOR=3 DASHAT_TOPIC_REPLICATION_FACTOR=3 REPORTING_TOPIC_REPLICATION_FACTOR=3 \
      "$REPO/.venv/bin/pytest" -q -s -p no:cacheprovider -m faults "$@" tests/faults || rc=$?
    printf '{"started": "%s", "ended": "%s", "pytest_args": "%s", "exit_code": %d}\n' \
      "$started" "$(date -u +%FT%T+00:00)" "$*" "$rc" >"$REPO/bench/faults/run.json"
    exit "$rc"
    ;;
  *)
    echo "usage: $0 up|down|env|infra <infra.sh args>|run [pytest args]" >&2
    exit 2
    ;;
esac
