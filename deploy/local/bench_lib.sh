# shellcheck shell=bash
# Sourced by bench.sh (`make bench`) and bench_compare.sh (`make
# bench-compare`), not run on its own: the platform as the benchmarks run
# it, started from a directory of release binaries, and the chat loads
# against it. The caller defines `log`, runs from the repository's root, and
# may set the variables below before sourcing (they are read when each
# function runs). One platform at a time on a machine: the ports, the
# databases and the exchange are fixed (`bench_lock` waits for another run).
#
#   bench_lock                    wait for any other bench on this machine to end
#   bench_build DIR PACKAGE...    cargo build --release of the packages of the checkout in DIR
#                                 (CARGO_TARGET_DIR: the binaries land in $CARGO_TARGET_DIR/release)
#   bench_start BIN TOOLS DIR     fresh databases, then the mock LLM (TOOLS/mockllm), identity,
#                                 billing, chat, analytics (BENCH_ANALYTICS=1) and the gateway
#                                 (BIN/<name>); returns once each backend is up, with the plans'
#                                 and providers' limits lifted. DIR: the run's files (made if absent).
#   bench_chat_loads DIR          the chat loads against it: `loadgen --scenario direct` (straight
#                                 to the mock), `chat` (gateway → chat → billing → mock) and `openai`
#                                 (gateway /v1 with an API key) at each of BENCH_CHAT_CONCURRENCY,
#                                 TOOLS/loadgen; one JSON line per run appended to DIR/chat.jsonl; the
#                                 CPU per component (cpu_share.py) of the BENCH_CPU_SCENARIOS runs at
#                                 BENCH_CPU_AT in DIR/cpu-<scenario>-<concurrency>.<md|json>, measured
#                                 over loadgen's own window; the services' memory after the round at
#                                 BENCH_RSS_AT in DIR/rss.json
#   bench_rss                     the running services' VmRSS and VmHWM (KiB) as JSON
#   bench_queue_depths            "<queue> <messages>" of each queue of BENCH_EXCHANGE (rabbitmqctl)
#   bench_stop                    stop what bench_start started, drop its databases (and with
#                                 the exchange's queues unless BENCH_DELETE_QUEUES=0); safe to call twice
#   bench_write_block NAME BLOCK [INTRO]
#                                 put BLOCK (<!-- BENCH:NAME:start --> … end -->) into
#                                 docs/benchmarks.md in place of the old one, or append INTRO and it

# shellcheck source=deploy/local/pg_url.sh
source "$(dirname "${BASH_SOURCE[0]}")/pg_url.sh"
: "${BENCH_DB_PREFIX:=aichat_bench_}" # databases <prefix>chat, <prefix>billing, <prefix>analytics
: "${BENCH_DB:=${BENCH_DB_PREFIX}identity}"
: "${BENCH_SECONDS:=20}"
: "${BENCH_HTTP_ADDR:=127.0.0.1:18080}"
: "${BENCH_GRPC_ADDR:=127.0.0.1:50151}" # identity
: "${BENCH_CHAT_GRPC_ADDR:=127.0.0.1:50152}"
: "${BENCH_BILLING_GRPC_ADDR:=127.0.0.1:50153}"
: "${BENCH_ANALYTICS_GRPC_ADDR:=127.0.0.1:50154}"
: "${BENCH_MOCK_ADDR:=127.0.0.1:18090}"
: "${BENCH_EXCHANGE:=aichat.bench}"
: "${BENCH_ANALYTICS:=0}"        # 1: analytics runs too, consuming the events
: "${BENCH_CHAT_CONCURRENCY:=8 64 256}"
: "${BENCH_CPU_AT:=64}"
: "${BENCH_CPU_SCENARIOS:=chat}" # of direct, chat, openai
: "${BENCH_CPU_FORMAT:=md}"      # md (a Markdown table) or json
: "${BENCH_RSS_AT:=}"
: "${BENCH_ALLOW_ABSENT:=0}"     # 1: a scenario loadgen cannot run is recorded as absent, not fatal
# Extra environment of the five services (not of loadgen or the mock), as
# VAR=value words, e.g. "TOKIO_WORKER_THREADS=1 DB_POOL_SIZE=8" (split on
# spaces where the services start: no value may hold one).
: "${BENCH_SERVICE_ENV:=}"
# 1: the exchange's queues go with its databases (each run starts from fresh
# databases, so events left in them would only be another run's strangers,
# and the unrouted queue grew by every run's analytics events)
: "${BENCH_DELETE_QUEUES:=1}"

bench_pids=()
declare -A bench_pid_of=()
bench_databases=()
bench_tools=

bench_lock() {
  exec 9>/var/tmp/aichat-bench.lock
  if ! flock -n 9; then
    log "waiting for another benchmark on this machine to finish"
    flock 9
  fi
}

bench_build() {
  local dir=$1 package args=()
  shift
  for package in "$@"; do args+=(-p "$package"); done
  (cd "$dir" && cargo build --release -q "${args[@]}")
}

