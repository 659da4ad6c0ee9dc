#!/usr/bin/env bash
# Measures scimserver on PostgreSQL against PostgreSQL's own ceiling on this machine (pgbench
# with the same shape of work), and against the bbolt engine, REPEAT times (default 3):
#   creates: pgbench inserting one ~1 KiB JSON document per transaction at 32 clients, then
#            POST /Users at concurrency 32 on PostgreSQL, then the same on bbolt
#   reads:   pgbench selecting one document by primary key at 8 clients, then GET /Users/{id} at
#            concurrency 8 on PostgreSQL, then the same on bbolt
#   replicas: GET /Users/{id} at concurrency 16 against one PostgreSQL server, then split over two
# Needs go, jq, pgbench and psql on PATH, and a PostgreSQL server: PGURL (default the local one,
# database test, as root). Each round uses fresh schemas, dropped at the end. Results: $OUT
# (default ./bench-pg-out).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/bench-pg-out}
PGURL=${PGURL:-postgres://root@127.0.0.1:5432/test?sslmode=disable}
REPEAT=${REPEAT:-3}
CREATES=${CREATES:-20000}
OPS=${OPS:-20000}
SECONDS_EACH=${SECONDS_EACH:-20}
PORT=${PORT:-18301}
TOKEN=bench-token-0123456789abcdefghijklmnopqrstuvwxyz
mkdir -p "$OUT/bin"
go build -o "$OUT/bin/scimserver" ./cmd/scimserver
go build -o "$OUT/bin/scimload" ./cmd/scimload
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

start() { # start PORT DATA
  SCIMSERVER_TOKEN=$TOKEN "$OUT/bin/scimserver" --addr 127.0.0.1:$1 --data "$2" --log-level error >>"$OUT/server.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 1000); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.01; done
  echo "server did not start" >&2; exit 1
}
stop_all() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
load() { # load PORT args...: scimload against the server on PORT
  local port=$1; shift
  SCIMLOAD_TOKEN=$TOKEN "$OUT/bin/scimload" --url "http://127.0.0.1:$port/scim/v2" --seed 1 --json "$@"
}
rate() { jq -r '.phases[] | select(.name == "'"$1"'") | .opsPerSec | floor' "$2"; }
schema_url() { # the URL of a fresh schema
  psql -q "$PGURL" -c "DROP SCHEMA IF EXISTS $1 CASCADE; CREATE SCHEMA $1"
  echo "$PGURL&search_path=$1"
}
pgbench_tps() { grep -oE 'tps = [0-9.]+' "$1" | head -1 | grep -oE '[0-9.]+' | cut -d. -f1; }

# pgbench's documents: the size of a created user's stored document (about 1 KiB).
DOC=$(printf '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"%0900d@example.com"}' 0)
cat > "$OUT/insert.sql" <<SQL
INSERT INTO bench_raw.docs (doc) VALUES (convert_to('$DOC', 'UTF8'));
SQL
cat > "$OUT/select.sql" <<'SQL'
\set id random(1, 20000)
SELECT doc FROM bench_raw.docs WHERE id = :id;
SQL

for i in $(seq 1 "$REPEAT"); do
  psql -q "$PGURL" -c "DROP SCHEMA IF EXISTS bench_raw CASCADE; CREATE SCHEMA bench_raw;
    CREATE TABLE bench_raw.docs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, doc bytea NOT NULL)"
  pgbench -n -c 32 -j 2 -T "$SECONDS_EACH" -f "$OUT/insert.sql" "$PGURL" > "$OUT/pgbench-insert-$i.txt"
  pgbench -n -c 8 -j 2 -T "$SECONDS_EACH" -f "$OUT/select.sql" "$PGURL" > "$OUT/pgbench-select-$i.txt"

  start $PORT "$(schema_url bench_pg)"
  load $PORT --users "$CREATES" --concurrency 32 --phases create > "$OUT/pg-create-$i.json"
  load $PORT --users "$CREATES" --concurrency 8 --ops "$OPS" --phases discover,get > "$OUT/pg-get-$i.json"
  load $PORT --users "$CREATES" --concurrency 16 --ops "$OPS" --phases discover,get > "$OUT/pg-get16-one-$i.json"
  start $((PORT + 1)) "$PGURL&search_path=bench_pg"
  load $PORT --users "$CREATES" --concurrency 8 --ops $((OPS / 2)) --phases discover,get > "$OUT/pg-get16-a-$i.json" &
  a=$!
  load $((PORT + 1)) --users "$CREATES" --concurrency 8 --ops $((OPS / 2)) --phases discover,get > "$OUT/pg-get16-b-$i.json"
  wait $a
  stop_all

  rm -rf "$OUT/dbolt"
  start $PORT "$OUT/dbolt/data.db"
  load $PORT --users "$CREATES" --concurrency 32 --phases create > "$OUT/bolt-create-$i.json"
  load $PORT --users "$CREATES" --concurrency 8 --ops "$OPS" --phases discover,get > "$OUT/bolt-get-$i.json"
  stop_all

  echo "round $i: pgbench insert c=32 $(pgbench_tps "$OUT/pgbench-insert-$i.txt") tps;" \
    "POST /Users c=32 postgres $(rate create "$OUT/pg-create-$i.json")/s, bbolt $(rate create "$OUT/bolt-create-$i.json")/s;" \
    "pgbench select c=8 $(pgbench_tps "$OUT/pgbench-select-$i.txt") tps;" \
    "GET /Users/{id} c=8 postgres $(rate get "$OUT/pg-get-$i.json")/s, bbolt $(rate get "$OUT/bolt-get-$i.json")/s;" \
    "GET c=16 one server $(rate get "$OUT/pg-get16-one-$i.json")/s, two servers $(rate get "$OUT/pg-get16-a-$i.json")/s + $(rate get "$OUT/pg-get16-b-$i.json")/s" |
    tee -a "$OUT/summary.txt"
done
psql -q "$PGURL" -c "DROP SCHEMA IF EXISTS bench_raw CASCADE; DROP SCHEMA IF EXISTS bench_pg CASCADE"
