#!/usr/bin/env bash
# Local infrastructure for Kencana: a project PostgreSQL cluster and a single-node Apache Kafka (KRaft) broker,
# both on loopback, with all state under $KENCANA_STATE_DIR (default <repo>/.local, git-ignored).
#
# Usage: scripts/infra.sh up|down|status|topics|env [user]|stop-kafka|start-kafka|restart-kafka|kill-kafka|kill-kafka-node N|stop-pg [fast|immediate]|start-pg
#
#   KENCANA_STATE_DIR               state folder (pg data, kafka data + jars, logs, pid files)
#   KENCANA_DATABASE_URL            use this PostgreSQL server as-is: install/start nothing, only create the
#                                   service databases through it when missing
#   KENCANA_KAFKA_BOOTSTRAP_SERVERS use this Kafka as-is: nothing is installed or started for Kafka
#   KENCANA_PG_PORT                 port of the project PostgreSQL (default 5432)
#   KENCANA_KAFKA_PORT              broker port (default 9092)
#   KENCANA_KAFKA_CONTROLLER_PORT   KRaft controller port (default: broker port + 1)
#   KENCANA_KAFKA_SECURITY          sasl_ssl (default): the broker requires SASL/SCRAM-SHA-512 over TLS and
#                                   authorises by ACLs (issue 15); plaintext: no authentication (as before)
#
# Secured (the default), `up` also generates into <state>/kafka-secrets (git-ignored, mode 700), idempotently:
# a CA, the broker's certificate (SAN 127.0.0.1, localhost and the compose/Kubernetes host names), the admin's
# password (bootstrapped into KRaft at format time, the only super user), then with `kencana kafka-security
# apply` every principal of shared/kafka_security.py (SCRAM users + ACLs), a `client-<user>.properties` per user
# for Kafka's console tools and a `<user>.env`. `scripts/infra.sh env [user]` prints the exports a client needs
# (default user kencana-test, the test suite's principal); `make test`/`make demo` use it.
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
KAFKA_SECURITY="${KENCANA_KAFKA_SECURITY:-sasl_ssl}"
case "$KAFKA_SECURITY" in sasl_ssl | plaintext) ;; *)
  printf '[infra] ERROR: KENCANA_KAFKA_SECURITY must be sasl_ssl or plaintext, not %s\n' "$KAFKA_SECURITY" >&2
  exit 2
  ;;
esac
SECRETS="$STATE/kafka-secrets"
KAFKA_ADMIN_USER=kencana-admin
KAFKA_TEST_USER=kencana-test
# Host names the broker's certificate is valid for: loopback, docker-compose's service, Strimzi's bootstrap.
KAFKA_CERT_SAN="IP:127.0.0.1,DNS:localhost,DNS:kafka,DNS:kencana-kafka-bootstrap,DNS:kencana-kafka-bootstrap.kafka.svc,DNS:*.kencana-kafka-brokers.kafka.svc"
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
  if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
    kafka_secure_props "$tmp"
  fi
  if ((KAFKA_BROKERS > 1)); then
    # Static quorum of every node; internal and new topics on 3 replicas, a write needs 2 in sync (acks=all).
    sed -i -e "s#^node.id=.*#node.id=$KAFKA_NODE#" \
      -e "s#^controller.quorum.bootstrap.servers=.*#controller.quorum.voters=$(kafka_voters)#" \
      -e "s#^\(offsets.topic.replication.factor\|transaction.state.log.replication.factor\|share.coordinator.state.topic.replication.factor\|default.replication.factor\)=.*#\1=3#" \
      -e "s#^\(transaction.state.log.min.isr\|share.coordinator.state.topic.min.isr\|min.insync.replicas\)=.*#\1=2#" \
      "$tmp"
    # What a SIGKILLed node replays before it serves again (the fault scenario kills one five times): every
    # partition it holds (an unclean shutdown recovers each: 70 logs took 15-16 s at load 30, 50 of them the
    # group offsets' default partitions; 10 are plenty for a loopback cluster's few groups), and the metadata
    # log from its last snapshot (none is taken before 20 MB or an hour: the replay from offset 0 took 9-12 s).
    printf '%s\n' "offsets.topic.num.partitions=10" "metadata.log.max.snapshot.interval.ms=60000" >>"$tmp"
  fi
  mv "$tmp" "$KAFKA_PROPS"
}

