#!/usr/bin/env bash
# What PostgreSQL alone can commit on this machine (docs/BENCHMARKS.md, "PostgreSQL's ceiling"):
# starts one PostgreSQL 15 server in a temporary directory (fsync and synchronous_commit on, as
# tools/bench_cluster.sh), loads bench/pg_ceiling/schema.sql, and runs pgbench with
# bench/pg_ceiling/batch.sql: transactions of N direct sends, each statement covering all N.
# Prints messages/s = transactions/s x N per batch size. Everything it started is stopped.
#
#   tools/pg_ceiling.sh                       # N = 1 5 10 50, 4 clients, 10 s each (~1 minute)
#   BATCHES="1 50" CLIENTS=2 DURATION=15 tools/pg_ceiling.sh
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BATCHES=${BATCHES:-1 5 10 50}
CLIENTS=${CLIENTS:-4}   # at most 8 (the schema's clients)
DURATION=${DURATION:-10}
PROTOCOL=${PROTOCOL:-prepared}   # pgbench -M: prepared (as the store), simple or extended
((CLIENTS >= 1 && CLIENTS <= 8)) || { echo "CLIENTS: 1..8"; exit 2; }
for n in $BATCHES; do ((n >= 1 && n <= 50)) || { echo "BATCHES: each 1..50"; exit 2; }; done
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x $PGBIN/postgres && -x $PGBIN/pgbench ]] ||
  { echo "PostgreSQL server programs not found under /usr/lib/postgresql (tools/deps.sh --test)"; exit 2; }

WORK=$(mktemp -d -t parley-pg-ceiling.XXXXXX)
chmod 755 "$WORK"
AS_PG=()
[[ $(id -u) == 0 ]] && AS_PG=(setpriv --reuid=postgres --regid=postgres --clear-groups --) &&
  chown postgres:postgres "$WORK"
PG_PID=
cleanup() {
  if [[ -n $PG_PID ]] && kill -0 "$PG_PID" 2>/dev/null; then
    kill -INT "$PG_PID"
    for _ in $(seq 300); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PG_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${AS_PG[@]}" "$PGBIN/initdb" -D "$WORK/data" -U parley --auth=trust -E UTF8 --locale=C \
  >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log"; exit 1; }
"${AS_PG[@]}" "$PGBIN/postgres" -D "$WORK/data" -p "$PORT" -k "$WORK" \
  -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB \
  -c log_min_messages=warning >"$WORK/log" 2>&1 &
PG_PID=$!
psql_do() { psql -X -q -h 127.0.0.1 -p "$PORT" -U parley "$@"; }
for _ in $(seq 300); do psql_do -d postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
psql_do -d postgres -c 'CREATE DATABASE ceiling'
psql_do -d ceiling -v ON_ERROR_STOP=1 -f "$ROOT/bench/pg_ceiling/schema.sql"

echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), fsync on, $PROTOCOL statements, $CLIENTS clients, $DURATION s per batch size, $(nproc) cores"
for n in $BATCHES; do
  tps=$(timeout $((DURATION + 60)) "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PORT" -U parley \
    -M "$PROTOCOL" -f "$ROOT/bench/pg_ceiling/batch.sql" -D n="$n" -c "$CLIENTS" -j 2 -T "$DURATION" ceiling |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  awk -v n="$n" -v t="$tps" 'BEGIN {printf "batch %2d: %8.0f transactions/s  %8.0f messages/s\n", n, t, n * t}'
done
