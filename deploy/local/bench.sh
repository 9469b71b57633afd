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
cargo build --release -q -p aichat-identity -p aichat-gateway -p aichat-loadgen -p aichat-chat -p aichat-billing -p aichat-mockllm
bin="$CARGO_TARGET_DIR/release"

for db in $BENCH_DB aichat_bench_chat aichat_bench_billing; do
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  psql "$PG_URL/postgres" -qc "CREATE DATABASE $db"
done

run_dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  for db in $BENCH_DB aichat_bench_chat aichat_bench_billing; do
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  done
  rm -rf "$run_dir"
}
trap cleanup EXIT

export RUST_LOG=warn AMQP_EXCHANGE="aichat.bench" MAIL_TRANSPORT=file MAIL_DIR="$run_dir/mail"
"$bin/identity" keygen >"$run_dir/jwt.pem"
DATABASE_URL="$PG_URL/$BENCH_DB" GRPC_ADDR="$BENCH_GRPC_ADDR" JWT_PRIVATE_KEY_FILE="$run_dir/jwt.pem" \
  "$bin/identity" serve &
pids+=($!)
# The chat path: a mock provider with a fixed latency (50 ms to the first
# token, then 20 tokens 5 ms apart), billing and chat.
: "${BENCH_MOCK_ADDR:=127.0.0.1:18090}"
MOCK_ADDR="$BENCH_MOCK_ADDR" MOCK_TTFT_MS=50 MOCK_TOKEN_DELAY_MS=5 MOCK_REPLY_TOKENS=20 "$bin/mockllm" &
pids+=($!)
DATABASE_URL="$PG_URL/aichat_bench_billing" GRPC_ADDR=127.0.0.1:50153 "$bin/billing" serve &
pids+=($!)
# The load generator's few users send far more than a person would: no
# per-user send rate (it is measured as a refusal, not as the chat path).
DATABASE_URL="$PG_URL/aichat_bench_chat" GRPC_ADDR=127.0.0.1:50152 BILLING_GRPC_URL=http://127.0.0.1:50153 \
  SENDS_PER_MINUTE_FREE=0 SENDS_PER_MINUTE_PLUS=0 SENDS_PER_MINUTE_PRO=0 \
  OPENAI_BASE_URL="http://$BENCH_MOCK_ADDR/v1" OPENAI_API_KEY=bench "$bin/chat" serve &
pids+=($!)
HTTP_ADDR="$BENCH_HTTP_ADDR" IDENTITY_GRPC_URL="http://$BENCH_GRPC_ADDR" RATE_LIMIT_MULTIPLIER=0 \
  CHAT_GRPC_URL=http://127.0.0.1:50152 BILLING_GRPC_URL=http://127.0.0.1:50153 "$bin/gateway" serve &
pids+=($!)
for _ in $(seq 1 120); do
  # Ready and every backend up (/readyz alone does not wait for chat and billing).
  ready=$(curl -fsS "http://$BENCH_HTTP_ADDR/readyz?verbose" 2>/dev/null) && ! grep -q '"down"' <<<"$ready" && break
  sleep 0.5
done

# Lift the Free plan's limits and the provider's request limits: the bench
# measures the path, not the plans.
psql "$PG_URL/aichat_bench_billing" -qc "UPDATE plans SET monthlyTokenQuota = 2000000000, maxConversations = NULL, maxMessagesPerConversation = NULL"
psql "$PG_URL/aichat_bench_chat" -qc "UPDATE aiProviders SET requestsPerMinute = NULL, requestsPerDay = NULL"

results=()
for scenario in me login refresh; do
  log "scenario $scenario: concurrency $BENCH_CONCURRENCY for ${BENCH_SECONDS}s"
  line=$("$bin/loadgen" --base "http://$BENCH_HTTP_ADDR" --scenario "$scenario" \
    --concurrency "$BENCH_CONCURRENCY" --duration "$BENCH_SECONDS")
  log "$line"
  results+=("$line")
done

