#!/usr/bin/env bash
# A local Parley cluster on loopback, to try (docs/SCALING.md, "Trying it: make cluster"):
# two Redis servers (no persistence), two PostgreSQL servers (the store's two shards), three
# parleyd nodes and HAProxy in front.
#
#   tools/cluster.sh start  [DIR]   start what is not running yet; waits until every node is ready
#   tools/cluster.sh stop   [DIR]   stop every process it started
#   tools/cluster.sh status [DIR]   each process, and each node's /readyz
#
# DIR (default ./cluster-data) holds the configurations, logs, pid files, the PostgreSQL data
# and the nodes' data directories; it survives `stop` (rm -rf it to start from scratch).
# Ports (change them with these variables on `start`; stop and status read DIR/ports):
#   HAPROXY_PORT=8080  NODE_PORT=8081 (8081..8083)  REDIS_PORT=16379 (16379, 16380)
#   PG_PORT=15432 (15432, 15433)  STATS_PORT=8404
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMD=${1:-}
DIR=${2:-./cluster-data}
BUILD=${BUILD:-build}
PARLEYD=${PARLEYD:-$ROOT/$BUILD/src/parleyd/parleyd}
NODES=3

usage() {
  echo "usage: tools/cluster.sh start|stop|status [DIR]" >&2
  exit 2
}

say() { echo "cluster: $*"; }
die() {
  echo "cluster: $*" >&2
  exit 1
}

# True while something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The pid in DIR/$1.pid when that process is alive and runs the program named $2.
live_pid() {
  local file="$DIR/$1.pid" pid
  [ -f "$file" ] || return 1
  pid=$(head -n1 "$file")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
  echo "$pid"
}

load_ports() {
  if [ -f "$DIR/ports" ]; then
    # shellcheck disable=SC1091
    . "$DIR/ports"
  fi
  HAPROXY_PORT=${HAPROXY_PORT:-8080}
  NODE_PORT=${NODE_PORT:-8081}
  REDIS_PORT=${REDIS_PORT:-16379}
  PG_PORT=${PG_PORT:-15432}
  STATS_PORT=${STATS_PORT:-8404}
}

pg_bin() {
  local best=""
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && best=$d
  done
  [ -n "$best" ] || die "PostgreSQL not found under /usr/lib/postgresql: run tools/deps.sh --test"
  echo "$best"
}

# postgres refuses to run as root: then the package's `postgres` user runs it.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"
  else
    "$@"
  fi
}

