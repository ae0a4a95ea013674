#!/usr/bin/env bash
# Benchmarks parleyd as a cluster on this machine (issue 17, docs/BENCHMARKS.md "Cluster"):
# starts, in a temporary directory, two redis-server (no persistence), PG_SERVERS PostgreSQL 15
# servers (the store's shards; initdb, trust auth, user parley, fsync ON), three parleyd nodes (node_id 1..3,
# bench/parleyd-bench.toml plus [cluster]), runs parley-bench against all three URLs and
# reports, per run, the figures and the Redis commands and PostgreSQL transactions per
# message (INFO commandstats and pg_stat_database, before and after the run). Everything it
# started is stopped on exit; the whole run is bounded by MAX_SECONDS.
#
#   tools/bench_cluster.sh                      # every run below (about 4 minutes)
#   ONLY="direct-max direct-rate" tools/bench_cluster.sh
#
# Runs (ONLY): direct-max (rate 0), direct-rate (RATE msg/s), group (GROUP_GROUPS x
# GROUP_MEMBERS, rate 0, window 16), connections (CONN_PER_NODE idle connections per node).
# Knobs (environment): DURATION (15) PAIRS (100) RATE (5000) GROUP_GROUPS (10)
# GROUP_MEMBERS (100) CONN_PER_NODE (5000) HOLD (20) CONN_PROCESSES (parley-bench processes
# sharing the connections; default: one per 18,000, as one process holds at most 20,000
# descriptors here) NODE_THREADS (1: I/O threads per node)
# BENCH_THREADS (0: parley-bench's default) PG_SERVERS (2: the store's shards) MAX_SECONDS (1200) PARLEYD BENCH (binaries;
# default: build/) OUT (also write the JSON lines there) KEEP (1: keep the temp dir and logs)
# PG_STATEMENTS (1: load pg_stat_statements and print, after each run, the statements the
# store ran per message: calls and time, summed over the shards) PG_EXTRA (more `postgres`
# options, e.g. "-c plan_cache_mode=force_custom_plan", to compare server settings).
#
# PostgreSQL runs with fsync and synchronous_commit ON (the defaults), as a deployment would:
# an acknowledged message is durable. shared_buffers = 256MB, max_connections = 200.
set -euo pipefail
export LC_ALL=C  # sort and join agree

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PARLEYD=${PARLEYD:-$BUILD/src/parleyd/parleyd}
BENCH=${BENCH:-$BUILD/bench/parley-bench}
ONLY=${ONLY:-direct-max direct-rate group connections}
DURATION=${DURATION:-15}
PAIRS=${PAIRS:-100}
RATE=${RATE:-5000}
GROUP_GROUPS=${GROUP_GROUPS:-10}
GROUP_MEMBERS=${GROUP_MEMBERS:-100}
CONN_PER_NODE=${CONN_PER_NODE:-5000}
HOLD=${HOLD:-20}
NODE_THREADS=${NODE_THREADS:-1}
BENCH_THREADS=${BENCH_THREADS:-0}
MAX_SECONDS=${MAX_SECONDS:-1200}
PG_SERVERS=${PG_SERVERS:-2}
KEEP=${KEEP:-0}
PG_STATEMENTS=${PG_STATEMENTS:-0}
CONFIG=$ROOT/bench/parleyd-bench.toml
NODES=3
CONN_PROCESSES=${CONN_PROCESSES:-$(((NODES * CONN_PER_NODE + 17999) / 18000))}

for p in "$PARLEYD" "$BENCH"; do
  [[ -x $p ]] || { echo "missing $p: cmake --build build --target parleyd parley-bench"; exit 2; }
done
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x $PGBIN/postgres && -x $PGBIN/initdb ]] ||
  { echo "PostgreSQL server programs not found under /usr/lib/postgresql (tools/deps.sh --test)"; exit 2; }
for c in redis-server redis-cli psql jq python3; do
  command -v "$c" >/dev/null || { echo "missing $c"; exit 2; }
done
SECRET=$(sed -n 's/^jwt_hs256_secret *= *"\(.*\)"/\1/p' "$CONFIG")

WORK=$(mktemp -d -t parley-cluster.XXXXXX)
chmod 755 "$WORK"
PIDS=()          # parleyd and redis-server, stopped with SIGTERM
PG_PIDS=()
WATCHDOG=
AS_PG=()
[[ $(id -u) == 0 ]] && AS_PG=(setpriv --reuid=postgres --regid=postgres --clear-groups --)

