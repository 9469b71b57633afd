#!/usr/bin/env bash
# `make run`: the whole platform on this machine. PostgreSQL and RabbitMQ
# (started or installed as needed), the databases, a JWT signing key, then
# the mock LLM server, identity, billing, chat, analytics and the gateway on
# http://127.0.0.1:8080. Providers without an API key in the environment
# (OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_API_KEY) are pointed at the mock
# LLM server. The web app (web/) is built and served by the gateway at
# http://127.0.0.1:8080/. Ctrl-C stops it all.
# Every variable below can be overridden from the environment.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${CARGO_TARGET_DIR:=/var/tmp/aichat-target}"
: "${PROFILE:=dev}"
: "${RUN_DIR:=$PWD/.run}"
# shellcheck source=deploy/local/pg_url.sh
source "$(dirname "${BASH_SOURCE[0]}")/pg_url.sh"
: "${DB_PREFIX:=}" # databases ${DB_PREFIX}identity, ${DB_PREFIX}chat, ${DB_PREFIX}billing, ${DB_PREFIX}analytics
: "${AMQP_URL:=amqp://guest:guest@127.0.0.1:5672/%2f}"
: "${AMQP_EXCHANGE:=aichat.events}"
: "${IDENTITY_GRPC_ADDR:=127.0.0.1:50051}"
: "${CHAT_GRPC_ADDR:=127.0.0.1:50052}"
: "${BILLING_GRPC_ADDR:=127.0.0.1:50053}"
: "${ANALYTICS_GRPC_ADDR:=127.0.0.1:50054}"
: "${MOCK_ADDR:=127.0.0.1:8090}"
: "${HTTP_ADDR:=127.0.0.1:8080}"
: "${MAIL_TRANSPORT:=file}"
: "${MAIL_DIR:=$RUN_DIR/mail}"
: "${PUBLIC_URL:=http://localhost:8080}"
: "${JWT_PRIVATE_KEY_FILE:=$RUN_DIR/jwt-ed25519.pem}"
: "${RUST_LOG:=info}"
: "${WEB_DIR:=$PWD/web/dist}"
: "${WEB_BUILD:=1}" # 0: serve WEB_DIR as it is
export CARGO_TARGET_DIR AMQP_URL AMQP_EXCHANGE MAIL_TRANSPORT MAIL_DIR PUBLIC_URL JWT_PRIVATE_KEY_FILE RUST_LOG WEB_DIR

log() { printf '\033[1;32m[run]\033[0m %s\n' "$*" >&2; }

bash deploy/local/services.sh

# One database per service.
for db in "${DB_PREFIX}identity" "${DB_PREFIX}chat" "${DB_PREFIX}billing" "${DB_PREFIX}analytics"; do
  if ! psql "$PG_URL/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    log "creating database $db"
    psql "$PG_URL/postgres" -qc "CREATE DATABASE $db"
  fi
done

log "building (profile $PROFILE)"
cargo build --profile "$PROFILE" -q -p aichat-identity -p aichat-gateway -p aichat-chat -p aichat-billing -p aichat-analytics -p aichat-mockllm
if [ "$WEB_BUILD" = 1 ] && ! command -v npm >/dev/null; then
  log "npm not found: the web app is not built (install Node.js 20 and npm); the API works without it"
elif [ "$WEB_BUILD" = 1 ]; then
  log "building the web app (web/)"
  bash deploy/local/web-deps.sh
  (cd web && npm run --silent build >/dev/null)
fi
bin_dir="$CARGO_TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"

mkdir -p "$RUN_DIR" "$MAIL_DIR"
if [ ! -s "$JWT_PRIVATE_KEY_FILE" ]; then
  log "making a JWT signing key in $JWT_PRIVATE_KEY_FILE"
  (umask 077 && "$bin_dir/identity" keygen >"$JWT_PRIVATE_KEY_FILE")
fi

# Migrate every service before any starts: its database, and its RabbitMQ
# queues and bindings, so no event published at start-up finds no queue.
DATABASE_URL="$PG_URL/${DB_PREFIX}identity" "$bin_dir/identity" migrate
DATABASE_URL="$PG_URL/${DB_PREFIX}billing" "$bin_dir/billing" migrate
# With a Stripe key (test mode: sk_test_...), the paid plans' Products and
# Prices are found or created in Stripe and their ids stored in plans.
if [ -n "${STRIPE_SECRET_KEY:-}" ]; then
  log "syncing the paid plans with Stripe"
  DATABASE_URL="$PG_URL/${DB_PREFIX}billing" "$bin_dir/billing" stripe-sync