# Clients (and the brokers among themselves) on SASL_SSL with SCRAM-SHA-512; the KRaft controller port on TLS
# with a client certificate only the broker holds (SCRAM cannot authenticate controller traffic: the credentials
# live in the metadata the controllers serve). Every request is authorised by ACLs; no ACL, no access.
kafka_secure_props() {
  local f="$1" admin_pw
  admin_pw="$(cat "$SECRETS/passwords/$KAFKA_ADMIN_USER.password")"
  sed -i -e "s#PLAINTEXT://127.0.0.1:#SASL_SSL://127.0.0.1:#g" \
    -e "s#^listener.security.protocol.map=.*#listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL#" \
    -e "s#^inter.broker.listener.name=.*#inter.broker.listener.name=SASL_SSL#" "$f"
  cat >>"$f" <<PROPS

# ---- secured bus (issue 15; written by scripts/infra.sh, KENCANA_KAFKA_SECURITY=sasl_ssl)
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_ADMIN_USER" password="$admin_pw";
ssl.keystore.type=PEM
ssl.keystore.location=$SECRETS/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SECRETS/ca.crt
ssl.endpoint.identification.algorithm=https
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*\$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:$KAFKA_ADMIN_USER;User:kencana-broker
PROPS
}

# The CA, the broker certificate and the admin password; kept once generated (delete the folder to renew).
kafka_secrets() {
  [[ "$KAFKA_SECURITY" == sasl_ssl ]] || return 0
  mkdir -p "$SECRETS/passwords"
  chmod 700 "$SECRETS" "$SECRETS/passwords"
  local out="$LOGS/kafka-secrets.log"
  : >"$out"
  if [[ ! -s "$SECRETS/ca.crt" || ! -s "$SECRETS/ca.key" ]]; then
    (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout "$SECRETS/ca.key" \
      -out "$SECRETS/ca.crt" -subj "/O=Kencana development/CN=Kencana development CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign") >>"$out" 2>&1 || {
      err "creating the CA failed"
      tail_log "$out"
      exit 1
    }
    rm -f "$SECRETS/broker.pem"
  fi
  if [[ ! -s "$SECRETS/broker.pem" ]]; then
    (
      umask 077
      openssl req -newkey rsa:2048 -nodes -keyout "$SECRETS/broker.key" -out "$SECRETS/broker.csr" \
        -subj "/O=Kencana development/CN=kencana-broker" &&
        openssl x509 -req -sha256 -days 825 -in "$SECRETS/broker.csr" -CA "$SECRETS/ca.crt" -CAkey "$SECRETS/ca.key" \
          -CAcreateserial -out "$SECRETS/broker.crt" -extfile <(printf '%s\n' "subjectAltName=$KAFKA_CERT_SAN" \
          "extendedKeyUsage=serverAuth,clientAuth" "keyUsage=critical,digitalSignature,keyEncipherment") &&
        cat "$SECRETS/broker.key" "$SECRETS/broker.crt" >"$SECRETS/broker.pem"
    ) >>"$out" 2>&1 || {
      err "creating the broker certificate failed"
      tail_log "$out"
      exit 1
    }
    rm -f "$SECRETS/broker.csr"
  fi
  local pw="$SECRETS/passwords/$KAFKA_ADMIN_USER.password"
  if [[ ! -s "$pw" ]]; then
    (umask 077 && openssl rand -hex 24 >"$pw")
  fi
  # For the readiness probe without a venv (Kafka's TopicCommand).
  (
    umask 077
    printf '%s\n' security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-512 \
      "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$KAFKA_ADMIN_USER\" password=\"$(cat "$pw")\";" \
      ssl.truststore.type=PEM "ssl.truststore.location=$SECRETS/ca.crt" >"$SECRETS/admin-probe.properties"
  )
}

