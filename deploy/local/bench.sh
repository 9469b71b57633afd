#!/usr/bin/env bash
# `make bench`: release builds of identity and the gateway on this machine,
# a fresh database, and the load generator (on the same cores) for each
# scenario. Results go into docs/benchmarks.md between the BENCH markers.
# The platform's start, the chat loads and the docs' blocks are
# deploy/local/bench_lib.sh's (shared with `make bench-compare`).
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${CARGO_TARGET_DIR:=/var/tmp/aichat-target}"
: "${BENCH_SECONDS:=20}"
: "${BENCH_CONCURRENCY:=32}"
export CARGO_TARGET_DIR

log() { printf '\033[1;35m[bench]\033[0m %s\n' "$*" >&2; }
# shellcheck source=deploy/local/bench_lib.sh
source deploy/local/bench_lib.sh

bench_lock
log "building release binaries"
bench_build . aichat-identity aichat-gateway aichat-loadgen aichat-chat aichat-billing aichat-mockllm
bin="$CARGO_TARGET_DIR/release"

run_dir=$(mktemp -d)
cleanup() {
  bench_stop
  rm -rf "$run_dir"
}
trap cleanup EXIT
bench_start "$bin" "$bin" "$run_dir"

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
# metered messages per second these cores sustain); the CPU per component
# during the chat run at BENCH_CPU_AT.
bench_chat_loads "$run_dir"
mapfile -t chat_results <"$run_dir/chat.jsonl"

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
bench_write_block accounts "$block"
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

$(cat "$run_dir/cpu-chat-$BENCH_CPU_AT.md" 2>/dev/null || echo "(not measured)")
<!-- BENCH:chat:end -->
MD
)
bench_write_block chat "$chat_block" $'## The chat path\n\n'
log "results written to docs/benchmarks.md"
