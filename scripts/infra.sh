#!/usr/bin/env bash
# Local infrastructure for Kencana: a project PostgreSQL cluster and a single-node Apache Kafka (KRaft) broker,
# both on loopback, with all state under $KENCANA_STATE_DIR (default <repo>/.local, git-ignored).
#
# Usage: scripts/infra.sh up|down|status|topics|stop-kafka|start-kafka|restart-kafka|kill-kafka|kill-kafka-node N|stop-pg [fast|immediate]|start-pg
#
#   KENCANA_STATE_DIR               state folder (pg data, kafka data + jars, logs, pid files)
#   KENCANA_DATABASE_URL            use this PostgreSQL server as-is: install/start nothing, only create the
#                                   service databases through it when missing
#   KENCANA_KAFKA_BOOTSTRAP_SERVERS use this Kafka as-is: nothing is installed or started for Kafka
#   KENCANA_PG_PORT                 port of the project PostgreSQL (default 5432)
#   KENCANA_KAFKA_PORT              broker port (default 9092)
#   KENCANA_KAFKA_CONTROLLER_PORT   KRaft controller port (default: broker port + 1)
#
# The ports let a second, separate set of servers run next to the usual one (the fault scenarios start their own
# in their own state folder, on 5442/9192, so that killing them never touches the servers everyone else uses).
# PostgreSQL 127.0.0.1:5432 (role kencana / password kencana, databases registry uppka dashat reporting),
# Kafka 127.0.0.1:9092 (controller 127.0.0.1:9093). Every phase prints its duration; `up` is idempotent and fast
# when everything already runs. `topics` creates the event and dead-letter topics with their retention (the
# broker's own default deletes after 7 days) on the Kafka in use; `up` runs it for the broker it manages.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${KENCANA_STATE_DIR:-$REPO/.local}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
RUN="$STATE/run"
LOGS="$STATE/logs"
mkdir -p "$RUN" "$LOGS"

PG_PORT="${KENCANA_PG_PORT:-5432}"
PG_USER=kencana
PG_PASSWORD=kencana
DATABASES=(registry uppka dashat reporting)
PG_READY_TIMEOUT=60

KAFKA_PORT="${KENCANA_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KENCANA_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
# KAFKA_BROKERS=3: a KRaft cluster of three combined broker/controller nodes on loopback instead of the single
# node (node n on broker port KAFKA_PORT + 2(n-1), controller port + 1; data under <state>/kafka-cluster), with
# replication factor 3 and min.insync.replicas=2 for every topic. The single node keeps its paths and ports.
KAFKA_BROKERS="${KAFKA_BROKERS:-1}"
KAFKA_BASE_PORT="$KAFKA_PORT"
KAFKA_DIR="$STATE/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PID="$RUN/kafka.pid"
KAFKA_LOG="$LOGS/kafka.log"      # written by log4j2 (infra/kafka/log4j2.properties)
KAFKA_OUT="$LOGS/kafka.out"      # stdout/stderr of the JVM (startup errors land here)
KAFKA_LOGS_DIR="$LOGS"
KAFKA_NODE=1
KAFKA_POM="$REPO/infra/kafka/pom.xml"
KAFKA_READY_TIMEOUT="${KENCANA_KAFKA_READY_TIMEOUT:-120}"
KAFKA_STOP_TIMEOUT=30

export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------------------------------------------- helpers
log() { printf '[infra] %s\n' "$*"; }
err() { printf '[infra] ERROR: %s\n' "$*" >&2; }
now() { date +%s.%N; }
# phase NAME CMD...: run CMD, print how long it took.
phase() {
  local name="$1" t0 t1
  shift
  t0="$(now)"
  "$@"
  t1="$(now)"
  awk -v n="$name" -v a="$t0" -v b="$t1" 'BEGIN { printf "[infra] %-22s %6.2f s\n", n, b - a }'
}
# tail_log FILE...: show the end of logs after a failure.
tail_log() {
  local f
  for f in "$@"; do
    if [[ -r "$f" ]]; then
      printf -- '----- last lines of %s -----\n' "$f" >&2
      tail -n 40 "$f" >&2 || true
    fi
  done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Alive = signalable and not a zombie waiting to be reaped by whoever adopted it.
pid_alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true)"
  [[ "$state" != Z ]]
}
apt_install() {
  log "installing with apt-get: $*"
  apt-get update -q >/dev/null
  apt-get install -y -q "$@" >/dev/null
}
short_hash() { printf '%s' "$1" | sha256sum | cut -c1-10; }