# The environment a client of the managed broker needs, as `<user>.env` holds it (written by kafka_principals).
admin_env() {
  if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
    printf '%s\n' KENCANA_KAFKA_SECURITY_PROTOCOL=SASL_SSL KENCANA_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 \
      "KENCANA_KAFKA_SASL_USERNAME=$KAFKA_ADMIN_USER" \
      "KENCANA_KAFKA_SASL_PASSWORD=$(cat "$SECRETS/passwords/$KAFKA_ADMIN_USER.password")" \
      "KENCANA_KAFKA_SSL_CAFILE=$SECRETS/ca.crt"
  fi
}

# Every principal of shared/kafka_security.py: SCRAM user, ACLs, client files (as the admin).
kafka_principals() {
  [[ "$KAFKA_SECURITY" == sasl_ssl ]] || return 0
  if [[ ! -x "$REPO/.venv/bin/python" ]]; then
    err "no .venv (make setup): the Kafka users and ACLs are created with the project's Python"
    exit 1
  fi
  local admin=()
  mapfile -t admin < <(admin_env)
  if ! env "${admin[@]}" PYTHONPATH="$REPO:$REPO/cli" "$REPO/.venv/bin/python" -m kencana_cli.kafka_security apply \
    --bootstrap-servers "$(kafka_bootstrap)" --secrets-dir "$SECRETS" --with-test >"$LOGS/kafka-principals.log" 2>&1; then
    err "creating the Kafka users and ACLs failed"
    tail_log "$LOGS/kafka-principals.log"
    exit 1
  fi
}

kafka_bootstrap() {
  local n out=""
  for ((n = 1; n <= KAFKA_BROKERS; n++)); do
    out+="${out:+,}127.0.0.1:$((KAFKA_BASE_PORT + 2 * (n - 1)))"
  done
  printf '%s' "$out"
}

# The mode the data folder was formatted for: a secured broker needs its admin user in the KRaft metadata,
# which only `format --add-scram` puts there. A data folder formatted without it (an older plaintext broker of
# this state folder) is deleted and formatted again: it is a development broker whose topics the services and
# `kencana topics repair` create again.
kafka_scram_file() { printf '%s/kencana-scram-admin' "$KAFKA_DATA"; }

kafka_format() {
  if [[ -f "$KAFKA_DATA/meta.properties" && "$KAFKA_SECURITY" == sasl_ssl && ! -f "$(kafka_scram_file)" ]]; then
    log "node $KAFKA_NODE: data formatted without SCRAM users; formatting again for the secured broker"
    rm -rf "$KAFKA_DATA"
  fi
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
  local scram=()
  if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
    scram=(--add-scram "SCRAM-SHA-512=[name=$KAFKA_ADMIN_USER,password=$(cat "$SECRETS/passwords/$KAFKA_ADMIN_USER.password")]")
  fi
  if ! java -cp "$(kafka_classpath)" -Dlog4j2.configurationFile="$REPO/infra/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$KAFKA_LOGS_DIR" kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_PROPS" \
    "${quorum[@]}" "${scram[@]}" >>"$LOGS/kafka-format.log" 2>&1; then
    err "formatting Kafka storage failed"
    tail_log "$LOGS/kafka-format.log"
    exit 1
  fi
  if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
    touch "$(kafka_scram_file)"
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
  rm -f "$KAFKA_PID" "$KAFKA_PID.mode"
  # setsid: the broker outlives this shell and is not hit by signals sent to the caller's process group.
  local jvm=(-Xms256m -Xmx512m -XX:+UseG1GC)
  if ((KAFKA_BROKERS > 1)); then
    # Three JVMs on a small machine, and the fault scenario restarts one while the others carry the load: the
    # client compiler only (C2's compile threads are what a starting JVM waits for on a busy 2-core machine) and
    # the serial collector (one GC thread per JVM, not one per core).
    jvm=(-Xms256m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData)
  fi
  setsid nohup java "${jvm[@]}" -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$REPO/infra/kafka/log4j2.properties" -Dkafka.logs.dir="$KAFKA_LOGS_DIR" \
    -cp "$(kafka_classpath)" kafka.Kafka "$KAFKA_PROPS" >"$KAFKA_OUT" 2>&1 </dev/null 9>&- &
  printf '%s\n' "$!" >"$KAFKA_PID"
  printf '%s\n' "$KAFKA_SECURITY" >"$KAFKA_PID.mode"
  log "Kafka node $KAFKA_NODE started (pid $!, port $KAFKA_PORT)"
}

