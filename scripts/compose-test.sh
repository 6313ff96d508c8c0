#!/usr/bin/env bash
# `make test-compose`: the Docker images and docker-compose.yml proven on this machine (issue 18).
#
# Usage: scripts/compose-test.sh [run|install|build|up|down]
#
#   install  what is missing, idempotently: Debian's docker.io (the engine) and dockerd started as root if no
#            daemon answers; the compose v2 CLI plugin built from the Go module proxy; the Python base image
#   build    the four service images from the Dockerfile (the classic builder: the `# syntax=` line would need a
#            frontend image from Docker Hub)
#   run      install, build, up, the end-to-end flows against the containers (tests/compose), down; the default
#   down     takes the stack down (containers, networks, volumes of the test project; the images stay cached)
#
# Two modes, chosen automatically (KENCANA_COMPOSE_MODE=full|host forces one):
#   full  the official postgres and apache/kafka images can be pulled: docker-compose.yml as users run it
#   host  they cannot (Docker Hub unreachable, as on the development machine): the application containers on the
#         host network, against the PostgreSQL and Kafka already running ($KENCANA_DATABASE_URL,
#         $KENCANA_KAFKA_BOOTSTRAP_SERVERS), through docker-compose.host.yml; their own databases
#         (compose_<service>_<checkout>) and topics (a per-run suffix), dropped at the end
#
# Every wait has a deadline. dockerd is stopped at the end if this script started it (KENCANA_COMPOSE_KEEP_DOCKERD=1
# keeps it); nothing else it starts outlives it. Heavy steps write to $STATE/*.log.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${KENCANA_COMPOSE_STATE_DIR:-$REPO/.local-compose}"
mkdir -p "$STATE"
COMPOSE_VERSION="${KENCANA_COMPOSE_VERSION:-v2.40.3}"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
# The base image built here from Debian's packages when Docker Hub cannot be reached (tag = cache key).
LOCAL_BASE="kencana-python-base:bookworm-3.11"
SUITE=bookworm
DEBIAN_MIRROR="${KENCANA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKERD_READY_TIMEOUT="${KENCANA_DOCKERD_READY_TIMEOUT:-60}"
PULL_TIMEOUT="${KENCANA_COMPOSE_PULL_TIMEOUT:-60}"
# `up --wait`: every container healthy within this many seconds. An idle machine needs about 2 minutes; when the
# 2-core development machine is shared by several test runs (load average 30+), an API needs minutes to import.
WAIT_TIMEOUT="${KENCANA_COMPOSE_WAIT_TIMEOUT:-600}"

