#!/usr/bin/env bash
# `make bench`: release builds of identity and the gateway on this machine,
# a fresh database, and the load generator (on the same cores) for each
# scenario. Results go into docs/benchmarks.md between the BENCH markers.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${CARGO_TARGET_DIR:=/var/tmp/aichat-target}"
: "${PG_URL:=postgres://postgres@127.0.0.1:5432}"
: "${BENCH_DB:=aichat_bench_identity}"
: "${BENCH_SECONDS:=20}"
: "${BENCH_CONCURRENCY:=32}"
: "${BENCH_HTTP_ADDR:=127.0.0.1:18080}"
: "${BENCH_GRPC_ADDR:=127.0.0.1:50151}"
export CARGO_TARGET_DIR

log() { printf '\033[1;35m[bench]\033[0m %s\n' "$*" >&2; }

log "building release binaries"
cargo build --release -q -p aichat-identity -p aichat-gateway -p aichat-loadgen
bin="$CARGO_TARGET_DIR/release"

psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)"
psql "$PG_URL/postgres" -qc "CREATE DATABASE $BENCH_DB"

run_dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" || true
  rm -rf "$run_dir"
}
trap cleanup EXIT

export RUST_LOG=warn AMQP_EXCHANGE="aichat.bench" MAIL_TRANSPORT=file MAIL_DIR="$run_dir/mail"
"$bin/identity" keygen >"$run_dir/jwt.pem"
DATABASE_URL="$PG_URL/$BENCH_DB" GRPC_ADDR="$BENCH_GRPC_ADDR" JWT_PRIVATE_KEY_FILE="$run_dir/jwt.pem" \
  "$bin/identity" serve &
pids+=($!)
HTTP_ADDR="$BENCH_HTTP_ADDR" IDENTITY_GRPC_URL="http://$BENCH_GRPC_ADDR" RATE_LIMIT_MULTIPLIER=0 \
  "$bin/gateway" serve &
pids+=($!)
for _ in $(seq 1 120); do
  curl -fsS "http://$BENCH_HTTP_ADDR/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done

results=()
for scenario in me login refresh; do
  log "scenario $scenario: concurrency $BENCH_CONCURRENCY for ${BENCH_SECONDS}s"
  line=$("$bin/loadgen" --base "http://$BENCH_HTTP_ADDR" --scenario "$scenario" \
    --concurrency "$BENCH_CONCURRENCY" --duration "$BENCH_SECONDS")
  log "$line"
  results+=("$line")
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
table=$(printf '%s\n' "${results[@]}" | python3 -c '
import json, sys
print("| scenario | concurrency | seconds | requests/s | p50 ms | p90 ms | p99 ms | errors |")
print("|---|---|---|---|---|---|---|---|")
for line in sys.stdin:
    r = json.loads(line)
    print("| {scenario} | {concurrency} | {seconds} | {rps:.0f} | {p50_ms:.2f} | {p90_ms:.2f} | {p99_ms:.2f} | {errors} |".format(**r))
')
block=$(cat <<MD
<!-- BENCH:accounts:start -->
Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB,
load generator on the same cores; release builds; \`make bench\`.

$table
<!-- BENCH:accounts:end -->
MD
)
python3 - "$block" <<'PY'
import re, sys, pathlib
path = pathlib.Path("docs/benchmarks.md")
text = path.read_text() if path.exists() else "# Benchmarks\n"
block = sys.argv[1]
pattern = re.compile(r"<!-- BENCH:accounts:start -->.*?<!-- BENCH:accounts:end -->", re.S)
text = pattern.sub(block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
path.write_text(text)
PY
log "results written to docs/benchmarks.md"