fi
DATABASE_URL="$PG_URL/${DB_PREFIX}chat" "$bin_dir/chat" migrate
DATABASE_URL="$PG_URL/${DB_PREFIX}analytics" "$bin_dir/analytics" migrate

pids=()
stop() {
  trap - INT TERM EXIT
  log "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  log "stopped"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

# Providers: real ones where a key is set, else the mock LLM server.
mock="http://$MOCK_ADDR"
# (The mock checks that a key is sent, as the real APIs do.)
[ -n "${OPENAI_API_KEY:-}" ] || export OPENAI_BASE_URL="${OPENAI_BASE_URL:-$mock/v1}" OPENAI_API_KEY=mock
[ -n "${ANTHROPIC_API_KEY:-}" ] || export ANTHROPIC_BASE_URL="${ANTHROPIC_BASE_URL:-$mock}" ANTHROPIC_API_KEY=mock
[ -n "${GOOGLE_API_KEY:-}" ] || export GOOGLE_BASE_URL="${GOOGLE_BASE_URL:-$mock}" GOOGLE_API_KEY=mock
export CHAT_GRPC_URL="http://$CHAT_GRPC_ADDR" BILLING_GRPC_URL="http://$BILLING_GRPC_ADDR" IDENTITY_GRPC_URL="http://$IDENTITY_GRPC_ADDR"
export ANALYTICS_GRPC_URL="http://$ANALYTICS_GRPC_ADDR"

MOCK_ADDR="$MOCK_ADDR" "$bin_dir/mockllm" &
pids+=($!)
DATABASE_URL="$PG_URL/${DB_PREFIX}identity" GRPC_ADDR="$IDENTITY_GRPC_ADDR" "$bin_dir/identity" serve &
pids+=($!)
DATABASE_URL="$PG_URL/${DB_PREFIX}billing" GRPC_ADDR="$BILLING_GRPC_ADDR" "$bin_dir/billing" serve &
pids+=($!)
DATABASE_URL="$PG_URL/${DB_PREFIX}chat" GRPC_ADDR="$CHAT_GRPC_ADDR" "$bin_dir/chat" serve &
pids+=($!)
# analytics reads the plans from billing (BILLING_GRPC_URL) at start-up.
DATABASE_URL="$PG_URL/${DB_PREFIX}analytics" GRPC_ADDR="$ANALYTICS_GRPC_ADDR" "$bin_dir/analytics" serve &
pids+=($!)
HTTP_ADDR="$HTTP_ADDR" "$bin_dir/gateway" serve &
pids+=($!)

for _ in $(seq 1 240); do
  # Ready (keys and deny list loaded) and every backend up: /readyz alone
  # no longer waits for chat and billing.
  if ready=$(curl -fsS "http://$HTTP_ADDR/readyz?verbose" 2>/dev/null) && ! grep -q '"down"' <<<"$ready"; then
    cat >&2 <<MSG

  The AI chat platform is up.
    web app    http://$HTTP_ADDR/
    API        http://$HTTP_ADDR/api/v1   (contract: http://$HTTP_ADDR/openapi.json)
    health     http://$HTTP_ADDR/healthz  /readyz  /readyz?verbose  /metrics
    mails      $MAIL_DIR  (one .eml per mail; verification links carry ?token=)
    providers  OpenAI ${OPENAI_BASE_URL:-api.openai.com}, Anthropic ${ANTHROPIC_BASE_URL:-api.anthropic.com}, Google ${GOOGLE_BASE_URL:-generativelanguage.googleapis.com}

  Sign up:
    curl -s http://$HTTP_ADDR/api/v1/auth/register -H 'content-type: application/json' \\
      -d '{"email":"ada@example.com","password":"correct horse battery staple","name":"Ada"}'
  Then follow the README walk-through. Ctrl-C stops everything.

MSG
    wait -n "${pids[@]}" || true
    log "a service exited"
    exit 1
  fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { log "a service failed to start"; exit 1; }
  done
  sleep 0.5
done
log "the gateway did not become ready"
exit 1