# The chat path: the same streamed request straight to the mock, through
# the platform's chat API and through its OpenAI-compatible API (an API key,
# /v1/chat/completions), at a light load (the platform's own latency), at
# the concurrency the target names, and at a saturating one (the most
# metered messages per second these cores sustain).
chat_results=()
: "${BENCH_CHAT_CONCURRENCY:=8 64 256}"
: "${BENCH_CPU_AT:=64}"
cpu_pid=
for c in $BENCH_CHAT_CONCURRENCY; do
  log "scenario direct: straight to the mock provider, concurrency $c"
  chat_results+=("$("$bin/loadgen" --base "http://$BENCH_MOCK_ADDR/v1" --scenario direct --concurrency "$c" --duration "$BENCH_SECONDS")")
  log "${chat_results[-1]}"
  log "scenario chat: through gateway → chat → billing → mock, concurrency $c"
  if [ "$c" = "$BENCH_CPU_AT" ]; then
    # Where the CPU goes, measured inside the run (after set-up and warm-up).
    (sleep 5; python3 deploy/local/cpu_share.py $((BENCH_SECONDS - 4)) >"$run_dir/cpu.md") &
    cpu_pid=$!
  fi
  chat_results+=("$("$bin/loadgen" --base "http://$BENCH_HTTP_ADDR" --scenario chat --concurrency "$c" --duration "$BENCH_SECONDS")")
  log "${chat_results[-1]}"
  log "scenario openai: through gateway /v1 → chat → billing → mock, concurrency $c"
  chat_results+=("$("$bin/loadgen" --base "http://$BENCH_HTTP_ADDR" --scenario openai --concurrency "$c" --duration "$BENCH_SECONDS")")
  log "${chat_results[-1]}"
done
[ -z "${cpu_pid:-}" ] || wait "$cpu_pid"

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
chat_table=$(printf '%s\n' "${chat_results[@]}" | python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin]
print("| concurrency | path | messages/s | TTFT p50 ms | TTFT p99 ms | total p50 ms | total p99 ms | errors |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    name = {"direct": "straight to the mock", "chat": "gateway → chat → billing → mock",
            "openai": "gateway /v1 (API key) → chat → billing → mock"}[r["scenario"]]
    print("| {} | {} | {:.0f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {} |".format(r["concurrency"], name, r["rps"], r["ttft_p50_ms"], r["ttft_p99_ms"], r["p50_ms"], r["p99_ms"], r["errors"]))
print()
print("Overhead of the platform (chat − direct at the same concurrency):")
print()
print("| concurrency | path | metered messages/s | TTFT p50 | TTFT p99 | total p50 | total p99 |")
print("|---|---|---|---|---|---|---|")
direct = {r["concurrency"]: r for r in rows if r["scenario"] == "direct"}
for c in rows:
    d = direct.get(c["concurrency"])
    if c["scenario"] == "direct" or d is None:
        continue
    print("| {} | {} | {:.0f} | {:+.2f} ms | {:+.2f} ms | {:+.2f} ms | {:+.2f} ms |".format(
        c["concurrency"], "chat API" if c["scenario"] == "chat" else "OpenAI-compatible /v1", c["rps"],
        c["ttft_p50_ms"] - d["ttft_p50_ms"], c["ttft_p99_ms"] - d["ttft_p99_ms"],
        c["p50_ms"] - d["p50_ms"], c["p99_ms"] - d["p99_ms"]))
')
chat_block=$(cat <<MD
<!-- BENCH:chat:start -->
Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, load generator on the same cores; release builds;
mock provider: 50 ms to the first token, then 20 tokens 5 ms apart; \`make bench\`.

$chat_table

CPU per component during the run through the platform at concurrency $BENCH_CPU_AT:

$(cat "$run_dir/cpu.md" 2>/dev/null || echo "(not measured)")
<!-- BENCH:chat:end -->
MD
)
python3 - "$chat_block" <<'PY'
import re, sys, pathlib
path = pathlib.Path("docs/benchmarks.md")
text = path.read_text()
block = sys.argv[1]
pattern = re.compile(r"<!-- BENCH:chat:start -->.*?<!-- BENCH:chat:end -->", re.S)
text = pattern.sub(block, text) if pattern.search(text) else text.rstrip() + "\n\n## The chat path\n\n" + block + "\n"
path.write_text(text)
PY
log "results written to docs/benchmarks.md"