# bench_spawn NAME COMMAND...: starts it in the background, remembered by name.
bench_spawn() {
  local name=$1
  shift
  "$@" &
  bench_pids+=($!)
  bench_pid_of[$name]=$!
}

bench_start() {
  local bin=$1 dir=$3 db ready backend name i up
  bench_tools=$2
  bench_databases=("$BENCH_DB" "${BENCH_DB_PREFIX}chat" "${BENCH_DB_PREFIX}billing")
  [ "$BENCH_ANALYTICS" != 1 ] || bench_databases+=("${BENCH_DB_PREFIX}analytics")
  [ "$BENCH_DELETE_QUEUES" != 1 ] || bench_delete_queues
  for db in "${bench_databases[@]}"; do
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    psql "$PG_URL/postgres" -qc "CREATE DATABASE $db"
  done
  mkdir -p "$dir"
  export RUST_LOG=warn AMQP_EXCHANGE="$BENCH_EXCHANGE" MAIL_TRANSPORT=file MAIL_DIR="$dir/mail"
  "$bin/identity" keygen >"$dir/jwt.pem"
  bench_spawn identity env $BENCH_SERVICE_ENV DATABASE_URL="$PG_URL/$BENCH_DB" GRPC_ADDR="$BENCH_GRPC_ADDR" \
    JWT_PRIVATE_KEY_FILE="$dir/jwt.pem" "$bin/identity" serve
  # The chat path: a mock provider with a fixed latency (50 ms to the first
  # token, then 20 tokens 5 ms apart), billing and chat.
  bench_spawn mockllm env MOCK_ADDR="$BENCH_MOCK_ADDR" MOCK_TTFT_MS=50 MOCK_TOKEN_DELAY_MS=5 MOCK_REPLY_TOKENS=20 \
    "$bench_tools/mockllm"
  bench_spawn billing env $BENCH_SERVICE_ENV DATABASE_URL="$PG_URL/${BENCH_DB_PREFIX}billing" GRPC_ADDR="$BENCH_BILLING_GRPC_ADDR" \
    "$bin/billing" serve
  # The load generator's few users send far more than a person would: no
  # per-user send rate (it is measured as a refusal, not as the chat path).
  bench_spawn chat env $BENCH_SERVICE_ENV DATABASE_URL="$PG_URL/${BENCH_DB_PREFIX}chat" GRPC_ADDR="$BENCH_CHAT_GRPC_ADDR" \
    BILLING_GRPC_URL="http://$BENCH_BILLING_GRPC_ADDR" \
    SENDS_PER_MINUTE_FREE=0 SENDS_PER_MINUTE_PLUS=0 SENDS_PER_MINUTE_PRO=0 \
    OPENAI_BASE_URL="http://$BENCH_MOCK_ADDR/v1" OPENAI_API_KEY=bench "$bin/chat" serve
  if [ "$BENCH_ANALYTICS" = 1 ]; then
    # Consumes every event the others publish, on its own database (it reads
    # the plans from billing at start-up).
    bench_spawn analytics env $BENCH_SERVICE_ENV DATABASE_URL="$PG_URL/${BENCH_DB_PREFIX}analytics" GRPC_ADDR="$BENCH_ANALYTICS_GRPC_ADDR" \
      BILLING_GRPC_URL="http://$BENCH_BILLING_GRPC_ADDR" "$bin/analytics" serve
  fi
  bench_spawn gateway env $BENCH_SERVICE_ENV HTTP_ADDR="$BENCH_HTTP_ADDR" IDENTITY_GRPC_URL="http://$BENCH_GRPC_ADDR" RATE_LIMIT_MULTIPLIER=0 \
    CHAT_GRPC_URL="http://$BENCH_CHAT_GRPC_ADDR" BILLING_GRPC_URL="http://$BENCH_BILLING_GRPC_ADDR" \
    ANALYTICS_GRPC_URL="http://$BENCH_ANALYTICS_GRPC_ADDR" "$bin/gateway" serve
  # Ready (keys and deny list), and every backend that runs up (/readyz alone
  # does not wait for them; analytics is not one unless it runs), and the
  # revocation events subscribed (where the gateway tells).
  for ((i = 0; i < 240; i++)); do
    if ready=$(curl -fsS "http://$BENCH_HTTP_ADDR/readyz?verbose" 2>/dev/null); then
      up=1
      for backend in identity chat billing $([ "$BENCH_ANALYTICS" != 1 ] || echo analytics); do
        ! grep -q "\"$backend\":\"down\"" <<<"$ready" || up=0
      done
      ! grep -q '"revocationEvents":"not_subscribed"' <<<"$ready" || up=0
      [ "$up" = 0 ] || break
    fi
    for name in "${!bench_pid_of[@]}"; do
      if ! kill -0 "${bench_pid_of[$name]}" 2>/dev/null; then
        log "$name exited while the platform started"
        return 1
      fi
    done
    sleep 0.5
  done
  if ((i == 240)); then
    log "the platform did not become ready in 120 s: ${ready:-no answer from the gateway}"
    return 1
  fi
  # Lift the Free plan's limits and the provider's request limits: the bench
  # measures the path, not the plans.
  psql "$PG_URL/${BENCH_DB_PREFIX}billing" -qc "UPDATE plans SET monthlyTokenQuota = 2000000000, maxConversations = NULL, maxMessagesPerConversation = NULL"
  psql "$PG_URL/${BENCH_DB_PREFIX}chat" -qc "UPDATE aiProviders SET requestsPerMinute = NULL, requestsPerDay = NULL"
}