stop_pid() {  # stop_pid PID SIGNAL SECONDS
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill "-$2" "$pid" 2>/dev/null || true
  for _ in $(seq $(($3 * 10))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  trap - EXIT INT TERM
  local i pid
  # The watchdog first: its TERM must not cut the cleanup short.
  if [[ -n $WATCHDOG ]]; then
    pkill -P "$WATCHDOG" sleep 2>/dev/null || true  # its sleep, then itself
    kill "$WATCHDOG" 2>/dev/null || true
  fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}" TERM 10; done  # nodes first
  for pid in "${PG_PIDS[@]}"; do stop_pid "$pid" INT 30; done  # fast shutdown
  if [[ $KEEP == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
# The bound on the whole run: past it the script is terminated (and cleans up).
exec 3>&2
( sleep "$MAX_SECONDS"; echo "bench_cluster.sh: over $MAX_SECONDS s, stopping" >&3; kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!
disown "$WATCHDOG"  # no "Terminated" when cleanup stops it

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- Redis: two servers, no persistence --------------------------------------------------
REDIS_PORTS=()
for i in 1 2; do
  port=$(free_port)
  mkdir -p "$WORK/redis$i"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/redis$i" --save "" \
    --appendonly no --daemonize no --protected-mode no --loglevel warning \
    >"$WORK/redis$i/log" 2>&1 &
  PIDS+=($!)
  REDIS_PORTS+=("$port")
done
for port in "${REDIS_PORTS[@]}"; do
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" ping >/dev/null || { echo "redis on $port did not start"; exit 1; }
done

# --- PostgreSQL: PG_SERVERS servers (the store's shards), fsync on ---------------------------
PG_PORTS=()
for i in $(seq "$PG_SERVERS"); do
  port=$(free_port)
  d=$WORK/pg$i
  mkdir -p "$d"
  [[ ${#AS_PG[@]} -gt 0 ]] && chown postgres:postgres "$d"
  "${AS_PG[@]}" "$PGBIN/initdb" -D "$d/data" -U parley --auth=trust -E UTF8 --locale=C \
    >"$d/initdb.log" 2>&1 || { cat "$d/initdb.log"; exit 1; }
  "${AS_PG[@]}" "$PGBIN/postgres" -D "$d/data" -p "$port" -k "$d" \
    -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on \
    -c shared_buffers=256MB -c max_connections=200 ${PG_EXTRA:-} \
    $([[ $PG_STATEMENTS == 1 ]] && echo "-c shared_preload_libraries=pg_stat_statements") \
    -c log_min_messages=warning >"$d/log" 2>&1 &
  PG_PIDS+=($!)
  PG_PORTS+=("$port")
done
psql_on() { psql -X -q -At -h 127.0.0.1 -p "$1" -U parley "${@:2}"; }
for i in $(seq "$PG_SERVERS"); do
  port=${PG_PORTS[$((i - 1))]}
  for _ in $(seq 300); do psql_on "$port" -d postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
  psql_on "$port" -d postgres -c 'CREATE DATABASE parley' || { cat "$WORK/pg$i/log"; exit 1; }
  if [[ $PG_STATEMENTS == 1 ]]; then
    psql_on "$port" -d parley -c 'CREATE EXTENSION pg_stat_statements'
  fi
done
PG_LIST=$(printf '"host=127.0.0.1 port=%s dbname=parley user=parley", ' "${PG_PORTS[@]}")
PG_LIST=${PG_LIST%, }

# --- three parleyd nodes -------------------------------------------------------------------
REDIS_LIST=$(printf '"127.0.0.1:%s", ' "${REDIS_PORTS[@]}")
REDIS_LIST=${REDIS_LIST%, }
URLS=()
NODE_PIDS=()
for n in $(seq "$NODES"); do
  d=$WORK/node$n
  mkdir -p "$d"
  { cat "$CONFIG"
    printf '\n[server]\nnode_id = %d\nthreads = %d\n\n[cluster]\nredis = [%s]\npostgres = [%s]\n' \
      "$n" "$NODE_THREADS" "$REDIS_LIST" "$PG_LIST"
  } >"$d/parleyd.toml"
  # Every process gets the hard descriptor limit (20,000 here) as its soft limit.
  ( ulimit -n "$(ulimit -Hn)"; exec "$PARLEYD" --listen 127.0.0.1:0 --data-dir "$d/data" \
      --config "$d/parleyd.toml" >"$d/out" 2>"$d/err" ) &
  PIDS+=($!)
  NODE_PIDS+=($!)
done
for n in $(seq "$NODES"); do
  d=$WORK/node$n port=
  for _ in $(seq 300); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$d/out" 2>/dev/null || true)
    [[ -n $port ]] && break
    kill -0 "${NODE_PIDS[$((n - 1))]}" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $port ]] || { echo "parleyd node $n did not start"; cat "$d/err"; exit 1; }
  URLS+=("ws://127.0.0.1:$port")
done
URL_ARGS=()
for u in "${URLS[@]}"; do URL_ARGS+=(--url "$u"); done
echo "== cluster: redis ${REDIS_PORTS[*]}, postgres ${PG_PORTS[*]} (fsync on), nodes ${URLS[*]}"

# --- counters around a run -----------------------------------------------------------------
# Redis: calls per command over both servers (cmdstat_<name>:calls=N,...).
redis_calls() {
  local port
  for port in "${REDIS_PORTS[@]}"; do redis-cli -p "$port" info commandstats; done |
    tr -d '\r' | sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1 \2/p' |
    awk '{c[$1] += $2} END {for (k in c) print k, c[k]}' | sort
}
# PostgreSQL: committed transactions and inserted rows of the parley databases, summed over
# the servers. The statistics reach pg_stat_database when a backend reports them (at most
# about once a second): wait first. The query itself is a transaction of another database.
pg_counts() {
  sleep 1.5
  local port
  for port in "${PG_PORTS[@]}"; do
    psql_on "$port" -d postgres -F ' ' -c \
      "select xact_commit, tup_inserted from pg_stat_database where datname = 'parley'"
  done | awk '{x += $1; t += $2} END {printf "%d|%d\n", x, t}'
}

# cpu_ticks: CPU time (user + system, clock ticks) of every postgres, parleyd, redis-server
# and parley-bench process now, as "name ticks" lines (processes that ended are not counted:
# the servers' backends live as long as the nodes' pools).
cpu_ticks() {
  local f
  for f in /proc/[0-9]*/stat; do cat "$f" 2>/dev/null; echo; done |
    sed -n 's/^[0-9]* (\(postgres\|parleyd\|redis-server\|parley-bench\)) [A-Za-z] \(.*\)$/\1 \2/p' |
    awk '{t[$1] += $12 + $13} END {for (k in t) print k, t[k]}' | sort
}

# statements LABEL: the store's statements during the run, summed over the shards, per
# acknowledged message (the run's JSON line is the last line of bench.out).
statements() {
  local acked
  acked=$(tail -n 1 "$WORK/bench.out" | jq -r '.acked // .connections // 0' 2>/dev/null || echo 0)
  [[ $acked -gt 0 ]] || return 0
  for port in "${PG_PORTS[@]}"; do
    psql_on "$port" -d parley -F $'\t' -c "SELECT calls, total_exec_time, regexp_replace(query, '\s+', ' ', 'g') FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'parley' AND query NOT LIKE '%pg_stat_statements%'"
  done | awk -F '\t' -v n="$acked" -v label="$1" '
    { calls[$3] += $1; ms[$3] += $2; all += $1; allms += $2 }
    END {
      printf "== %s: %.1f statements per message, %.3f ms of execution per message (%d acked)\n", label, all / n, allms / n, n
      for (q in calls) printf "%8.2f %8.4f  %s\n", calls[q] / n, ms[q] / n, substr(q, 1, 150) | "sort -rn | head -n 30"
    }'
}

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
# run LABEL SCENARIO ARGS...: one parley-bench run against the three nodes; its JSON line,
# plus redis_calls (per command), pg_xact_commit, pg_tup_inserted, goes to RESULTS.
run() {
  local label=$1; shift
  local args=() a
  for a in "$@"; do
    if [[ $a == @PIDS@ ]]; then
      for p in "${NODE_PIDS[@]}"; do args+=(--server-pid "$p"); done
    else args+=("$a"); fi
  done
  echo "== $label: parley-bench $* ${URL_ARGS[*]} --jwt-secret ... --json --threads $BENCH_THREADS"
  redis_calls >"$WORK/redis.before"
  cpu_ticks >"$WORK/cpu.before"
  local pg0 pg1
  pg0=$(pg_counts)
  if [[ $PG_STATEMENTS == 1 ]]; then
    for port in "${PG_PORTS[@]}"; do psql_on "$port" -d parley -c 'SELECT pg_stat_statements_reset()' >/dev/null; done
  fi
  local rc=0
  "$BENCH" "${args[@]}" "${URL_ARGS[@]}" --jwt-secret "$SECRET" --json --threads "$BENCH_THREADS" \
    --no-progress >"$WORK/bench.out" || rc=$?
  cpu_ticks >"$WORK/cpu.after"
  pg1=$(pg_counts)
  if [[ $PG_STATEMENTS == 1 ]]; then statements "$label"; fi
  redis_calls >"$WORK/redis.after"
  local redis_json
  redis_json=$(join -a 2 -e 0 -o 0,1.2,2.2 "$WORK/redis.before" "$WORK/redis.after" |
    awk '$3 - $2 > 0 {printf "%s\"%s\":%d", n++ ? "," : "", $1, $3 - $2} END {print ""}')
  local json
  json=$(tail -n 1 "$WORK/bench.out")
  [[ $json == \{* ]] || { cat "$WORK/bench.out"; json='{}'; }
  local cpu_json hz
  hz=$(getconf CLK_TCK)
  cpu_json=$(join -a 2 -e 0 -o 0,1.2,2.2 "$WORK/cpu.before" "$WORK/cpu.after" |
    awk -v hz="$hz" '{printf "%s\"%s\":%.2f", n++ ? "," : "", $1, ($3 - $2) / hz} END {print ""}')
  echo "$json"
  jq -c --arg lbl "$label" --arg cmd "parley-bench $*" --argjson rc "$rc" \
    --argjson redis "{$redis_json}" --argjson cpu "{$cpu_json}" \
    --argjson x0 "${pg0%%|*}" --argjson x1 "${pg1%%|*}" \
    --argjson i0 "${pg0##*|}" --argjson i1 "${pg1##*|}" \
    '{"label": $lbl, "command": $cmd, "exit_code": $rc} + . +
     {"redis_calls": $redis, "redis_commands": ($redis | add // 0), "cpu_s": $cpu,
      "pg_xact_commit": ($x1 - $x0), "pg_tup_inserted": ($i1 - $i0)}' <<<"$json" >>"$RESULTS"
}

for r in $ONLY; do
  case $r in
  direct-max) run direct-max direct --pairs "$PAIRS" --rate 0 --duration "$DURATION" --window 64 ;;
  direct-rate) run "direct-$RATE" direct --pairs "$PAIRS" --rate "$RATE" --duration "$DURATION" --window 64 ;;
  group) run "group-$GROUP_MEMBERS" group --groups "$GROUP_GROUPS" --members "$GROUP_MEMBERS" \
           --rate 0 --duration "$DURATION" --senders 4 --window 16 ;;
  connections) run "connections-$((NODES * CONN_PER_NODE))" connections \
                 --count "$((NODES * CONN_PER_NODE))" --hold "$HOLD" \
                 --processes "$CONN_PROCESSES" @PIDS@ ;;
  *) echo "unknown run $r"; exit 2 ;;
  esac
done

# --- summary -------------------------------------------------------------------------------
echo
echo "== summary (3 nodes, 2 Redis, $PG_SERVERS PostgreSQL with fsync on; per message = per acked send)"
jq -r '
  def r(x): if x == null then "-" else (x * 100 | round / 100 | tostring) end;
  (if .scenario == "connections" then .connections else .acked end) as $n |
  [.label, "rc=\(.exit_code)",
   (if .scenario == "connections" then "conns \(.connections) per node \(.node_connections // [] | map(tostring) | join("/")) KiB/conn per node \(.node_server_kib_per_conn // [] | map(r(.)) | join("/"))"
    else "msg/s \(r(.messages_per_s // .throughput)) deliveries/s \(r(.throughput)) e2e p50 \(r(.e2e_p50_ms)) p99 \(r(.e2e_p99_ms)) ms lost \(.lost) dup \(.duplicated) reord \(.reordered)" end),
   "redis cmds/\(if .scenario == "connections" then "conn" else "msg" end) \(if $n > 0 then r(.redis_commands / $n) else "-" end)",
   "pg xact/msg \(if $n > 0 and .scenario != "connections" then r(.pg_xact_commit / $n) else "-" end) rows/msg \(if $n > 0 and .scenario != "connections" then r(.pg_tup_inserted / $n) else "-" end)",
   "cpu ms/\(if .scenario == "connections" then "conn" else "msg" end) \(.cpu_s | to_entries | map("\(.key) \(if $n > 0 then r(.value * 1000 / $n) else "-" end)") | join(" "))",
   "top redis: \(.redis_calls | to_entries | sort_by(-.value) | .[:4] | map("\(.key) \(if $n > 0 then r(.value / $n) else "-" end)") | join(", "))"]
  | join("  ")' "$RESULTS"
if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT"
  cat "$RESULTS" >>"$OUT/cluster-results.jsonl"
  echo "appended to $OUT/cluster-results.jsonl"
fi
