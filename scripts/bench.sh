#!/usr/bin/env bash
# Measures the performance targets of BENCHMARKS.md on this machine, in one run:
# the disk's commit ceiling, the bare HTTP baselines (GET, and POST for creates), reads and lookups at 10,000 and 1,000,000
# users, durable creates at concurrency 32, groups, paging, the mixed workload's memory,
# restart time and data file size. Results go to $OUT (default ./bench-out).
# USERS=1000000 by default; USERS=100000 for a quicker run.
# `bash scripts/bench.sh feed`: the change feed followed while creates run (see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/bench-out}
USERS=${USERS:-1000000}
PORT=${PORT:-18090}
TOKEN=bench-token-0123456789abcdefghijklmnopqrstuvwxyz
PTOKEN=bench-platform-token-0123456789abcdefghijklmnopqrstuvwxyz
mkdir -p "$OUT/bin"
go build -o "$OUT/bin/scimserver" ./cmd/scimserver
go build -o "$OUT/bin/scimload" ./cmd/scimload
URL=http://127.0.0.1:$PORT/scim/v2
PID=

start() { # start DATAFILE: a server on $PORT over that file
  SCIMSERVER_TOKEN=$TOKEN SCIMSERVER_PLATFORM_TOKEN=$PTOKEN "$OUT/bin/scimserver" --addr 127.0.0.1:$PORT --data "$1" --log-level error >>"$OUT/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 500); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.01; done
  echo "server did not start" >&2; exit 1
}
stop() { kill -TERM "$PID"; wait "$PID" || true; }
load() { SCIMLOAD_TOKEN=$TOKEN "$OUT/bin/scimload" --url "$URL" --pid "$PID" --seed 1 "$@"; }
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null || true' EXIT

restart_and_pages() { # restart on the big file: time to ready, then cold and repeated pages
  if [ -n "${COLD:-}" ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi # COLD=1 (root): from disk, not the page cache
  t0=$(date +%s.%N); start "$OUT/dbig/data.db"; t1=$(date +%s.%N)
  echo "{\"restartSeconds\": $(echo "$t1 - $t0" | bc)}" > "$OUT/restart.json"
  page() { curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "$URL/Users?startIndex=$1&count=100"; }
  {
    echo "first page (cold):   $(page 1)"
    echo "first page (warm):   $(page 1)"
    deep=$(( USERS - 9999 ))
    echo "page $deep (cold): $(page $deep)"
    echo "page $deep (again): $(page $deep)"
    echo "page $(( USERS / 2 + 1 )) (cold): $(page $(( USERS / 2 + 1 )))"
    echo "page $(( USERS * 3 / 4 + 1 )) (cold): $(page $(( USERS * 3 / 4 + 1 )))"
  } > "$OUT/pages.txt"
  stop
}

if [ "${1:-}" = pages ]; then # after a full run: restart and cold pages only
  restart_and_pages
  cat "$OUT/restart.json" "$OUT/pages.txt"
  exit 0
fi

if [ "${1:-}" = feed ]; then
  # The change feed followed by a long poll and an event stream while 20,000 users are created
  # at concurrency 32 on a fresh server, alternated REPEAT times (default 3) with the same
  # creates unfollowed: delivery rate and latency, and what following costs the creates.
  for i in $(seq 1 "${REPEAT:-3}"); do
    for mode in followed alone; do
      rm -rf "$OUT/dfeed"; start "$OUT/dfeed/data.db"
      flags=(); [ "$mode" = followed ] && flags=(--feed-token "$PTOKEN")
      load --users "${FEED_USERS:-20000}" --concurrency 32 --phases create "${flags[@]}" --json > "$OUT/feed-$i-$mode.json"
      stop
    done
    jq -r --arg i "$i" '"round \($i) followed: creates \(.phases[0].opsPerSec|floor)/s; " + ([.feed[] | "\(.mode) \(.changes) delivered at \(.changesPerSec|floor)/s, from commit p50 \(.fromCommitP50Ms) p99 \(.fromCommitP99Ms) ms, from 201 p50 \(.fromAckP50Ms) p99 \(.fromAckP99Ms) ms"] | join("; "))' "$OUT/feed-$i-followed.json"
    jq -r --arg i "$i" '"round \($i) alone: creates \(.phases[0].opsPerSec|floor)/s"' "$OUT/feed-$i-alone.json"
  done
  exit 0
fi

if [ "${1:-}" = reads ]; then
  # After a full run: the bare HTTP baseline, then reads at 10,000 users and on the big file,
  # alternated REPEAT times (default 5), because the machine's noise moves all three between
  # minutes: compare the medians of the rounds. Each server's users are learned by the discover
  # phase (a walk through every page), so the files are not built again.
  [ -f "$OUT/dbig/data.db" ] && [ -f "$OUT/d10k/data.db" ] || { echo "run bash scripts/bench.sh first" >&2; exit 1; }
  for i in $(seq 1 "${REPEAT:-5}"); do
    "$OUT/bin/scimload" baseline --size 1024 --concurrency 8 --duration 5s --json > "$OUT/reads-$i-baseline.json"
    for f in d10k dbig; do
      start "$OUT/$f/data.db"
      load --concurrency 8 --ops 20000 --phases discover,get,lookup-username,lookup-externalid --json > "$OUT/reads-$i-$f.json"
      stop
    done
    jq -rs --arg i "$i" '"round \($i): baseline \(.[0].phases[0].opsPerSec|floor) req/s; " + ([.[1:][] | [.users, (.phases[1:][] | "\(.name) \(.opsPerSec|floor)")] | map(tostring) | join(" ")] | join("; "))' \
      "$OUT/reads-$i-baseline.json" "$OUT/reads-$i-d10k.json" "$OUT/reads-$i-dbig.json"
  done
  exit 0
fi

echo "== commit ceiling of the data file's file system (write + fdatasync, one writer)"
"$OUT/bin/scimload" fsync --dir "$OUT" --duration 10s --json > "$OUT/fsync.json"
echo "== bare net/http baseline: fixed 1 KiB response, concurrency 8"
"$OUT/bin/scimload" baseline --size 1024 --concurrency 8 --duration 10s --json > "$OUT/baseline.json"
echo "== bare net/http baseline for creates: the create phase's bodies read, a fixed 1.2 KiB 201, concurrency 32"
"$OUT/bin/scimload" baseline --post --size 1200 --concurrency 32 --duration 10s --json > "$OUT/baseline-post.json"

echo "== 10,000 users: GET by id and lookups at concurrency 8"
rm -rf "$OUT/d10k"; start "$OUT/d10k/data.db"
load --users 10000 --concurrency 8 --ops 20000 --phases create,get,lookup-username,lookup-externalid --data-file "$OUT/d10k/data.db" --json > "$OUT/users10k.json"
stop

echo "== durable creates at concurrency 32"
rm -rf "$OUT/dcreate"; start "$OUT/dcreate/data.db"
load --users 50000 --concurrency 32 --phases create --data-file "$OUT/dcreate/data.db" --json > "$OUT/create32.json"
stop

echo "== $USERS users and 10,000 groups: reads, lookups, patches, groups, paging, mixed workload"
rm -rf "$OUT/dbig"; start "$OUT/dbig/data.db"
load --users "$USERS" --create-concurrency 32 --concurrency 8 --ops 20000 --groups 10000 --group-size 10 \
  --duration 60s --data-file "$OUT/dbig/data.db" --json > "$OUT/users-big.json"
stop

echo "== restart on the big file: time to ready, then cold pages"
restart_and_pages
ls -l "$OUT/dbig/data.db" > "$OUT/size.txt"
echo "results in $OUT"
