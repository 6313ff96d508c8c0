#!/usr/bin/env bash
# Start/stop the Kencana services as local background processes (after `scripts/infra.sh up` and migrations).
#
# Usage: scripts/services.sh up|down|status
#
# For each service in registry uppka dashat reporting whose package exists (services/<svc>/<svc>/main.py):
#   api       .venv/bin/uvicorn <svc>.main:create_app --factory --no-server-header --host 127.0.0.1 --port <port>
#   relay     .venv/bin/python -m <svc>.relay      (only if <svc>/relay.py exists)
#   consumer  .venv/bin/python -m <svc>.consumer   (only if <svc>/consumer.py exists)
# Ports: registry 8001, uppka 8002, dashat 8003, reporting 8004. Pid files in <state>/run, logs in <state>/logs.
# The caller's environment (KENCANA_* settings) is passed through unchanged.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${KENCANA_STATE_DIR:-$REPO/.local}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
RUN="$STATE/run"
LOGS="$STATE/logs"
mkdir -p "$RUN" "$LOGS"

SERVICES=(registry uppka dashat reporting)
declare -A PORTS=([registry]=8001 [uppka]=8002 [dashat]=8003 [reporting]=8004)
HEALTH_TIMEOUT=60
STOP_TIMEOUT=20
VENV="$REPO/.venv"

log() { printf '[services] %s\n' "$*"; }
err() { printf '[services] ERROR: %s\n' "$*" >&2; }
now() { date +%s.%N; }
# Alive = signalable and not a zombie waiting to be reaped by whoever adopted it.
pid_alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true)"
  [[ "$state" != Z ]]
}

present_services() {
  local svc
  for svc in "${SERVICES[@]}"; do
    [[ -f "$REPO/services/$svc/$svc/main.py" ]] && printf '%s\n' "$svc"
  done
  return 0
}

# Processes of one service: "api", plus "relay" / "consumer" when their modules exist.
roles_of() {
  local svc="$1"
  printf 'api\n'
  [[ -f "$REPO/services/$svc/$svc/relay.py" ]] && printf 'relay\n'
  [[ -f "$REPO/services/$svc/$svc/consumer.py" ]] && printf 'consumer\n'
  return 0
}

pid_of() {
  local f="$RUN/$1.pid" pid
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  pid_alive "$pid" && printf '%s\n' "$pid"
  return 0
}

start_one() {
  local svc="$1" role="$2" name="$1-$2" pid
  pid="$(pid_of "$name")"
  if [[ -n "$pid" ]]; then
    log "$name already running (pid $pid)"
    return
  fi
  local cmd
  case "$role" in
    api) cmd=("$VENV/bin/uvicorn" "$svc.main:create_app" --factory --no-server-header --host 127.0.0.1 --port "${PORTS[$svc]}") ;;
    relay) cmd=("$VENV/bin/python" -m "$svc.relay") ;;
    consumer) cmd=("$VENV/bin/python" -m "$svc.consumer") ;;
  esac
  # Own session (setsid): the process outlives this shell, and `down` signals it alone.
  (
    cd "$REPO"
    export PYTHONPATH="$REPO/services/$svc:$REPO/cli:$REPO${PYTHONPATH:+:$PYTHONPATH}"
    # `kencana demo` seeds 5,000 families as one client, thousands of requests a minute: this local stack
    # gives each client a larger budget than the production defaults unless the caller set one
    # (docs/security.md, "Rate limits").
    local budget="${svc^^}_RATE_LIMIT_DEFAULT" search="${svc^^}_RATE_LIMIT_SEARCH"
    export "$budget=${!budget:-20000/minute}" "$search=${!search:-2000/minute}"
    # The service's own Kafka principal on the managed broker (<state>/kafka-secrets/<svc>.env, as
    # <SVC>_KAFKA_*); nothing when KENCANA_KAFKA_BOOTSTRAP_SERVERS names a Kafka of the caller's.
    local kafka_env
    kafka_env="$("$REPO/scripts/infra.sh" env "$svc")" || exit 1
    eval "${kafka_env//KENCANA_KAFKA_/${svc^^}_KAFKA_}"
    exec setsid "${cmd[@]}" >>"$LOGS/$name.log" 2>&1 </dev/null
  ) &
  printf '%s\n' "$!" >"$RUN/$name.pid"
  log "$name started (pid $!, log $LOGS/$name.log)"
}

wait_healthy() {
  local svc="$1" port="${PORTS[$1]}" deadline=$((SECONDS + HEALTH_TIMEOUT)) t0 code
  t0="$(now)"
  while true; do
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true)"
    if [[ "$code" == 200 ]]; then
      awk -v s="$svc" -v a="$t0" -v b="$(now)" 'BEGIN { printf "[services] %-10s healthy in %.2f s\n", s, b - a }'
      return 0
    fi
    if [[ -z "$(pid_of "$svc-api")" ]]; then
      err "$svc API exited during startup"
      tail -n 40 "$LOGS/$svc-api.log" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      err "$svc: http://127.0.0.1:$port/healthz did not answer 200 within ${HEALTH_TIMEOUT}s (last: ${code:-none})"
      tail -n 40 "$LOGS/$svc-api.log" >&2 || true
      return 1
    fi
    sleep 0.3
  done
}

stop_one() {
  local name="$1" pid
  pid="$(pid_of "$name")"
  if [[ -z "$pid" ]]; then
    rm -f "$RUN/$name.pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "$name (pid $pid) still running after ${STOP_TIMEOUT}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$RUN/$name.pid"
  log "$name stopped (pid $pid)"
}

cmd_up() {
  local svc role failed=0
  if [[ ! -x "$VENV/bin/uvicorn" ]]; then
    err "$VENV/bin/uvicorn missing: run 'make setup' first"
    exit 1
  fi
  mapfile -t svcs < <(present_services)
  if ((${#svcs[@]} == 0)); then
    log "no service package found (services/<svc>/<svc>/main.py); nothing to start"
    return
  fi
  for svc in "${svcs[@]}"; do
    while read -r role; do start_one "$svc" "$role"; done < <(roles_of "$svc")
  done
  for svc in "${svcs[@]}"; do
    wait_healthy "$svc" || failed=1
  done
  if ((failed)); then
    err "some services are not healthy (they are left running; see $LOGS; 'scripts/services.sh down' stops them)"
    exit 1
  fi
}

cmd_down() {
  local svc role f
  # Stop whatever has a pid file, including processes of services whose package has since disappeared.
  for svc in "${SERVICES[@]}"; do
    for role in relay consumer api; do
      [[ -f "$RUN/$svc-$role.pid" ]] && stop_one "$svc-$role"
    done
  done
  return 0
}

cmd_status() {
  local svc role pid rc=0 code
  for svc in "${SERVICES[@]}"; do
    if [[ ! -f "$REPO/services/$svc/$svc/main.py" ]]; then
      log "$svc: no package"
      continue
    fi
    while read -r role; do
      pid="$(pid_of "$svc-$role")"
      if [[ -n "$pid" ]]; then
        log "$svc-$role: running (pid $pid)"
      else
        log "$svc-$role: stopped"
        rc=1
      fi
    done < <(roles_of "$svc")
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:${PORTS[$svc]}/healthz" || true)"
    log "$svc: /healthz on port ${PORTS[$svc]} -> ${code:-no answer}"
  done
  return "$rc"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
