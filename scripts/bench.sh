#!/usr/bin/env bash
# Measures the performance targets of BENCHMARKS.md on this machine, in one run:
# the disk's commit ceiling, the bare HTTP baselines (GET, and POST for creates), reads and lookups
# at 10,000 and 1,000,000 users, durable creates at concurrency 32, groups, paging, the mixed
# workload's memory, restart time and data file size. Results go to $OUT (default ./bench-out).
#
# Every phase is sized by an environment variable (defaults are BENCHMARKS.md's):
#   USERS=1000000          users of the big file (reads, lookups, patches, groups, paging, mix)
#   SMALL_USERS=10000      users of the small file (reads and lookups)
#   CREATE_USERS=50000     users of the durable-create phase, at CREATE_CONCURRENCY=32
#   OPS=20000              requests of each get, lookup and patch phase
#   GROUP_COUNT=10000 GROUP_SIZE=10   groups of the big file and members of each
#   MIX_SECONDS=60         length of the mixed workload
#   FSYNC_SECONDS=10 BASELINE_SECONDS=10   the two ceilings (every *_SECONDS takes fractions: 0.5)
#   PORT=18090             where the measured server listens
#   WRITES_METRICS_PORT    where the writes rounds read the server's metrics (default PORT+1)
# A quick run that checks the script and the tools (a minute or so, figures meaningless):
#   USERS=2000 SMALL_USERS=1000 CREATE_USERS=500 OPS=500 GROUP_COUNT=20 MIX_SECONDS=2 \
#   FSYNC_SECONDS=1 BASELINE_SECONDS=1 bash scripts/bench.sh
# "bash scripts/bench.sh reads" and "... pages" repeat parts of a finished run (see below);
# "bash scripts/bench.sh feed" follows the change feed while creates run (REPEAT=3, FEED_USERS=20000).
# "... stall" measures the write stall one anonymization causes, and "... abandon" GETs behind
# abandoned listings (see there).
# "... writes" measures creates, PATCHes and member adds against the two ceilings, and the pages
# each write costs against what the disk takes for them, in rounds
# (see there; SERVER_BIN_BEFORE alternates another build).
# "... peer" runs the same load against SCIMMY (Node.js, in memory) and scimserver, alternated.
# Needs go, curl, jq and bc on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for tool in go curl jq bc; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/bench.sh needs ${missing[*]} on PATH (Debian/Ubuntu: apt-get install curl jq bc)" >&2
  exit 1
fi
OUT=${OUT:-$PWD/bench-out}
USERS=${USERS:-1000000}
SMALL_USERS=${SMALL_USERS:-10000}
CREATE_USERS=${CREATE_USERS:-50000}
CREATE_CONCURRENCY=${CREATE_CONCURRENCY:-32}
OPS=${OPS:-20000}
GROUP_COUNT=${GROUP_COUNT:-10000}
GROUP_SIZE=${GROUP_SIZE:-10}
MIX_SECONDS=${MIX_SECONDS:-60}
FSYNC_SECONDS=${FSYNC_SECONDS:-10}
BASELINE_SECONDS=${BASELINE_SECONDS:-10}
PORT=${PORT:-18090}
TOKEN=bench-token-0123456789abcdefghijklmnopqrstuvwxyz
PTOKEN=bench-platform-token-0123456789abcdefghijklmnopqrstuvwxyz
mkdir -p "$OUT/bin"
go build -o "$OUT/bin/scimserver" ./cmd/scimserver
go build -o "$OUT/bin/scimload" ./cmd/scimload
URL=http://127.0.0.1:$PORT/scim/v2
PID=