# One metadata round-trip with the project venv's aiokafka, with this node itself: an admin client (what this
# was) sends its request to a random node of the cluster's metadata, so on the three-broker cluster a node's
# probe failed while another node was down and passed for a node that did not answer.
AIOKAFKA_PROBE='
import asyncio, os, ssl, sys
from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest
secured = {}
if len(sys.argv) > 2:
    secured = dict(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=sys.argv[3],
                   sasl_plain_password=os.environ["KAFKA_PROBE_PASSWORD"], ssl_context=ssl.create_default_context(cafile=sys.argv[2]))
async def main() -> None:
    host, port = sys.argv[1].rsplit(":", 1)
    conn = await create_conn(host, int(port), request_timeout_ms=5000, **secured)
    try:
        await conn.send(MetadataRequest([]))
    finally:
        conn.close()
asyncio.run(asyncio.wait_for(main(), 10))
'

kafka_probe() {
  if [[ -x "$REPO/.venv/bin/python" ]] && "$REPO/.venv/bin/python" -c 'import aiokafka' >/dev/null 2>&1; then
    if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
      KAFKA_PROBE_PASSWORD="$(cat "$SECRETS/passwords/$KAFKA_ADMIN_USER.password")" timeout 30 "$REPO/.venv/bin/python" \
        -c "$AIOKAFKA_PROBE" "127.0.0.1:$KAFKA_PORT" "$SECRETS/ca.crt" "$KAFKA_ADMIN_USER" >"$LOGS/kafka-probe.log" 2>&1
    else
      timeout 30 "$REPO/.venv/bin/python" -c "$AIOKAFKA_PROBE" "127.0.0.1:$KAFKA_PORT" >"$LOGS/kafka-probe.log" 2>&1
    fi
  elif [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
    timeout 30 java -cp "$(kafka_classpath)" -Dlog4j2.configurationFile="$REPO/infra/kafka/log4j2.properties" \
      -Dkafka.logs.dir="$LOGS" org.apache.kafka.tools.TopicCommand --command-config "$SECRETS/admin-probe.properties" \
      --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >"$LOGS/kafka-probe.log" 2>&1
  else
    timeout 30 java -cp "$(kafka_classpath)" -Dlog4j2.configurationFile="$REPO/infra/kafka/log4j2.properties" \
      -Dkafka.logs.dir="$LOGS" org.apache.kafka.tools.TopicCommand \
      --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >"$LOGS/kafka-probe.log" 2>&1
  fi
}

kafka_wait_ready() {
  local deadline=$((SECONDS + KAFKA_READY_TIMEOUT)) pid probes=0 t0="$SECONDS"
  pid="$(kafka_pid)"
  while true; do
    if port_open "$KAFKA_PORT" && { probes=$((probes + 1)) && kafka_probe; }; then
      ((KAFKA_BROKERS == 1)) || log "node $KAFKA_NODE answered after $((SECONDS - t0)) s ($probes probes)"
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
    rm -f "$KAFKA_PID" "$KAFKA_PID.mode"
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
  rm -f "$KAFKA_PID" "$KAFKA_PID.mode"
  log "Kafka stopped (pid $pid)"
}

# A cluster's nodes are asked to stop together: stopped one after the other, the last one waited out
# KAFKA_STOP_TIMEOUT (then SIGKILL) for a controller quorum that had left with the others.
kafka_term() {
  local pid
  pid="$(kafka_pid)"
  [[ -z "$pid" ]] || kill -TERM "$pid" 2>/dev/null || true
}

kafka_stop_all() {
  if ((KAFKA_BROKERS > 1)); then
    each_node kafka_term
  fi
  each_node kafka_stop
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
  rm -f "$KAFKA_PID" "$KAFKA_PID.mode"
  log "Kafka killed (pid $pid)"
}

# The security mode the running node was started in (written by kafka_start).
kafka_mode_matches() { [[ "$(cat "$KAFKA_PID.mode" 2>/dev/null || echo plaintext)" == "$KAFKA_SECURITY" ]]; }

kafka_node_running() { [[ -n "$(kafka_pid)" ]] && port_open "$KAFKA_PORT"; }

kafka_up() {
  if external_kafka; then
    log "KENCANA_KAFKA_BOOTSTRAP_SERVERS is set: using that Kafka as-is"
    return
  fi
  if each_node kafka_node_running; then
    if each_node kafka_mode_matches; then
      phase "kafka ready" each_node kafka_wait_ready
      return
    fi
    log "Kafka runs in another security mode than KENCANA_KAFKA_SECURITY=$KAFKA_SECURITY: restarting it"
    phase "kafka stop" kafka_stop_all
  fi
  phase "kafka install" kafka_install
  phase "kafka secrets" kafka_secrets
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
  local admin=()
  external_kafka || mapfile -t admin < <(admin_env)
  # A cluster's topics on 3 replicas (min.insync.replicas 2 follows, shared/topics.py); without it `repair` made
  # them with one replica, a partition lost with its only node (seen as leader -1 while a node was killed).
  local replicas=()
  ((KAFKA_BROKERS > 1)) && replicas=(KENCANA_TOPIC_REPLICATION_FACTOR=3)
  if ! env "${admin[@]}" "${replicas[@]}" "$REPO/.venv/bin/python" -m kencana_cli.topics repair \
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
  echo "usage: $0 up|down|status|topics|env [user]|stop-kafka|start-kafka|restart-kafka|kill-kafka|kill-kafka-node N|stop-pg [fast|immediate]|start-pg" >&2
  exit 2
}

cmd="${1:-}"
case "$cmd" in
  up)
    t0="$(now)"
    log "state folder: $STATE"
    pg_up
    kafka_up
    external_kafka || phase "kafka principals" kafka_principals
    external_kafka || phase "kafka topics" kafka_topics
    awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "[infra] %-22s %6.2f s\n", "up (total)", b - a }'
    ;;
  down)
    rc=0
    phase "kafka stop" kafka_stop_all || rc=1
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
  env)
    # `eval "$(scripts/infra.sh env [user])"`: the managed broker's address and a user's credentials (nothing
    # when KENCANA_KAFKA_BOOTSTRAP_SERVERS names another Kafka: its settings are the caller's).
    external_kafka && exit 0
    user="${2:-$KAFKA_TEST_USER}"
    printf 'export KENCANA_KAFKA_BOOTSTRAP_SERVERS=%q\n' "$(kafka_bootstrap)"
    if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
      if [[ ! -s "$SECRETS/$user.env" ]]; then
        err "no credentials for Kafka user $user in $SECRETS (scripts/infra.sh up creates them)"
        exit 1
      fi
      while IFS= read -r line; do
        [[ -n "$line" ]] && printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
      done <"$SECRETS/$user.env"
    else
      printf 'unset KENCANA_KAFKA_SECURITY_PROTOCOL KENCANA_KAFKA_SASL_USERNAME KENCANA_KAFKA_SASL_PASSWORD\n'
    fi
    ;;
  stop-kafka)
    require_managed_kafka
    phase "kafka stop" kafka_stop_all
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
    phase "kafka stop" kafka_stop_all
    kafka_up
    ;;
  *) usage ;;
esac
