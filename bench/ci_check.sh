#!/usr/bin/env bash
# Short correctness run of parley-bench against a real parleyd (CTest: parley_bench_ci).
# Runs every supported scenario briefly and asserts lost = duplicated = reordered = 0 and
# no failed connection. Usage: ci_check.sh PARLEYD PARLEY_BENCH
set -euo pipefail

PARLEYD=${1:?usage: ci_check.sh PARLEYD PARLEY_BENCH}
BENCH=${2:?usage: ci_check.sh PARLEYD PARLEY_BENCH}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d -t parley-bench-ci.XXXXXX)
SERVER_PID=

cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

SECRET=$(sed -n 's/^jwt_hs256_secret *= *"\(.*\)"/\1/p' "$HERE/parleyd-bench.toml")
"$PARLEYD" --listen 127.0.0.1:0 --data-dir "$WORK/data" --config "$HERE/parleyd-bench.toml" \
  >"$WORK/parleyd.out" 2>"$WORK/parleyd.err" &
SERVER_PID=$!
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/parleyd.out")
  [[ -n $PORT ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/parleyd.err" >&2; exit 1; }
  sleep 0.1
done
[[ -n $PORT ]] || { echo "parleyd did not start" >&2; cat "$WORK/parleyd.err" >&2; exit 1; }
URL=ws://127.0.0.1:$PORT
failures=0

# field NAME JSON: the integer value of "NAME" in the JSON line.
field() { grep -o "\"$1\":[0-9]*" <<<"$2" | head -1 | cut -d: -f2; }

run() {
  local name=$1; shift
  echo "== $name: parley-bench $*"
  local out rc=0
  out=$("$BENCH" "$@" --url "$URL" --jwt-secret "$SECRET" --json --no-progress 2>"$WORK/err") || rc=$?
  local json
  json=$(tail -n 1 <<<"$out")
  echo "$json"
  local bad=0
  for key in lost duplicated reordered failed; do
    local v
    v=$(field "$key" "$json")
    if [[ $v != 0 ]]; then echo "FAIL $name: $key = ${v:-missing}"; bad=1; fi
  done
  if [[ $rc != 0 ]]; then echo "FAIL $name: exit code $rc"; cat "$WORK/err"; bad=1; fi
  failures=$((failures + bad))
}

run connections-200 connections --count 200 --hold 3 --heartbeat 1 --server-pid "$SERVER_PID"
# The same shared by three forked processes (how 50,000 fit under 20,000 descriptors each).
run connections-3x connections --count 301 --processes 3 --hold 2 --heartbeat 1 \
  --server-pid "$SERVER_PID"
run direct-paced direct --pairs 20 --rate 2000 --duration 3 --warmup 0.5
run direct-max direct --pairs 10 --rate 0 --window 32 --duration 2 --warmup 0.5
run sync sync --devices 200 --missed 20 --devices-per-user 2 --senders 4 --page 7

run group-10 group --groups 2 --members 10 --rate 2000 --duration 3 --warmup 0.5
run group-large group --groups 1 --members 300 --rate 100 --duration 2 --warmup 0.5
# Presence: churn then a mass reconnect; lost = watchers left with a wrong state, and
# --batch-check fails on a connection that got more than one push per batch window.
run presence presence --users 50 --contacts 5 --churn 10 --duration 3 --mass --mass-pause-ms 1000 \
  --batch-check --server-pid "$SERVER_PID"

echo "== refusing a non-loopback --url"
if "$BENCH" direct --url ws://192.0.2.1:80 --jwt-secret x --duration 1 2>/dev/null; then
  echo "FAIL: a non-loopback target was accepted"; failures=$((failures + 1))
fi

kill -0 "$SERVER_PID" 2>/dev/null || { echo "FAIL: parleyd died"; cat "$WORK/parleyd.err"; failures=$((failures + 1)); }
if ((failures)); then echo "$failures check(s) failed"; exit 1; fi
echo "all parley-bench checks passed"