bench_chat_loads() {
  local dir=$1 c scenario base line what cpu_pid cpu_out cpu_args mark
  : >"$dir/chat.jsonl"
  for c in $BENCH_CHAT_CONCURRENCY; do
    for scenario in direct chat openai; do
      base="http://$BENCH_HTTP_ADDR"
      case $scenario in
        direct) what="straight to the mock provider" base="http://$BENCH_MOCK_ADDR/v1" ;;
        chat) what="through gateway → chat → billing → mock" ;;
        openai) what="through gateway /v1 → chat → billing → mock" ;;
      esac
      log "scenario $scenario: $what, concurrency $c for ${BENCH_SECONDS}s"
      mark="$dir/measuring-$scenario-$c"
      rm -f "$mark"
      cpu_pid=
      if [ "$c" = "$BENCH_CPU_AT" ] && [[ " $BENCH_CPU_SCENARIOS " == *" $scenario "* ]]; then
        # Where the CPU goes, over the load generator's measured window
        # (after its clients' set-up and warm-up).
        cpu_out="$dir/cpu-$scenario-$c.$BENCH_CPU_FORMAT"
        cpu_args=(--after "$mark")
        [ "$BENCH_CPU_FORMAT" != json ] || cpu_args+=(--json)
        python3 deploy/local/cpu_share.py "${cpu_args[@]}" "$BENCH_SECONDS" >"$cpu_out" &
        cpu_pid=$!
      fi
      if line=$("$bench_tools/loadgen" --base "$base" --scenario "$scenario" --concurrency "$c" \
        --duration "$BENCH_SECONDS" --mark "$mark" 2>"$dir/loadgen.err"); then
        [ -z "$cpu_pid" ] || wait "$cpu_pid"
      else
        if [ -n "$cpu_pid" ]; then
          kill "$cpu_pid" 2>/dev/null || true
          wait "$cpu_pid" 2>/dev/null || true
          rm -f "$cpu_out"
        fi
        cat "$dir/loadgen.err" >&2
        if [ "$BENCH_ALLOW_ABSENT" != 1 ]; then
          log "loadgen failed ($scenario, concurrency $c)"
          return 1
        fi
        line=$(python3 -c 'import json, sys; print(json.dumps({"scenario": sys.argv[1], "concurrency": int(sys.argv[2]), "absent": sys.argv[3]}))' \
          "$scenario" "$c" "$(grep -v '^\s*$' "$dir/loadgen.err" | tail -n1)")
      fi
      log "$line"
      printf '%s\n' "$line" >>"$dir/chat.jsonl"
    done
    [ "$c" != "$BENCH_RSS_AT" ] || bench_rss >"$dir/rss.json"
  done
}

bench_rss() {
  local name args=()
  for name in identity gateway chat billing analytics; do
    [ -z "${bench_pid_of[$name]:-}" ] || args+=("$name=${bench_pid_of[$name]}")
  done
  python3 - "${args[@]}" <<'PY'
import json, sys
out = {}
for arg in sys.argv[1:]:
    name, pid = arg.split("=")
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    out[name] = {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}
print(json.dumps(out))
PY
}

bench_queue_depths() {
  { rabbitmqctl list_queues -q --no-table-headers name messages 2>/dev/null || true; } \
    | awk -v prefix="$BENCH_EXCHANGE." 'index($1, prefix) == 1 { print $1, $2 }'
}

bench_delete_queues() {
  local queue _
  while read -r queue _; do
    rabbitmqctl delete_queue -q "$queue" </dev/null >/dev/null 2>&1 || true
  done < <(bench_queue_depths)
}

bench_stop() {
  local pid db
  for pid in "${bench_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${bench_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  bench_pids=()
  bench_pid_of=()
  # Nothing more to undo unless bench_start ran since the last stop.
  [ "${#bench_databases[@]}" != 0 ] || return 0
  for db in "${bench_databases[@]}"; do
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  done
  bench_databases=()
  [ "$BENCH_DELETE_QUEUES" != 1 ] || bench_delete_queues
}

bench_write_block() {
  python3 - "$@" <<'PY'
import re, sys, pathlib
name, block = sys.argv[1], sys.argv[2]
intro = sys.argv[3] if len(sys.argv) > 3 else ""
path = pathlib.Path("docs/benchmarks.md")
text = path.read_text() if path.exists() else "# Benchmarks\n"
pattern = re.compile(rf"<!-- BENCH:{name}:start -->.*?<!-- BENCH:{name}:end -->", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: block, text)
else:
    text = text.rstrip() + "\n\n" + (intro.rstrip() + "\n\n" if intro.strip() else "") + block + "\n"
path.write_text(text)
PY
}
