#!/usr/bin/env bash
# Reproduces docs/BENCHMARKS.md: builds the build users get (`make run`: RelWithDebInfo, -O3
# -g1, in build/), runs the scenario matrix
# of issue 3 against a fresh parleyd per run (bench/parleyd-bench.toml: default fsync
# durability, rate limits raised), collects parley-bench's JSON lines in
# docs/bench/results.jsonl and draws docs/bench/*.png with gnuplot.
#
#   tools/bench.sh                 # everything (about 12 minutes on 2 cores)
#   ONLY="direct" tools/bench.sh   # one family: connections | direct | sync | group | presence
#   PROFILE=1 tools/bench.sh       # also perf-record parleyd during direct at max rate
#
# Knobs (environment): HOLD_LARGE (60) HOLD_SMALL (15) DURATION (20) PAIRS (100)
# SYNC_DEVICES (10000) SYNC_MISSED (100) CONN_COUNTS ("1000 5000 19000")
# DIRECT_RATES ("5000 20000 50000 0") BENCH_THREADS (0 = parley-bench's default)
# GROUP_SIZES ("10 100 1000") GROUP_WINDOWS ("2 4": extra 100-member runs) PRESENCE_USERS (5000) PRESENCE_CONTACTS (20)
# PRESENCE_CHURN (200) PARLEYD (a prebuilt server binary instead of building one)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
OUT=${OUT:-$ROOT/docs/bench}
ONLY=${ONLY:-connections direct sync group presence}
GROUP_SIZES=${GROUP_SIZES:-10 100 1000}
GROUP_WINDOWS=${GROUP_WINDOWS:-2 4}
PRESENCE_USERS=${PRESENCE_USERS:-5000}
PRESENCE_CONTACTS=${PRESENCE_CONTACTS:-20}
PRESENCE_CHURN=${PRESENCE_CHURN:-200}
HOLD_LARGE=${HOLD_LARGE:-60}
HOLD_SMALL=${HOLD_SMALL:-15}
DURATION=${DURATION:-20}
PAIRS=${PAIRS:-100}
SYNC_DEVICES=${SYNC_DEVICES:-10000}
SYNC_MISSED=${SYNC_MISSED:-100}
CONN_COUNTS=${CONN_COUNTS:-1000 5000 19000}
DIRECT_RATES=${DIRECT_RATES:-5000 20000 50000 0}
BENCH_THREADS=${BENCH_THREADS:-0}
PROFILE=${PROFILE:-0}
CONFIG=$ROOT/bench/parleyd-bench.toml

need() {  # need COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null && return
  echo "installing $2"
  if [[ $(id -u) == 0 ]]; then apt-get install -y -q "$2" >/dev/null
  else sudo apt-get install -y -q "$2" >/dev/null; fi
}
need gnuplot gnuplot-nox
need jq jq
need cmake cmake
need ninja ninja-build

echo "== building RelWithDebInfo (what make run builds) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# PARLEYD=/path/to/parleyd benchmarks that binary instead of building one.
if [[ -n ${PARLEYD:-} ]]; then
  nice -n 10 ninja -C "$BUILD" parley-bench
else
  nice -n 10 ninja -C "$BUILD" parleyd parley-bench
  PARLEYD=$BUILD/src/parleyd/parleyd
fi
BENCH=$BUILD/bench/parley-bench
SECRET=$(sed -n 's/^jwt_hs256_secret *= *"\(.*\)"/\1/p' "$CONFIG")

mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
WORK=$(mktemp -d -t parley-bench.XXXXXX)
SERVER_PID=
PERF_PID=
stop_server() {
  if [[ -n $PERF_PID ]]; then kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=; fi
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
trap 'stop_server; rm -rf "$WORK"' EXIT INT TERM

# start_server: a fresh parleyd with an empty data directory; sets URL and SERVER_PID.
start_server() {
  rm -rf "$WORK/data" "$WORK/out"
  # Both processes get the hard descriptor limit (20,000 here) as their soft limit.
  ( ulimit -n "$(ulimit -Hn)"; exec "$PARLEYD" --listen 127.0.0.1:0 --data-dir "$WORK/data" \
      --config "$CONFIG" >"$WORK/out" 2>>"$WORK/parleyd.err" ) &
  SERVER_PID=$!
  local port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/out" 2>/dev/null || true)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { echo "parleyd did not start"; cat "$WORK/parleyd.err"; exit 1; }
  URL=ws://127.0.0.1:$port
}

# bench LABEL SCENARIO ARGS...: one run on a fresh server; appends {"label":..., ...} to RESULTS.
bench() {
  local label=$1; shift
  start_server
  if [[ $PROFILE == 1 && $label == direct-max ]] && command -v perf >/dev/null; then
    perf record -F 999 -g -p "$SERVER_PID" -o "$OUT/perf-direct-max.data" 2>/dev/null &
    PERF_PID=$!
  fi
  local args=() a
  for a in "$@"; do [[ $a == @PID@ ]] && args+=("$SERVER_PID") || args+=("$a"); done
  local cmd=("$BENCH" "${args[@]}" --url "$URL" --jwt-secret "$SECRET" --json --threads "$BENCH_THREADS")
  echo "== $label: parley-bench $* --url ws://127.0.0.1:PORT --jwt-secret ... --json"
  local rc=0
  "${cmd[@]}" >"$WORK/bench.out" || rc=$?
  stop_server
  local json
  json=$(tail -n 1 "$WORK/bench.out")
  echo "$json"
  jq -c --arg lbl "$label" --arg cmd "parley-bench $*" --argjson rc "$rc" \
    '{"label": $lbl, "command": $cmd, "exit_code": $rc} + .' <<<"$json" >>"$RESULTS"
}

# Keep the results of the families not rerun.
touch "$RESULTS"
jq -c --arg only "$ONLY" 'select(.scenario as $s | ($only | split(" ") | index($s)) | not)' \
  "$RESULTS" >"$WORK/keep.jsonl"
mv "$WORK/keep.jsonl" "$RESULTS"

for family in $ONLY; do
  case $family in
  connections)
    for n in $CONN_COUNTS; do
      hold=$HOLD_SMALL; ((n >= 19000)) && hold=$HOLD_LARGE
      bench "connections-$n" connections --count "$n" --hold "$hold" --server-pid @PID@
    done ;;
  direct)
    for r in $DIRECT_RATES; do
      label=direct-$r; ((r == 0)) && label=direct-max
      bench "$label" direct --pairs "$PAIRS" --rate "$r" --duration "$DURATION" --window 64
    done ;;
  sync)
    bench "sync-$SYNC_DEVICES-$SYNC_MISSED" sync --devices "$SYNC_DEVICES" --missed "$SYNC_MISSED" ;;
  group)
    # As fast as the per-group window allows; about 1,000 members in all per run, so that
    # every size runs with the same number of connections (1,000 members: a large group).
    for m in $GROUP_SIZES; do
      g=$(( m >= 1000 ? 1 : 1000 / m )); ((g > 10)) && g=10
      bench "group-$m" group --groups "$g" --members "$m" --rate 0 --duration "$DURATION" --senders 4 --window 16
    done
    # The latency side of the target: 100 members with fewer messages in flight per group.
    for w in $GROUP_WINDOWS; do
      bench "group-100-w$w" group --groups 10 --members 100 --rate 0 --duration "$DURATION" --senders 4 --window "$w"
    done ;;
  presence)
    # N users watching K contacts each: a steady churn of R reconnects/s, then (a separate
    # run) every user going offline and coming back at once. Figures against the server's
    # presence.batch_ms (default 1000 ms, which --batch-ms must match).
    bench "presence-churn-$PRESENCE_USERS" presence --users "$PRESENCE_USERS" \
      --contacts "$PRESENCE_CONTACTS" --churn "$PRESENCE_CHURN" --duration "$DURATION" \
      --batch-check --server-pid @PID@
    bench "presence-mass-$PRESENCE_USERS" presence --users "$PRESENCE_USERS" \
      --contacts "$PRESENCE_CONTACTS" --churn 0 --mass --batch-check --server-pid @PID@ ;;
  esac
done

