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
#   run   up, the fault scenarios (`pytest -m faults` plus the given arguments), down, whatever happened
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KENCANA_FAULT_STATE_DIR="${KENCANA_FAULT_STATE_DIR:-$REPO/.local-faults}"
PG_PORT="${KENCANA_FAULT_PG_PORT:-5442}"
KAFKA_PORT="${KENCANA_FAULT_KAFKA_PORT:-9192}"

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
    shift
    infra up
    trap 'infra down || true' EXIT
    eval "$(exports)"
    "$REPO/.venv/bin/pytest" -q -s -p no:cacheprovider -m faults "$@"
    ;;
  *)
    echo "usage: $0 up|down|env|infra <infra.sh args>|run [pytest args]" >&2
    exit 2
    ;;
esac