log() { printf '[compose-test %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# --------------------------------------------------------------------------------------------- engine
engine_up() { timeout 10 docker info >/dev/null 2>&1; }

ensure_engine() {
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing Debian's docker.io (engine, containerd, runc)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >"$STATE/apt-docker.log" 2>&1 \
      || { as_root apt-get update -q >>"$STATE/apt-docker.log" 2>&1 \
           && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >>"$STATE/apt-docker.log" 2>&1; } \
      || die "apt-get install docker.io failed, see $STATE/apt-docker.log"
  fi
  if engine_up; then
    return 0
  fi
  # No init system here: dockerd runs as a background process of this script, its pid recorded so that `down`
  # stops exactly this one (never another engine by name).
  log "starting dockerd (log: $STATE/dockerd.log)"
  as_root bash -c "nohup dockerd --storage-driver=overlay2 >'$STATE/dockerd.log' 2>&1 & echo \$! >'$STATE/dockerd.pid'"
  local deadline=$((SECONDS + DOCKERD_READY_TIMEOUT))
  until engine_up; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -20 "$STATE/dockerd.log" >&2 || true
      die "dockerd not ready after ${DOCKERD_READY_TIMEOUT}s"
    fi
    sleep 1
  done
  log "dockerd ready ($(docker info --format '{{.ServerVersion}} {{.Driver}}'))"
}

stop_started_dockerd() {
  [ -s "$STATE/dockerd.pid" ] || return 0
  local pid
  pid="$(cat "$STATE/dockerd.pid")"
  if [ "${KENCANA_COMPOSE_KEEP_DOCKERD:-0}" = 1 ]; then
    log "leaving dockerd (pid $pid) running (KENCANA_COMPOSE_KEEP_DOCKERD=1)"
    return 0
  fi
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping the dockerd this script started (pid $pid)"
    as_root kill -TERM "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        log "dockerd did not stop in 30s, killing it"
        as_root kill -KILL "$pid" || true
        break
      fi
      sleep 1
    done
  fi
  rm -f "$STATE/dockerd.pid"
}

# --------------------------------------------------------------------------------------------- compose plugin
ensure_compose() {
  if docker compose version >/dev/null 2>&1; then
    return 0
  fi
  local cached="$STATE/cache/docker-compose-$COMPOSE_VERSION"
  if [ ! -x "$cached" ]; then
    [ -x "$GO" ] || die "Go is needed to build the compose plugin (GO=$GO)"
    log "building docker compose $COMPOSE_VERSION from the Go module proxy (log: $STATE/compose-build.log)"
    mkdir -p "$STATE/cache"
    local dir src
    dir="$(timeout 600 "$GO" mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" 2>"$STATE/compose-build.log" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [ -n "$dir" ] || die "go mod download failed, see $STATE/compose-build.log"
    # The module cache is read-only: build in a writable copy (a failed run's copy is removed first). Go's build
    # cache keeps what a run that hit the deadline compiled, so the next one finishes it.
    rm -rf "$STATE"/compose-src.*
    src="$(mktemp -d "$STATE/compose-src.XXXXXX")"
    cp -r "$dir/." "$src"
    chmod -R u+w "$src"
    (cd "$src" && CGO_ENABLED=0 timeout 1800 "$GO" build -trimpath \
        -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
        -o "$cached.tmp" ./cmd) >>"$STATE/compose-build.log" 2>&1 \
      || die "go build of compose failed, see $STATE/compose-build.log"
    rm -rf "$src"
    mv "$cached.tmp" "$cached"
  fi
  as_root mkdir -p "$PLUGIN_DIR"
  as_root install -m 0755 "$cached" "$PLUGIN_DIR/docker-compose"
  docker compose version >/dev/null || die "docker compose plugin does not run"
  log "compose plugin installed: $(docker compose version --short)"
}

# --------------------------------------------------------------------------------------------- base image
# Docker Hub reachable: the official images (full mode). Checked with a pull under a deadline.
hub_reachable() {
  timeout "$PULL_TIMEOUT" docker pull -q postgres:15 >/dev/null 2>&1 \
    && timeout "$PULL_TIMEOUT" docker pull -q apache/kafka:4.1.1 >/dev/null 2>&1
}

# A Python 3.11 root filesystem from Debian's own packages (the same interpreter as python:3.11-slim's major
# version), imported as an image. Cached by tag: built once per engine.
ensure_local_base() {
  if docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >"$STATE/apt-debootstrap.log" 2>&1 \
      || die "apt-get install debootstrap failed, see $STATE/apt-debootstrap.log"
  fi
  local root="$STATE/rootfs"
  as_root rm -rf "$root"
  log "debootstrap $SUITE minbase with python3 (log: $STATE/debootstrap.log)"
  as_root timeout 1200 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$root" "$DEBIAN_MIRROR" >"$STATE/debootstrap.log" 2>&1 \
    || die "debootstrap failed, see $STATE/debootstrap.log"
  # What python:3.11-slim offers: `python` on the PATH. What the image does not need: package lists, caches,
  # documentation, man pages and locales other than C (the services log in English, UTF-8 via C.UTF-8).
  as_root ln -sf python3 "$root/usr/bin/python"
  # This machine reaches PyPI through a TLS-inspecting proxy whose CA is in the host's trust store only: the base
  # image trusts what the host trusts (the host's bundle replaces Debian's), and pip is told where the bundle is.
  as_root cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  as_root rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/var/log/*.log "$root"/var/log/apt/*
  as_root tar -C "$root" -c . | docker import \
    -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    -c 'CMD ["python3"]' - "$LOCAL_BASE" >/dev/null
  as_root rm -rf "$root"
  log "base image $LOCAL_BASE: $(docker image inspect -f '{{.Size}}' "$LOCAL_BASE" | numfmt --to=si)B"
}

install_all() {
  ensure_engine
  ensure_compose
}

# --------------------------------------------------------------------------------------------- images
SERVICES=(registry uppka dashat reporting)
PROJECT="${KENCANA_COMPOSE_PROJECT:-kencana-compose-test}"
VENV_PY="$REPO/.venv/bin/python"

choose_mode() {
  case "${KENCANA_COMPOSE_MODE:-auto}" in
    full | host) echo "${KENCANA_COMPOSE_MODE}" ;;
    auto) if hub_reachable; then echo full; else echo host; fi ;;
    *) die "KENCANA_COMPOSE_MODE must be full, host or auto" ;;
  esac
}

build_images() {
  local base_args=()
  # full mode: the Dockerfile's default, python:3.11-slim pinned by digest; host mode: the local Debian base.
  if [ "$1" = host ]; then base_args=(--build-arg "PYTHON_IMAGE=$LOCAL_BASE"); fi
  : >"$STATE/build.log"
  local svc t0=$SECONDS
  for svc in "${SERVICES[@]}"; do
    log "building kencana-$svc:dev (log: $STATE/build.log)"
    # The classic builder (DOCKER_BUILDKIT=0) ignores the `# syntax=` line, whose frontend image lives on Docker
    # Hub. The build's own network is the host's: pip reaches PyPI without a bridge.
    DOCKER_BUILDKIT=0 timeout 1800 docker build --network host "${base_args[@]}" --target "$svc" \
      -t "kencana-$svc:dev" "$REPO" >>"$STATE/build.log" 2>&1 \
      || { tail -30 "$STATE/build.log" >&2; die "docker build --target $svc failed"; }
  done
  log "images built in $((SECONDS - t0))s"
  image_sizes
}

image_sizes() {
  local svc
  for svc in "${SERVICES[@]}"; do
    printf '%s %s\n' "kencana-$svc:dev" "$(docker image inspect -f '{{.Size}}' "kencana-$svc:dev" | numfmt --to=si)B"
  done | tee "$STATE/image-sizes.txt" >&2
}

# --------------------------------------------------------------------------------------------- stack
compose() {
  local files=(-f "$REPO/docker-compose.yml")
  if [ "$MODE" = host ]; then files+=(-f "$REPO/docker-compose.host.yml"); fi
  docker compose -p "$PROJECT" "${files[@]}" "$@"
}

free_ports() {
  python3 -c '
import socket
socks = [socket.socket() for _ in range(11)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))'
}

host_settings() {
  # The project's PostgreSQL and Kafka (the ones `make test` uses), the run's own databases and topics.
  local pg="${KENCANA_DATABASE_URL:-postgresql+asyncpg://kencana:kencana@127.0.0.1:5432}"
  local ports tag
  read -r -a ports <<<"$(free_ports)"
  read -r _ tag <<<"$("$VENV_PY" -m tests.compose.host names)"
  export KENCANA_HOST_PG_URL="${pg%/}" KENCANA_HOST_KAFKA="${KENCANA_KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}"
  # A secured host broker (issue 15): the containers authenticate as the test principal (the run's topics carry a
  # suffix no service's own ACLs name), from a copy of its password and the CA readable by the containers' group.
  local kafka_env
  kafka_env="$("$REPO/scripts/infra.sh" env kencana-test 2>/dev/null || true)"
  if [[ "$kafka_env" == *SASL_SSL* ]]; then
    eval "$kafka_env"
    local secrets="$REPO/.local-compose/kafka-secrets"
    mkdir -p "$secrets/passwords"
    cp "$KENCANA_KAFKA_SSL_CAFILE" "$secrets/ca.crt"
    printf '%s\n' "$KENCANA_KAFKA_SASL_PASSWORD" >"$secrets/passwords/kencana-test.password"
    chgrp -R 10001 "$secrets" && chmod -R u+rwX,g+rX,o-rwx "$secrets"
    export KENCANA_HOST_KAFKA="$KENCANA_KAFKA_BOOTSTRAP_SERVERS" KENCANA_HOST_KAFKA_SECURITY_PROTOCOL=SASL_SSL \
      KENCANA_HOST_KAFKA_SASL_USERNAME=kencana-test KENCANA_HOST_KAFKA_SECRETS="$secrets"
  fi
  export KENCANA_HOST_DB_PREFIX=compose_ KENCANA_HOST_DB_SUFFIX="$tag"
  export KENCANA_HOST_TOPIC_SUFFIX=".compose$(date +%s)"
  export KENCANA_HOST_REGISTRY_PORT="${ports[0]}" KENCANA_HOST_UPPKA_PORT="${ports[1]}" \
    KENCANA_HOST_DASHAT_PORT="${ports[2]}" KENCANA_HOST_REPORTING_PORT="${ports[3]}" \
    KENCANA_HOST_REGISTRY_RELAY_METRICS_PORT="${ports[4]}" KENCANA_HOST_UPPKA_RELAY_METRICS_PORT="${ports[5]}" \
    KENCANA_HOST_UPPKA_CONSUMER_METRICS_PORT="${ports[6]}" KENCANA_HOST_DASHAT_RELAY_METRICS_PORT="${ports[7]}" \
    KENCANA_HOST_DASHAT_CONSUMER_METRICS_PORT="${ports[8]}" \
    KENCANA_HOST_REPORTING_CONSUMER_METRICS_PORT="${ports[9]}" \
    KENCANA_HOST_REPORTING_RELAY_METRICS_PORT="${ports[10]}"
  export KENCANA_COMPOSE_REGISTRY_URL="http://127.0.0.1:${ports[0]}" \
    KENCANA_COMPOSE_UPPKA_URL="http://127.0.0.1:${ports[1]}" \
    KENCANA_COMPOSE_DASHAT_URL="http://127.0.0.1:${ports[2]}" \
    KENCANA_COMPOSE_REPORTING_URL="http://127.0.0.1:${ports[3]}"
  printf '%s\n' "$KENCANA_HOST_TOPIC_SUFFIX" >"$STATE/topic-suffix"
}

full_settings() {
  # docker-compose.yml as users run it: the APIs published on 127.0.0.1:8001-8004.
  export KENCANA_COMPOSE_REGISTRY_URL=http://127.0.0.1:8001 KENCANA_COMPOSE_UPPKA_URL=http://127.0.0.1:8002 \
    KENCANA_COMPOSE_DASHAT_URL=http://127.0.0.1:8003 KENCANA_COMPOSE_REPORTING_URL=http://127.0.0.1:8004
}

stack_down() {
  # Containers, the project's networks and volumes (the throw-away JWT keys, full mode's databases); the images
  # stay, so that the next run builds from cache.
  if docker compose version >/dev/null 2>&1 && engine_up; then
    compose down --volumes --remove-orphans --timeout 20 >>"$STATE/down.log" 2>&1 || log "compose down failed (see $STATE/down.log)"
  fi
  if [ "$MODE" = host ] && [ -s "$STATE/topic-suffix" ]; then
    timeout 180 "$VENV_PY" -m tests.compose.host drop "$(cat "$STATE/topic-suffix")" >&2 \
      || log "dropping the run's databases and topics failed"
    rm -f "$STATE/topic-suffix"
  fi
}

# `up --wait` fails as soon as one container is unhealthy. A container still starting when its start period ends
# (an API importing beside many other processes on a loaded machine) is unhealthy until its next probe passes, so
# `up --wait` is repeated until WAIT_TIMEOUT, unless a container exited or a one-shot step failed: those are real
# failures. The health of every container is asserted again by the tests.
stack_up() {
  local deadline=$((SECONDS + WAIT_TIMEOUT)) attempt=1 exited failed
  : >"$STATE/up.log"
  until compose up --detach --no-build --wait --wait-timeout "$((deadline - SECONDS))" >>"$STATE/up.log" 2>&1; do
    exited="$(compose ps --all --status exited --format '{{.Service}}' | grep -vxE 'keys|migrate|topics' || true)"
    failed="$(compose ps --all --status exited --format '{{.Service}} {{.ExitCode}}' \
      | awk '$1 ~ /^(keys|migrate|topics)$/ && $2 != 0 {print $1}')"
    if [ -n "$exited$failed" ] || [ "$SECONDS" -ge "$((deadline - 5))" ]; then
      tail -40 "$STATE/up.log" >&2
      compose ps --all >&2
      compose logs --no-color --tail 30 >&2
      die "compose up failed (exited: ${exited:-none}; failed steps: ${failed:-none})"
    fi
    log "up --wait attempt $attempt: $(grep -o 'container [^ ]* is unhealthy' "$STATE/up.log" | tail -1); waiting on"
    attempt=$((attempt + 1))
    sleep 5
  done
}

cleanup() {
  local rc=$?
  set +e
  if [ "${KENCANA_COMPOSE_KEEP_UP:-0}" = 1 ]; then
    log "stack left up (KENCANA_COMPOSE_KEEP_UP=1): $0 down"
  else
    stack_down
    stop_started_dockerd
  fi
  exit "$rc"
}

run() {
  local t0=$SECONDS
  install_all
  MODE="$(choose_mode)"
  export KENCANA_COMPOSE_MODE="$MODE"
  log "mode: $MODE"
  if [ "$MODE" = host ]; then ensure_local_base; fi
  build_images "$MODE"
  trap cleanup EXIT
  export KENCANA_COMPOSE_PROJECT="$PROJECT"
  export KENCANA_COMPOSE_FILES="$REPO/docker-compose.yml"
  if [ "$MODE" = host ]; then
    KENCANA_COMPOSE_FILES="$KENCANA_COMPOSE_FILES:$REPO/docker-compose.host.yml"
    host_settings
    "$VENV_PY" -m tests.compose.host create
  else
    full_settings
  fi
  compose down --volumes --remove-orphans --timeout 20 >"$STATE/down.log" 2>&1 || true  # a previous run's leftovers
  log "docker compose up --wait (log: $STATE/up.log)"
  local t_up=$SECONDS
  stack_up
  log "stack up and healthy in $((SECONDS - t_up))s"
  # The tests sign their tokens with the key pair the `keys` step generated for the services.
  rm -rf "$STATE/run" && mkdir -p "$STATE/run"
  compose cp keys:/var/lib/kencana/keys "$STATE/run/keys" >/dev/null
  local rc=0
  KENCANA_STATE_DIR="$STATE/run" timeout 1500 "$REPO/.venv/bin/pytest" -q -p no:cacheprovider \
    "$REPO/tests/deploy/test_compose.py" "$REPO/tests/compose" || rc=$?
  compose ps --all >"$STATE/ps.txt" 2>&1 || true
  compose logs --no-color --timestamps >"$STATE/containers.log" 2>&1 || true
  printf 'mode=%s seconds=%s pytest_rc=%s\n' "$MODE" "$((SECONDS - t0))" "$rc" | tee "$STATE/last-run.txt" >&2
  return "$rc"
}

MODE="${KENCANA_COMPOSE_MODE:-host}"
case "${1:-run}" in
  install)
    install_all
    if [ "$(choose_mode)" = host ]; then ensure_local_base; fi
    ;;
  build)
    install_all
    MODE="$(choose_mode)"
    if [ "$MODE" = host ]; then ensure_local_base; fi
    build_images "$MODE"
    ;;
  base)
    ensure_engine
    ensure_local_base
    ;;
  sizes) image_sizes ;;
  run) run ;;
  down)
    stack_down
    stop_started_dockerd
    ;;
  *) die "unknown command ${1:-}" ;;
esac