# Serialise concurrent invocations (two `make` runs at once). Daemons are started with 9>&- so they do not
# inherit (and keep holding) the lock.
exec 9>"$RUN/infra.lock"
if ! flock -w 300 9; then
  err "another scripts/infra.sh holds $RUN/infra.lock for more than 300 s"
  exit 1
fi

# ------------------------------------------------------------------------------------------------- PostgreSQL
external_pg() { [[ -n "${KENCANA_DATABASE_URL:-}" ]]; }

pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [[ -n "$d" && -x "$d/postgres" ]] && printf '%s\n' "$d"
}

# Where the cluster lives. The `postgres` OS user must be able to traverse every parent of its data directory;
# when it cannot reach the state folder (for instance a repo under /root), the cluster goes to
# /var/tmp/kencana-<hash of the state folder>/pg instead, and $STATE/pg.location records where.
pg_root() {
  if [[ -f "$STATE/pg.location" ]]; then
    cat "$STATE/pg.location"
    return
  fi
  local root="$STATE/pg"
  if id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
    root="/var/tmp/kencana-$(short_hash "$STATE")/pg"
  fi
  printf '%s\n' "$root"
}

pg_set_paths() {
  PG_ROOT="$(pg_root)"
  PGDATA_DIR="$PG_ROOT/data"
  PG_LOG="$PG_ROOT/postgresql.log"
  PG_SOCKDIR="$PG_ROOT/sock"
  # A Unix socket path is limited to 107 bytes; fall back to a short directory for deep state folders.
  if (( ${#PG_SOCKDIR} > 90 )); then
    PG_SOCKDIR="/var/tmp/kencana-$(short_hash "$STATE")-sock"
  fi
}

pg_ctl_as() { runuser -u postgres -- "$PG_BIN/pg_ctl" "$@"; }

pg_running() { [[ -f "$PGDATA_DIR/PG_VERSION" ]] && pg_ctl_as -D "$PGDATA_DIR" status >/dev/null 2>&1; }

pg_install() {
  if [[ -z "$(pg_bindir)" ]]; then
    apt_install postgresql
  fi
  PG_BIN="$(pg_bindir)"
  if [[ -z "$PG_BIN" ]]; then
    err "no /usr/lib/postgresql/*/bin/postgres after installing postgresql"
    exit 1
  fi
}

pg_init() {
  pg_set_paths
  if [[ "$PG_ROOT" != "$STATE/pg" ]]; then
    log "postgres cannot traverse $STATE; PostgreSQL cluster lives in $PG_ROOT"
  fi
  mkdir -p "$PG_ROOT" "$PG_SOCKDIR"
  printf '%s\n' "$PG_ROOT" >"$STATE/pg.location"
  chown postgres:postgres "$PG_ROOT" "$PG_SOCKDIR"
  chmod 700 "$PG_ROOT"
  if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then
    return
  fi
  # Superuser `postgres` logs in by peer authentication over the socket; TCP (127.0.0.1 / ::1 only, see
  # listen_addresses) needs a SCRAM password. initdb insists on a superuser password for that: a random one,
  # thrown away (the project role below is what clients use).
  local pwfile="$PG_ROOT/.initdb-pw"
  head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$pwfile"
  chown postgres:postgres "$pwfile"
  chmod 600 "$pwfile"
  if ! runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --pwfile="$pwfile" \
    --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log" 2>&1; then
    rm -f "$pwfile"
    err "initdb failed"
    tail_log "$LOGS/initdb.log"
    exit 1
  fi
  rm -f "$pwfile"
}

# Debian's own cluster (created by the postgresql package) also wants port 5432.
pg_stop_debian_default() {
  local ver name port status
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  while read -r ver name port status _; do
    if [[ "$port" == "$PG_PORT" && "$status" == online* ]]; then
      log "stopping Debian's cluster $ver/$name, which holds port $PG_PORT"
      pg_ctlcluster "$ver" "$name" stop
    fi
  done < <(pg_lsclusters -h 2>/dev/null || true)
}

pg_start() {
  if pg_running; then
    return
  fi
  pg_stop_debian_default
  if port_open "$PG_PORT"; then
    err "port $PG_PORT is taken by something that is not this project's cluster ($PGDATA_DIR)"
    exit 1
  fi
  # fsync/synchronous_commit/full_page_writes off: fast for development and tests, NOT crash-safe.
  # A crashed machine may lose or corrupt this throwaway cluster; never use these settings for real data.
  if ! pg_ctl_as -D "$PGDATA_DIR" -l "$PG_LOG" -w -t "$PG_READY_TIMEOUT" start \
    -o "-p $PG_PORT -k $PG_SOCKDIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >"$LOGS/pg_ctl.log" 2>&1 9>&-; then
    err "PostgreSQL did not start"
    tail_log "$LOGS/pg_ctl.log" "$PG_LOG"
    exit 1
  fi
}

pg_wait_ready() {
  local deadline=$((SECONDS + PG_READY_TIMEOUT))
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
    if ((SECONDS >= deadline)); then
      err "PostgreSQL not ready on 127.0.0.1:$PG_PORT after ${PG_READY_TIMEOUT}s"
      tail_log "$PG_LOG"
      exit 1
    fi
    sleep 0.2
  done
}

pg_psql_local() { runuser -u postgres -- "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKDIR" -p "$PG_PORT" -d postgres "$@"; }

create_dbs_sql() {
  local owner="$1" db
  for db in "${DATABASES[@]}"; do
    printf "SELECT 'CREATE DATABASE %s%s' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '%s')\\\\gexec\n" \
      "$db" "${owner:+ OWNER $owner}" "$db"
  done
}

pg_bootstrap() {
  {
    # SUPERUSER: the test suite creates and drops its own databases.
    cat <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
  END IF;
END
\$\$;
SQL
    create_dbs_sql "$PG_USER"
  } | pg_psql_local -f - >"$LOGS/pg_bootstrap.log" 2>&1 || {
    err "creating role/databases failed"
    tail_log "$LOGS/pg_bootstrap.log"
    exit 1
  }
}

# KENCANA_DATABASE_URL may be a SQLAlchemy URL (postgresql+asyncpg://...). Connect to its `postgres` maintenance
# database with psql and create the service databases when missing.
pg_external() {
  local url="$KENCANA_DATABASE_URL"
  url="$(printf '%s' "$url" | sed -E 's#^postgres(ql)?(\+[A-Za-z0-9_]+)?://#postgresql://#')"
  url="$(printf '%s' "$url" | sed -E 's#^(postgresql://[^/?]*)(/[^?]*)?#\1/postgres#')"
  if ! command -v psql >/dev/null 2>&1; then
    apt_install postgresql-client
  fi
  local deadline=$((SECONDS + PG_READY_TIMEOUT))
  until psql -X -q -d "$url" -c 'SELECT 1' >/dev/null 2>"$LOGS/pg_external.log"; do
    if ((SECONDS >= deadline)); then
      err "external PostgreSQL (KENCANA_DATABASE_URL) not reachable after ${PG_READY_TIMEOUT}s"
      tail_log "$LOGS/pg_external.log"
      exit 1
    fi
    sleep 1
  done
  create_dbs_sql "" | psql -X -q -v ON_ERROR_STOP=1 -d "$url" -f - >"$LOGS/pg_bootstrap.log" 2>&1 || {
    err "creating databases through KENCANA_DATABASE_URL failed"
    tail_log "$LOGS/pg_bootstrap.log"
    exit 1
  }
}

pg_up() {
  if external_pg; then
    log "KENCANA_DATABASE_URL is set: using that PostgreSQL as-is"
    phase "pg external dbs" pg_external
    return
  fi
  phase "pg install" pg_install
  phase "pg initdb" pg_init
  phase "pg start" pg_start
  phase "pg ready" pg_wait_ready
  phase "pg role+databases" pg_bootstrap
}

pg_down() {
  external_pg && return 0
  PG_BIN="$(pg_bindir || true)"
  [[ -n "$PG_BIN" ]] || return 0
  pg_set_paths
  if pg_running; then
    pg_ctl_as -D "$PGDATA_DIR" -m fast -w -t 60 stop >>"$LOGS/pg_ctl.log" 2>&1 || {
      err "pg_ctl stop failed"
      tail_log "$LOGS/pg_ctl.log" "$PG_LOG"
      return 1
    }
    log "PostgreSQL stopped"
  fi
}

# stop-pg MODE: PostgreSQL shut down with pg_ctl's mode (fast: sessions ended cleanly; immediate: no checkpoint,
# crash recovery at the next start). For the fault scenarios' own cluster.
pg_stop_mode() {
  local mode="$1"
  PG_BIN="$(pg_bindir)"
  pg_set_paths
  pg_running || return 0
  pg_ctl_as -D "$PGDATA_DIR" -m "$mode" -w -t 60 stop >>"$LOGS/pg_ctl.log" 2>&1 || {
    err "pg_ctl stop -m $mode failed"
    tail_log "$LOGS/pg_ctl.log" "$PG_LOG"
    return 1
  }
  log "PostgreSQL stopped ($mode)"
}

pg_status() {
  if external_pg; then
    log "postgres: external (KENCANA_DATABASE_URL)"
    return 0
  fi
  PG_BIN="$(pg_bindir || true)"
  if [[ -z "$PG_BIN" ]]; then
    log "postgres: not installed"
    return 1
  fi
  pg_set_paths
  if pg_running && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    log "postgres: running on 127.0.0.1:$PG_PORT (data $PGDATA_DIR, log $PG_LOG)"
    return 0
  fi
  log "postgres: stopped (data $PGDATA_DIR)"
  return 1
}

# ------------------------------------------------------------------------------------------------------ Kafka
external_kafka() { [[ -n "${KENCANA_KAFKA_BOOTSTRAP_SERVERS:-}" ]]; }

kafka_classpath() { printf '%s/*' "$KAFKA_LIBS"; }

# kafka_node N: point the per-node variables at node N (of a cluster; the single node keeps the usual paths).
kafka_node() {
  KAFKA_NODE="$1"
  if ((KAFKA_BROKERS == 1)); then
    return
  fi
  local dir="$STATE/kafka-cluster/node$1"
  KAFKA_DATA="$dir/data"
  KAFKA_PROPS="$dir/server.properties"
  KAFKA_PID="$RUN/kafka-cluster-$1.pid"
  KAFKA_LOGS_DIR="$LOGS/kafka-$1"
  KAFKA_LOG="$KAFKA_LOGS_DIR/kafka.log"
  KAFKA_OUT="$LOGS/kafka-$1.out"
  KAFKA_PORT=$((KAFKA_BASE_PORT + 2 * ($1 - 1)))
  KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
  mkdir -p "$dir" "$KAFKA_LOGS_DIR"
}

# each_node CMD...: CMD once per node (with that node selected); stops at the first failure.
each_node() {
  local n
  for ((n = 1; n <= KAFKA_BROKERS; n++)); do
    kafka_node "$n"
    "$@" || return
  done
}

kafka_voters() {
  local n out=""
  for ((n = 1; n <= KAFKA_BROKERS; n++)); do
    out+="${out:+,}$n@127.0.0.1:$((KAFKA_BASE_PORT + 2 * (n - 1) + 1))"
  done
  printf '%s' "$out"
}

kafka_pid() {
  local pid=""
  [[ -f "$KAFKA_PID" ]] && pid="$(cat "$KAFKA_PID")"
  # Guard against a recycled pid: it must be this project's broker.
  if pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $KAFKA_PROPS"; then
    printf '%s\n' "$pid"
  fi
}

kafka_install() {
  local missing=()
  command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  if ((${#missing[@]})); then
    apt_install "${missing[@]}"
  fi
}

# Fetch the broker jars only when infra/kafka/pom.xml changed since the last fetch (warm runs skip Maven).
kafka_fetch() {
  local sum stamp="$KAFKA_DIR/libs.sha256"
  sum="$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
  if [[ -d "$KAFKA_LIBS" && -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
    return
  fi
  log "fetching Kafka jars with Maven (pom changed or first run)"
  mkdir -p "$KAFKA_DIR"
  rm -rf "$KAFKA_LIBS.tmp"
  if ! mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS.tmp" \
    >"$LOGS/maven.log" 2>&1; then
    err "mvn dependency:copy-dependencies failed"
    tail_log "$LOGS/maven.log"
    exit 1
  fi
  rm -rf "$KAFKA_LIBS"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
  printf '%s\n' "$sum" >"$stamp"
}

kafka_render_props() {
  local tmp="$KAFKA_PROPS.tmp"
  sed -e "s#@KAFKA_DATA_DIR@#$KAFKA_DATA#g" -e "s#127.0.0.1:9092#127.0.0.1:$KAFKA_PORT#g" \
    -e "s#127.0.0.1:9093#127.0.0.1:$KAFKA_CONTROLLER_PORT#g" "$REPO/infra/kafka/server.properties.in" >"$tmp"
  if ((KAFKA_BROKERS > 1)); then
    # Static quorum of every node; internal and new topics on 3 replicas, a write needs 2 in sync (acks=all).
    sed -i -e "s#^node.id=.*#node.id=$KAFKA_NODE#" \
      -e "s#^controller.quorum.bootstrap.servers=.*#controller.quorum.voters=$(kafka_voters)#" \
      -e "s#^\(offsets.topic.replication.factor\|transaction.state.log.replication.factor\|share.coordinator.state.topic.replication.factor\|default.replication.factor\)=.*#\1=3#" \
      -e "s#^\(transaction.state.log.min.isr\|share.coordinator.state.topic.min.isr\|min.insync.replicas\)=.*#\1=2#" \
      "$tmp"
  fi
  mv "$tmp" "$KAFKA_PROPS"
}

kafka_format() {
  kafka_render_props
  if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
    return
  fi
  local cluster_id quorum=(--standalone)
  if ((KAFKA_BROKERS > 1)); then
    # One cluster id for every node; the voters are static (controller.quorum.voters), so no --standalone.
    quorum=()
    local id_file="$STATE/kafka-cluster/cluster.id"
    if [[ ! -s "$id_file" ]]; then
      java -cp "$(kafka_classpath)" kafka.tools.StorageTool random-uuid >"$id_file" 2>"$LOGS/kafka-format.log"
    fi
    cluster_id="$(cat "$id_file")"
  else
    cluster_id="$(java -cp "$(kafka_classpath)" kafka.tools.StorageTool random-uuid 2>"$LOGS/kafka-format.log")"
  fi
  if ! java -cp "$(kafka_classpath)" -Dlog4j2.configurationFile="$REPO/infra/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$KAFKA_LOGS_DIR" kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_PROPS" \
    "${quorum[@]}" >>"$LOGS/kafka-format.log" 2>&1; then
    err "formatting Kafka storage failed"
    tail_log "$LOGS/kafka-format.log"
    exit 1
  fi
}

kafka_start() {
  local pid
  pid="$(kafka_pid)"
  if [[ -n "$pid" ]]; then
    return # running (readiness is checked next)
  fi
  if port_open "$KAFKA_PORT"; then
    err "port $KAFKA_PORT is taken by something that is not this project's broker"
    exit 1
  fi
  rm -f "$KAFKA_PID"
  # setsid: the broker outlives this shell and is not hit by signals sent to the caller's process group.
  setsid nohup java -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$REPO/infra/kafka/log4j2.properties" -Dkafka.logs.dir="$KAFKA_LOGS_DIR" \
    -cp "$(kafka_classpath)" kafka.Kafka "$KAFKA_PROPS" >"$KAFKA_OUT" 2>&1 </dev/null 9>&- &
  printf '%s\n' "$!" >"$KAFKA_PID"
  log "Kafka node $KAFKA_NODE started (pid $!, port $KAFKA_PORT)"
}

# One metadata round-trip with the project venv's aiokafka.
AIOKAFKA_PROBE='
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient
async def main() -> None:
    client = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    await client.start()
    try:
        await client.list_topics()
    finally:
        await client.close()
asyncio.run(asyncio.wait_for(main(), 10))
'

kafka_probe() {
  if [[ -x "$REPO/.venv/bin/python" ]] && "$REPO/.venv/bin/python" -c 'import aiokafka' >/dev/null 2>&1; then
    "$REPO/.venv/bin/python" -c "$AIOKAFKA_PROBE" "127.0.0.1:$KAFKA_PORT" >"$LOGS/kafka-probe.log" 2>&1
  else
    timeout 30 java -cp "$(kafka_classpath)" -Dlog4j2.configurationFile="$REPO/infra/kafka/log4j2.properties" \
      -Dkafka.logs.dir="$LOGS" org.apache.kafka.tools.TopicCommand \
      --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >"$LOGS/kafka-probe.log" 2>&1
  fi
}

kafka_wait_ready() {
  local deadline=$((SECONDS + KAFKA_READY_TIMEOUT)) pid
  pid="$(kafka_pid)"
  while true; do
    if port_open "$KAFKA_PORT" && kafka_probe; then
      return
    fi
    if [[ -z "$(kafka_pid)" ]]; then
      err "Kafka (pid ${pid:-?}) exited during startup"
      tail_log "$KAFKA_OUT" "$KAFKA_LOG"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      err "Kafka did not answer a metadata request on 127.0.0.1:$KAFKA_PORT within ${KAFKA_READY_TIMEOUT}s"
      tail_log "$LOGS/kafka-probe.log" "$KAFKA_OUT" "$KAFKA_LOG"
      exit 1
    fi
    sleep 0.5
  done
}

kafka_stop() {
  local pid
  pid="$(kafka_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$KAFKA_PID"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "Kafka (pid $pid) still running after ${KAFKA_STOP_TIMEOUT}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$KAFKA_PID"
  log "Kafka stopped (pid $pid)"
}

# A crash, not a shutdown: SIGKILL, no controlled shutdown, no flush (the fault scenarios' broker crash).
kafka_kill() {
  local pid
  pid="$(kafka_pid)"
  if [[ -z "$pid" ]]; then
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while pid_alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.1
  done
  rm -f "$KAFKA_PID"
  log "Kafka killed (pid $pid)"
}

kafka_node_running() { [[ -n "$(kafka_pid)" ]] && port_open "$KAFKA_PORT"; }

kafka_up() {
  if external_kafka; then
    log "KENCANA_KAFKA_BOOTSTRAP_SERVERS is set: using that Kafka as-is"
    return
  fi
  if each_node kafka_node_running; then
    phase "kafka ready" each_node kafka_wait_ready
    return
  fi
  phase "kafka install" kafka_install
  phase "kafka fetch jars" kafka_fetch
  phase "kafka format" each_node kafka_format
  phase "kafka start" each_node kafka_start
  phase "kafka ready" each_node kafka_wait_ready
}

kafka_status() {
  if external_kafka; then
    log "kafka: external ($KENCANA_KAFKA_BOOTSTRAP_SERVERS)"
    return 0
  fi
  local rc=0
  each_node kafka_node_status || rc=1
  return "$rc"
}

kafka_node_status() {
  local pid
  pid="$(kafka_pid)"
  if [[ -n "$pid" ]] && port_open "$KAFKA_PORT"; then
    log "kafka node $KAFKA_NODE: running on 127.0.0.1:$KAFKA_PORT (pid $pid, log $KAFKA_LOG)"
    return 0
  fi
  if [[ -n "$pid" ]]; then
    log "kafka: starting (pid $pid, port $KAFKA_PORT not open yet)"
  else
    log "kafka: stopped"
  fi
  return 1
}

# The event topics keep every event: their settings are declared once, in shared/topics.py, and applied by
# `kencana topics repair` (creates what is missing, sets the retention of what exists; KENCANA_TOPIC_SUFFIX and
# KENCANA_TOPIC_PARTITIONS / _REPLICATION_FACTOR are read by it).
kafka_topics() {
  if [[ ! -x "$REPO/.venv/bin/python" ]]; then
    log "no .venv yet (make setup): the services create the topics with the same settings when they start"
    return
  fi
  # python -m: the same command as `kencana topics repair` without loading every service's CLI (warm runs stay fast)
  if ! "$REPO/.venv/bin/python" -m kencana_cli.topics repair \
    --bootstrap-servers "${KENCANA_KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}" >"$LOGS/kafka-topics.log" 2>&1; then
    err "creating the Kafka topics failed"
    tail_log "$LOGS/kafka-topics.log"
    exit 1
  fi
}

require_managed_pg() {
  if external_pg; then
    err "KENCANA_DATABASE_URL is set: PostgreSQL is not managed by this script"
    exit 3
  fi
}

require_managed_kafka() {
  if external_kafka; then
    err "KENCANA_KAFKA_BOOTSTRAP_SERVERS is set: Kafka is not managed by this script"
    exit 3
  fi
}

# ------------------------------------------------------------------------------------------------------- main
usage() {
  echo "usage: $0 up|down|status|topics|stop-kafka|start-kafka|restart-kafka|kill-kafka|kill-kafka-node N|stop-pg [fast|immediate]|start-pg" >&2
  exit 2
}

cmd="${1:-}"
case "$cmd" in
  up)
    t0="$(now)"
    log "state folder: $STATE"
    pg_up
    kafka_up
    external_kafka || phase "kafka topics" kafka_topics
    awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "[infra] %-22s %6.2f s\n", "up (total)", b - a }'
    ;;
  down)
    rc=0
    phase "kafka stop" each_node kafka_stop || rc=1
    phase "pg stop" pg_down || rc=1
    exit "$rc"
    ;;
  status)
    rc=0
    pg_status || rc=1
    kafka_status || rc=1
    exit "$rc"
    ;;
  topics)
    phase "kafka topics" kafka_topics
    ;;
  stop-kafka)
    require_managed_kafka
    phase "kafka stop" each_node kafka_stop
    ;;
  start-kafka)
    require_managed_kafka
    kafka_up
    ;;
  stop-pg)
    require_managed_pg
    phase "pg stop" pg_stop_mode "${2:-fast}"
    ;;
  start-pg)
    require_managed_pg
    pg_up
    ;;
  kill-kafka)
    require_managed_kafka
    phase "kafka kill" each_node kafka_kill
    ;;
  kill-kafka-node)
    require_managed_kafka
    kafka_node "${2:?node id}"
    phase "kafka kill node $2" kafka_kill
    ;;
  restart-kafka)
    require_managed_kafka
    phase "kafka stop" each_node kafka_stop
    kafka_up
    ;;
  *) usage ;;
esac