# Starts "$@" in its own session, detached, output to DIR/$name.log; writes DIR/$name.pid.
spawn() {
  local name=$1
  shift
  setsid nohup "$@" >>"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}

# Waits up to $2 seconds for `$1` (a command) to succeed.
wait_until() {
  local what=$1 secs=$2 i
  for ((i = 0; i < secs * 10; i++)); do
    eval "$what" && return 0
    sleep 0.1
  done
  return 1
}

ready_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/readyz" || true; }

start_failed() {
  echo "cluster: $1 did not start; the end of $DIR/$2.log:" >&2
  tail -n 20 "$DIR/$2.log" >&2 || true
  echo "cluster: stopping what started" >&2
  stop_all >&2
  exit 1
}

check_port_free() {
  ! port_open "$1" || die "port $1 is taken by another program (set $2=... to use another)"
}

start_redis() {
  local i port
  for i in 1 2; do
    port=$((REDIS_PORT + i - 1))
    if live_pid "redis$i" redis-server >/dev/null; then
      say "redis$i already running"
      continue
    fi
    check_port_free "$port" REDIS_PORT
    mkdir -p "$DIR/redis$i"
    spawn "redis$i" redis-server --bind 127.0.0.1 --port "$port" --dir "$DIR/redis$i" \
      --save "" --appendonly no --protected-mode no
    wait_until "port_open $port" 10 || start_failed "redis$i" "redis$i"
    say "redis$i on 127.0.0.1:$port"
  done
}

PG_SERVERS=2

start_postgres() {
  local bin i port data
  bin=$(pg_bin)
  for ((i = 1; i <= PG_SERVERS; i++)); do
    port=$((PG_PORT + i - 1))
    data="$DIR/postgres$i/data"
    if live_pid "postgres$i" "$bin/postgres" >/dev/null; then
      say "postgres$i already running"
      continue
    fi
    check_port_free "$port" PG_PORT
    mkdir -p "$DIR/postgres$i"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres:postgres "$DIR/postgres$i"
      as_pg test -x "$DIR/postgres$i" ||
        die "the postgres user cannot reach $DIR (a parent directory is closed to it): use another DIR"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$data" -U parley --auth=trust -E UTF8 --locale=C --no-sync \
        >"$DIR/initdb$i.log" 2>&1 || start_failed "initdb" "initdb$i"
    fi
    local run=()
    [ "$(id -u)" -eq 0 ] && run=(setpriv --reuid=postgres --regid=postgres --clear-groups --)
    spawn "postgres$i" "${run[@]}" "$bin/postgres" -D "$data" -p "$port" -k "$DIR/postgres$i" \
      -c listen_addresses=127.0.0.1 -c max_connections=100
    wait_until "$bin/pg_isready -q -h 127.0.0.1 -p $port" 30 || start_failed "postgres$i" "postgres$i"
    # The postmaster's own pid (the one spawn saw is the same unless setsid had to fork).
    as_pg head -n1 "$data/postmaster.pid" >"$DIR/postgres$i.pid"
    if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U parley -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'parley'" | grep -q 1; then
      "$bin/createdb" -h 127.0.0.1 -p "$port" -U parley parley
    fi
    say "postgres$i on 127.0.0.1:$port (database parley, user parley; shard $i of $PG_SERVERS)"
  done
}

write_node_config() {
  local n=$1 port=$2 secret=$3
  cat >"$DIR/node$n.toml" <<EOF
# parleyd node $n of tools/cluster.sh (docs/CONFIG.md, docs/SCALING.md)
[server]
node_id = $n
listen = "127.0.0.1:$port"
data_dir = "$DIR/node$n"
web_root = "$ROOT/web"

[auth]
# Login tokens live in the shared store, so they work on every node already; a shared HS256
# secret makes a JWT signed with it work on every node too.
jwt_hs256_secret = "$secret"

[cluster]
redis = ["127.0.0.1:$REDIS_PORT", "127.0.0.1:$((REDIS_PORT + 1))"]
# The store's shards, in the same order on every node.
postgres = ["host=127.0.0.1 port=$PG_PORT dbname=parley user=parley", "host=127.0.0.1 port=$((PG_PORT + 1)) dbname=parley user=parley"]
EOF
}

start_nodes() {
  local n port secret
  if [ ! -x "$PARLEYD" ]; then
    say "building parleyd"
    [ -f "$ROOT/$BUILD/build.ninja" ] ||
      cmake -S "$ROOT" -B "$ROOT/$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$ROOT/$BUILD" --target parleyd
  fi
  [ -f "$DIR/jwt-secret" ] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/jwt-secret")
  secret=$(cat "$DIR/jwt-secret")
  for ((n = 1; n <= NODES; n++)); do
    port=$((NODE_PORT + n - 1))
    if live_pid "node$n" parleyd >/dev/null; then
      say "node$n already running"
      continue
    fi
    check_port_free "$port" NODE_PORT
    mkdir -p "$DIR/node$n"
    write_node_config "$n" "$port" "$secret"
    spawn "node$n" "$PARLEYD" --config "$DIR/node$n.toml"
  done
  for ((n = 1; n <= NODES; n++)); do
    port=$((NODE_PORT + n - 1))
    wait_until "[ \"\$(ready_code $port)\" = 200 ] || ! live_pid node$n parleyd >/dev/null" 30
    [ "$(ready_code "$port")" = 200 ] || start_failed "node$n" "node$n"
    say "node$n on 127.0.0.1:$port (node_id $n)"
  done
}

start_haproxy() {
  local servers="" n cfg
  if live_pid haproxy haproxy >/dev/null; then
    say "haproxy already running"
    return
  fi
  command -v haproxy >/dev/null || die "haproxy not found: run tools/deps.sh --test"
  check_port_free "$HAPROXY_PORT" HAPROXY_PORT
  check_port_free "$STATS_PORT" STATS_PORT
  for ((n = 1; n <= NODES; n++)); do
    servers+="    server node$n 127.0.0.1:$((NODE_PORT + n - 1))"$'\n'
  done
  cfg=$(<"$ROOT/tools/haproxy.cfg.in")
  cfg=${cfg//@BIND@/127.0.0.1:$HAPROXY_PORT}
  cfg=${cfg//@STATS_BIND@/127.0.0.1:$STATS_PORT}
  cfg=${cfg//@SERVERS@/${servers%$'\n'}}
  printf '%s\n' "$cfg" >"$DIR/haproxy.cfg"
  haproxy -c -q -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 ||
    start_failed "haproxy (it rejected $DIR/haproxy.cfg)" haproxy
  spawn haproxy haproxy -f "$DIR/haproxy.cfg" -db
  wait_until "port_open $HAPROXY_PORT" 10 || start_failed haproxy haproxy
  # Every node is marked up after `rise` checks.
  wait_until "curl -s --max-time 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$HAPROXY_PORT/readyz | grep -q 200" 10 ||
    start_failed haproxy haproxy
  say "haproxy on 127.0.0.1:$HAPROXY_PORT (stats: http://127.0.0.1:$STATS_PORT/)"
}

# Before starting anything: the ports of what is not running yet must be free.
preflight() {
  local i bin
  bin=$(pg_bin)
  for i in 1 2; do
    live_pid "redis$i" redis-server >/dev/null || check_port_free $((REDIS_PORT + i - 1)) REDIS_PORT
  done
  for ((i = 1; i <= PG_SERVERS; i++)); do
    live_pid "postgres$i" "$bin/postgres" >/dev/null || check_port_free $((PG_PORT + i - 1)) PG_PORT
  done
  for ((i = 1; i <= NODES; i++)); do
    live_pid "node$i" parleyd >/dev/null || check_port_free $((NODE_PORT + i - 1)) NODE_PORT
  done
  if ! live_pid haproxy haproxy >/dev/null; then
    check_port_free "$HAPROXY_PORT" HAPROXY_PORT
    check_port_free "$STATS_PORT" STATS_PORT
  fi
}

start_all() {
  command -v redis-server >/dev/null || die "redis-server not found: run tools/deps.sh --test"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  if [ ! -f "$DIR/ports" ]; then
    load_ports
    printf 'HAPROXY_PORT=%s\nNODE_PORT=%s\nREDIS_PORT=%s\nPG_PORT=%s\nSTATS_PORT=%s\n' \
      "$HAPROXY_PORT" "$NODE_PORT" "$REDIS_PORT" "$PG_PORT" "$STATS_PORT" >"$DIR/ports"
  else
    load_ports
  fi
  preflight
  start_redis
  start_postgres
  start_nodes
  start_haproxy
  cat <<EOF

Parley cluster up: http://127.0.0.1:$HAPROXY_PORT (web client, HTTP API, /v1/ws through HAProxy)
  $BUILD/src/cli/parley --server http://127.0.0.1:$HAPROXY_PORT register alice
  tools/cluster.sh status $DIR     tools/cluster.sh stop $DIR     (make cluster-stop)
EOF
}

# SIGTERM to $pid, up to $secs seconds, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 secs=$3 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || {
      say "stopped $name ($pid)"
      return 0
    }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  say "killed $name ($pid): it did not stop within ${secs}s"
}

stop_all() {
  local pid n
  load_ports
  # The order matters: no traffic, then the nodes (they drain and flush), then their backends.
  if pid=$(live_pid haproxy haproxy); then stop_pid haproxy "$pid" 10; fi
  for ((n = NODES; n >= 1; n--)); do
    if pid=$(live_pid "node$n" parleyd); then stop_pid "node$n" "$pid" 30; fi
  done
  # SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
  for ((n = PG_SERVERS; n >= 1; n--)); do
    if pid=$(live_pid "postgres$n" postgres); then
      kill -INT "$pid" 2>/dev/null || true
      stop_pid "postgres$n" "$pid" 30
    fi
  done
  for n in 2 1; do
    if pid=$(live_pid "redis$n" redis-server); then stop_pid "redis$n" "$pid" 10; fi
  done
  rm -f "$DIR"/*.pid
}

status_all() {
  local pid n port code failed=0
  load_ports
  show() {
    if pid=$(live_pid "$1" "$2"); then
      printf '%-9s running  pid %-8s %s\n' "$1" "$pid" "$3"
    else
      printf '%-9s stopped\n' "$1"
      failed=1
    fi
  }
  show redis1 redis-server "127.0.0.1:$REDIS_PORT"
  show redis2 redis-server "127.0.0.1:$((REDIS_PORT + 1))"
  for ((n = 1; n <= PG_SERVERS; n++)); do
    show "postgres$n" postgres "127.0.0.1:$((PG_PORT + n - 1))"
  done
  for ((n = 1; n <= NODES; n++)); do
    port=$((NODE_PORT + n - 1))
    show "node$n" parleyd "127.0.0.1:$port"
  done
  show haproxy haproxy "127.0.0.1:$HAPROXY_PORT  stats http://127.0.0.1:$STATS_PORT/"
  echo
  for ((n = 1; n <= NODES; n++)); do
    port=$((NODE_PORT + n - 1))
    code=$(ready_code "$port")
    printf 'node%s /readyz %s %s\n' "$n" "${code:-000}" \
      "$(curl -s --max-time 2 "http://127.0.0.1:$port/readyz" 2>/dev/null || echo '(no answer)')"
  done
  return $failed
}

case "$CMD" in
  start) start_all ;;
  stop)
    [ -d "$DIR" ] || die "no cluster in $DIR"
    DIR=$(cd "$DIR" && pwd)
    stop_all
    ;;
  status)
    [ -d "$DIR" ] || die "no cluster in $DIR"
    DIR=$(cd "$DIR" && pwd)
    status_all
    ;;
  *) usage ;;
esac