start() { # start DATAFILE: a server on $PORT over that file
  SCIMSERVER_TOKEN=$TOKEN SCIMSERVER_PLATFORM_TOKEN=$PTOKEN "${SERVER_BIN:-$OUT/bin/scimserver}" --addr 127.0.0.1:$PORT --data "$1" --log-level error ${METRICS_PORT:+--metrics-addr 127.0.0.1:$METRICS_PORT} >>"$OUT/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 500); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.01; done
  echo "server did not start; the end of its log:" >&2; tail -n 5 "$OUT/server.log" >&2; exit 1
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
    deep=$(( USERS > 10000 ? USERS - 9999 : 1 ))
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

if [ "${1:-}" = stall ]; then
  # The longest time one anonymization stops every writer: a file of STALL_USERS users (default
  # 300,000, created at c=32 the first time, then kept in $STALL_DATA), then REPEAT rounds
  # (default 3) of: restart with the whole file in the page cache (COLD=1: with the page cache
  # dropped instead, as root), learn the first 2,000 users, PATCH them at c=8 for DURATION
  # (default 40s) with one anonymization half-way. SERVER_BIN runs another build of the server
  # on the same procedure.
  STALL_DATA=${STALL_DATA:-$OUT/dstall}
  if [ ! -f "$STALL_DATA/data.db" ]; then
    rm -rf "$STALL_DATA"; start "$STALL_DATA/data.db"
    load --users "${STALL_USERS:-300000}" --create-concurrency 32 --concurrency 8 --phases create --json > "$OUT/stall-create.json"
    stop
  fi
  for i in $(seq 1 "${REPEAT:-3}"); do
    if [ -n "${COLD:-}" ]; then sync; echo 3 > /proc/sys/vm/drop_caches; else cat "$STALL_DATA/data.db" > /dev/null; fi
    start "$STALL_DATA/data.db"
    load --concurrency 8 --phases discover,stall --discover-max 2000 --duration "${DURATION:-40s}" --json > "$OUT/stall-$i.json" || true
    stop
    jq -r --arg i "$i" '.phases[] | select(.name == "stall") | "round \($i): anonymization \(.anonymizeMs*10|round/10) ms, longest write stall while it ran \(.stallMs*10|round/10) ms, elsewhere \(.baselineStallMs*10|round/10) ms (\(.baselineStallsOver50 // 0) gaps over 50 ms; windows as long elsewhere: median \((.windowStallP50Ms // 0)*10|round/10), p90 \((.windowStallP90Ms // 0)*10|round/10) ms), \(.errors) errors"' "$OUT/stall-$i.json"
  done
  ls -l "$STALL_DATA/data.db"
  exit 0
fi

if [ "${1:-}" = abandon ]; then
  # After a stall run, on its file: 40 listings sorted by an attribute no index serves, each
  # abandoned by its client after 0.3 s, then 20 GETs by id one after another (REPEAT rounds).
  STALL_DATA=${STALL_DATA:-$OUT/dstall}
  [ -f "$STALL_DATA/data.db" ] || { echo "run bash scripts/bench.sh stall first" >&2; exit 1; }
  H="Authorization: Bearer $TOKEN"
  for i in $(seq 1 "${REPEAT:-3}"); do
    start "$STALL_DATA/data.db"
    id=$(curl -s -H "$H" "$URL/Users?count=1&startIndex=$(( ${STALL_USERS:-300000} / 2 ))" | jq -r '.Resources[0].id')
    curl -s -o /dev/null -H "$H" "$URL/Users/$id"
    abandoned=()
    for _ in $(seq 40); do
      curl -s -o /dev/null --max-time 0.3 -H "$H" "$URL/Users?sortBy=name.givenName&count=1" & abandoned+=($!)
    done
    sleep 0.5
    for _ in $(seq 20); do curl -s -o /dev/null -w '%{time_total}\n' -H "$H" "$URL/Users/$id"; done | sort -n |
      awk -v i="$i" '{a[NR]=$1} END {printf "round %s: GET by id behind 40 abandoned sorted listings: median %.3f s, max %.3f s\n", i, a[int((NR+1)/2)], a[NR]}'
    wait "${abandoned[@]}" || true
    kill -9 "$PID"; wait "$PID" || true # a server that still runs the abandoned listings would not stop
  done
  exit 0
fi

if [ "${1:-}" = writes ]; then
  # The write targets, REPEAT rounds (default 3) in one sitting: in each, the two ceilings (the
  # disk's single-writer commit rate and the bare POST baseline at c=32), then a fresh server
  # per build (this one, and SERVER_BIN_BEFORE when set, alternated): WRITE_USERS users
  # (default 100,000) created at c=32, OPS Entra- and Okta-style PATCHes at c=32, then at c=8
  # WRITE_GROUPS groups (default 20) of WRITE_GROUP_SIZE members (default 1,000), added 100 per
  # PATCH. Compare each round's figures with its own ceilings, and the medians of the rounds.
  # Beside each rate, the CPU time an operation cost the server and the load's client (scimload
  # --pid; "?" where not measured), and beside the bare POST's, what a request cost its client
  # and server together (one process): with the machine's cores, these bound the rates possible.
  # For this build also: pages per write of the two loads (scimserver_store_commit_page_writes), and
  # the disk alone committing the first load's mean commit as the commit log does (scimload fsync
  # --pages --log), times the writes that commit carried: what the disk allows at that concurrency.
  METRICS_PORT=${WRITES_METRICS_PORT:-$((PORT + 1))}
  committed() { # commits, writes and pages so far: "COMMITS WRITES PAGES"
    curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | awk '$1 == "scimserver_store_commit_writes_count" {c = $2}
      $1 == "scimserver_store_commit_writes_sum" {w = $2} $1 == "scimserver_store_commit_page_writes_sum" {p = $2} END {printf "%d %d %d\n", c, w, p}'
  }
  per() { printf %.2f "$(echo "scale=4; $1 / $2" | bc)"; }
  US='def us: if . == null then "?" else floor end; '
  builds=(after)
  [ -n "${SERVER_BIN_BEFORE:-}" ] && builds=(before after)
  for i in $(seq 1 "${REPEAT:-3}"); do
    "$OUT/bin/scimload" fsync --dir "$OUT" --duration "${FSYNC_SECONDS}s" --json > "$OUT/writes-$i-fsync.json"
    "$OUT/bin/scimload" baseline --post --size 1200 --concurrency 32 --duration "${BASELINE_SECONDS}s" --json > "$OUT/writes-$i-baseline-post.json"
    line="round $i: ceiling $(jq '.phases[0].opsPerSec|floor' "$OUT/writes-$i-fsync.json") fdatasyncs/s, bare POST $(jq '.phases[0].opsPerSec|floor' "$OUT/writes-$i-baseline-post.json")/s"
    line+=" ($(jq -r "$US"'.phases[0].cpuMicrosPerOp | us' "$OUT/writes-$i-baseline-post.json") µs of CPU per request, client and server)"
    for b in "${builds[@]}"; do
      bin=$OUT/bin/scimserver; [ "$b" = before ] && bin=$SERVER_BIN_BEFORE
      rm -rf "$OUT/dwrites"; SERVER_BIN=$bin start "$OUT/dwrites/data.db"
      c0=$(committed)
      load --users "${WRITE_USERS:-100000}" --concurrency 32 --ops "$OPS" --phases create,patch-entra,patch-okta --json > "$OUT/writes-$i-$b.json"
      c1=$(committed)
      load --concurrency 8 --groups "${WRITE_GROUPS:-20}" --group-size "${WRITE_GROUP_SIZE:-1000}" --phases discover,groups --json > "$OUT/writes-$i-$b-groups.json"
      c2=$(committed)
      stop
      line+="; $b: $(jq -r "$US"'[.phases[] | "\(.name) \(.opsPerSec|floor)/s (\(.serverCpuMicrosPerOp | us) µs server, \(.cpuMicrosPerOp | us) µs client)"] | join(", ")' "$OUT/writes-$i-$b.json")"
      line+=", add-members $(jq -r '.phases[] | select(.name == "groups") | .kinds[] | select(.name == "add-members") | "\(.opsPerSec|floor)/s p50 \(.p50Ms) ms"' "$OUT/writes-$i-$b-groups.json")"
      if [ "$b" = after ]; then
        read -r n0 w0 p0 <<<"$c0"; read -r n1 w1 p1 <<<"$c1"; read -r n2 w2 p2 <<<"$c2"
        pages=$(( (p1 - p0 + (n1 - n0) / 2) / (n1 - n0) ))
        "$OUT/bin/scimload" fsync --dir "$OUT" --duration "${FSYNC_SECONDS}s" --pages "$pages" --log --json > "$OUT/writes-$i-commit.json"
        rate=$(jq '.phases[0].opsPerSec' "$OUT/writes-$i-commit.json")
        line+=", pages/write $(per $((p1 - p0)) $((w1 - w0))) and $(per $((p2 - p1)) $((w2 - w1))) (groups);"
        line+=" disk alone: $(printf %.0f "$rate") log commits/s of $pages pages = $(printf %.0f "$(echo "$rate * ($w1 - $w0) / ($n1 - $n0)" | bc -l)") writes/s at $(per $((w1 - w0)) $((n1 - n0))) writes/commit"
      fi
    done
    echo "$line"
  done
  exit 0
fi

if [ "${1:-}" = peer ]; then
  # scimserver beside a peer: SCIMMY 1.3.5 with scimmy-routers 1.3.2 on Express, keeping its data
  # in memory (scripts/scimmy/server.mjs; npm installs the packages into $OUT/scimmy). Both get the
  # same load: PEER_USERS users (default 5,000) created, then reads, lookups and PATCHes, at
  # concurrency 8, alternated REPEAT times (default 3). Needs node and npm.
  command -v node >/dev/null && command -v npm >/dev/null || { echo "bash scripts/bench.sh peer needs node and npm" >&2; exit 1; }
  mkdir -p "$OUT/scimmy"
  cp scripts/scimmy/server.mjs "$OUT/scimmy/"
  [ -d "$OUT/scimmy/node_modules/scimmy-routers" ] || (cd "$OUT/scimmy" && npm install --no-audit --no-fund --silent scimmy@1.3.5 scimmy-routers@1.3.2 express@4.21.2)
  phases=create,get,lookup-username,lookup-externalid,patch-entra,patch-okta
  for i in $(seq 1 "${REPEAT:-3}"); do
    for server in scimserver scimmy; do
      if [ "$server" = scimmy ]; then
        node "$OUT/scimmy/server.mjs" "$PORT" "$TOKEN" >>"$OUT/server.log" 2>&1 & PID=$!
        for _ in $(seq 1 500); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.01; done
      else
        rm -rf "$OUT/dpeer"; start "$OUT/dpeer/data.db"
      fi
      load --users "${PEER_USERS:-5000}" --concurrency 8 --ops "$OPS" --phases "$phases" --json > "$OUT/peer-$i-$server.json" || true
      stop
    done
    # A phase whose every answer was wrong has no rate; its requests per second are shown apart.
    jq -rs --arg i "$i" '"round \($i), scimserver vs SCIMMY: " + ([.[0].phases[] as $a | (.[1].phases[] | select(.name == $a.name)) as $b |
      "\($a.name) \($a.opsPerSec|floor)/s vs " + (if $b.errors == 0 then "\($b.opsPerSec|floor)/s (\($a.opsPerSec / $b.opsPerSec * 10 | round / 10)x)"
        else "\($b.errors) of \($b.ops) answers wrong (\($b.ops / $b.seconds | floor) req/s)" end) + (if $a.errors > 0 then ", scimserver errors \($a.errors)" else "" end)] | join("; "))' \
      "$OUT/peer-$i-scimserver.json" "$OUT/peer-$i-scimmy.json"
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
    "$OUT/bin/scimload" baseline --size 1024 --concurrency 8 --duration "${BASELINE_SECONDS}s" --json > "$OUT/reads-$i-baseline.json"
    for f in d10k dbig; do
      start "$OUT/$f/data.db"
      load --concurrency 8 --ops "$OPS" --phases discover,get,lookup-username,lookup-externalid --json > "$OUT/reads-$i-$f.json"
      stop
    done
    jq -rs --arg i "$i" '"round \($i): baseline \(.[0].phases[0].opsPerSec|floor) req/s; " + ([.[1:][] | [.users, (.phases[1:][] | "\(.name) \(.opsPerSec|floor)")] | map(tostring) | join(" ")] | join("; "))' \
      "$OUT/reads-$i-baseline.json" "$OUT/reads-$i-d10k.json" "$OUT/reads-$i-dbig.json"
  done
  exit 0