# --- curves ---------------------------------------------------------------------------
jq -r 'select(.scenario=="direct") | [(if .offered_rate==0 then .throughput else .offered_rate end)/1000,
  .throughput/1000, .e2e_p50_ms, .e2e_p90_ms, .e2e_p99_ms, .e2e_p999_ms, .ack_p99_ms] | @tsv' \
  "$RESULTS" | sort -n >"$WORK/direct.dat"
jq -r 'select(.scenario=="group" and .window==16) | [.members, .throughput/1000, .e2e_p50_ms, .e2e_p99_ms] | @tsv' \
  "$RESULTS" | sort -n >"$WORK/group.dat"
jq -r 'select(.scenario=="connections") | [.connections, .server_rss_held_kib/1024,
  .server_kib_per_conn, .connect_rate] | @tsv' "$RESULTS" | sort -n >"$WORK/conn.dat"

if [[ -s $WORK/direct.dat ]]; then
  gnuplot <<GP
set terminal pngcairo size 900,560 font "sans,11"
set output "$OUT/direct-latency.png"
set title "direct: end-to-end latency against offered rate (fsync group commit, 2 cores)"
set xlabel "offered rate, thousand messages/s (max: achieved)"
set ylabel "latency, ms"
set logscale y
set grid
set key top left
plot "$WORK/direct.dat" using 1:3 with linespoints title "p50", \
     "" using 1:4 with linespoints title "p90", \
     "" using 1:5 with linespoints title "p99", \
     "" using 1:6 with linespoints title "p99.9", \
     5 with lines dashtype 2 lc rgb "red" title "target p99 at 20k/s"
set output "$OUT/direct-throughput.png"
set title "direct: delivered against offered rate"
unset logscale y
set ylabel "delivered, thousand messages/s"
plot "$WORK/direct.dat" using 1:2 with linespoints title "delivered", x with lines dashtype 2 title "offered", \
     50 with lines dashtype 3 lc rgb "red" title "target 50k/s"
GP
fi
if [[ -s $WORK/conn.dat ]]; then
  gnuplot <<GP
set terminal pngcairo size 900,560 font "sans,11"
set output "$OUT/connections-memory.png"
set title "connections: server memory against idle authenticated connections"
set xlabel "connections"
set ylabel "server RSS, MiB"
set y2label "KiB per connection"
set ytics nomirror
set y2tics
set y2range [0:8]
set grid
set key top left
plot "$WORK/conn.dat" using 1:2 with linespoints title "RSS (MiB)", \
     "" using 1:3 axes x1y2 with linespoints title "KiB/connection", \
     4 axes x1y2 with lines dashtype 2 lc rgb "red" title "target 4 KiB/conn"
GP
fi

if [[ -s $WORK/group.dat ]]; then
  gnuplot <<GP
set terminal pngcairo size 900,560 font "sans,11"
set output "$OUT/group-deliveries.png"
set title "group: deliveries/s against group size (1,000 members, at most 10 groups)"
set xlabel "members per group"
set logscale x
set ylabel "thousand deliveries/s"
set y2label "e2e latency, ms"
set ytics nomirror
set y2tics
set grid
set key top left
plot "$WORK/group.dat" using 1:2 with linespoints title "deliveries/s (thousands)", \
     "" using 1:4 axes x1y2 with linespoints title "e2e p99 (ms)", \
     "" using 1:3 axes x1y2 with linespoints title "e2e p50 (ms)"
GP
fi

if [[ $PROFILE == 1 && -f $OUT/perf-direct-max.data ]]; then
  {
    echo "# parleyd during direct at max rate: perf record -F 999 -g; self time by symbol"
    perf report -i "$OUT/perf-direct-max.data" --no-children --sort dso,symbol --stdio -g none \
      2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c1-160 | head -40
    echo; echo "# inclusive time (children) by symbol"
    perf report -i "$OUT/perf-direct-max.data" --children --sort symbol --stdio -g none \
      2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c1-160 | head -60
  } >"$OUT/perf-direct-max.txt" || true
  rm -f "$OUT/perf-direct-max.data"
fi
echo "results: $RESULTS; images: $OUT/*.png"
