#!/usr/bin/env bash
# `make e2e`: the web app in a real browser (Debian's chromium driven by
# playwright-core, web/e2e/signup-chat.mjs) against the whole platform as
# `make run` starts it (deploy/local/run.sh, which builds the app), on free
# ports with fresh databases and its own exchange: sign up → the mail's link
# → log in → a streamed reply → usage. Screenshots at 375 and 1280 px in
# web/e2e/artifacts/. BASE_URL=http://… runs it against a stack already up
# instead (then MAIL_DIR says where its mails are).
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${PG_URL:=postgres://postgres@127.0.0.1:5432}"
log() { printf '\033[1;36m[e2e]\033[0m %s\n' "$*" >&2; }
started=$SECONDS

if ! command -v "${CHROMIUM:-chromium}" >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    log "chromium is missing and not root: apt-get install -y chromium, or set CHROMIUM"
    exit 1
  fi
  log "installing chromium with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
fi
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
bash deploy/local/web-deps.sh

if [ -n "${BASE_URL:-}" ]; then
  MAIL_DIR=$(realpath -m "${MAIL_DIR:-.run/mail}")
  export MAIL_DIR
  cd web && exec node e2e/signup-chat.mjs
fi

# One run at a time on a machine (fixed database and exchange names).
exec 9>/var/tmp/aichat-e2e.lock
flock 9

read -r http identity chat billing mock < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks: s.close()')

export RUN_DIR
RUN_DIR=$(mktemp -d /tmp/aichat-e2e.XXXXXX)
export MAIL_DIR="$RUN_DIR/mail" DB_PREFIX=e2e_ AMQP_EXCHANGE=aichat.e2e
export HTTP_ADDR="127.0.0.1:$http" IDENTITY_GRPC_ADDR="127.0.0.1:$identity"
export CHAT_GRPC_ADDR="127.0.0.1:$chat" BILLING_GRPC_ADDR="127.0.0.1:$billing" MOCK_ADDR="127.0.0.1:$mock"
export PUBLIC_URL="http://$HTTP_ADDR" RUST_LOG="${RUST_LOG:-warn}" BASE_URL="http://$HTTP_ADDR"
export PGOPTIONS="${PGOPTIONS:---client-min-messages=warning}"
# Replies of 24 tokens, 80 ms apart: about 2 s, time enough to stop one.
export MOCK_TTFT_MS="${MOCK_TTFT_MS:-50}" MOCK_TOKEN_DELAY_MS="${MOCK_TOKEN_DELAY_MS:-80}" MOCK_REPLY_TOKENS="${MOCK_REPLY_TOKENS:-24}"
databases=(e2e_identity e2e_chat e2e_billing)

drop_databases() {
  for db in "${databases[@]}"; do
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  done
}

stack=
finish() {
  local status=$?
  if [ -n "$stack" ]; then
    kill -TERM "$stack" 2>/dev/null || true
    wait "$stack" 2>/dev/null || true
  fi
  drop_databases || true
  if [ "$status" = 0 ]; then
    rm -rf "$RUN_DIR"
  else
    log "failed; the stack's log is in $RUN_DIR/stack.log, screenshots in web/e2e/artifacts"
  fi
  log "took $((SECONDS - started)) s"
  exit "$status"
}
trap finish EXIT

drop_databases
log "starting the platform (deploy/local/run.sh) on $HTTP_ADDR"
bash deploy/local/run.sh >"$RUN_DIR/stack.log" 2>&1 &
stack=$!
until curl -fsS "http://$HTTP_ADDR/readyz?verbose" 2>/dev/null | grep -q '"revocationEvents":"subscribed"' \
  && ! curl -fsS "http://$HTTP_ADDR/readyz?verbose" | grep -q '"down"'; do
  if ! kill -0 "$stack" 2>/dev/null; then
    tail -30 "$RUN_DIR/stack.log" >&2
    log "the platform did not start"
    exit 1
  fi
  sleep 0.5
done

rm -rf web/e2e/artifacts
(cd web && node e2e/signup-chat.mjs)