fi

echo "== commit ceiling of the data file's file system (write + fdatasync, one writer)"
"$OUT/bin/scimload" fsync --dir "$OUT" --duration "${FSYNC_SECONDS}s" --json > "$OUT/fsync.json"
echo "== bare net/http baseline: fixed 1 KiB response, concurrency 8"
"$OUT/bin/scimload" baseline --size 1024 --concurrency 8 --duration "${BASELINE_SECONDS}s" --json > "$OUT/baseline.json"
echo "== bare net/http baseline for creates: the create phase's bodies read, a fixed 1.2 KiB 201, concurrency 32"
"$OUT/bin/scimload" baseline --post --size 1200 --concurrency 32 --duration "${BASELINE_SECONDS}s" --json > "$OUT/baseline-post.json"

echo "== $SMALL_USERS users: GET by id and lookups at concurrency 8"
rm -rf "$OUT/d10k"; start "$OUT/d10k/data.db"
load --users "$SMALL_USERS" --concurrency 8 --ops "$OPS" --phases create,get,lookup-username,lookup-externalid --data-file "$OUT/d10k/data.db" --json > "$OUT/users10k.json"
stop

echo "== $CREATE_USERS durable creates at concurrency $CREATE_CONCURRENCY"
rm -rf "$OUT/dcreate"; start "$OUT/dcreate/data.db"
load --users "$CREATE_USERS" --concurrency "$CREATE_CONCURRENCY" --phases create --data-file "$OUT/dcreate/data.db" --json > "$OUT/create32.json"
stop

echo "== $USERS users and $GROUP_COUNT groups: reads, lookups, patches, groups, paging, mixed workload"
rm -rf "$OUT/dbig"; start "$OUT/dbig/data.db"
load --users "$USERS" --create-concurrency "$CREATE_CONCURRENCY" --concurrency 8 --ops "$OPS" --groups "$GROUP_COUNT" \
  --group-size "$GROUP_SIZE" --duration "${MIX_SECONDS}s" --data-file "$OUT/dbig/data.db" --json > "$OUT/users-big.json"
stop

echo "== restart on the big file: time to ready, then cold pages"
restart_and_pages
ls -l "$OUT/dbig/data.db" > "$OUT/size.txt"
echo "results in $OUT"
