#!/usr/bin/env bash
# `make e2e`: the web app in a real browser (Debian's chromium driven by
# playwright-core, web/e2e/signup-chat.mjs) against the whole platform as
# `make run` starts it (deploy/local/run.sh, which builds the app), on free
# ports with fresh databases and its own exchange, and a local stand-in for
# Stripe (web/e2e/stripe-standin.mjs): sign up → the mail's link → log in →
# a streamed reply → usage → an upgrade to Plus paid on the stand-in's page
# → the account page → delete the account; then web/e2e/admin.mjs: a user
# made an admin with `identity make-admin` opens /admin (today's signup in
# the signups table, axe-core at 1280 and 375 px, CSV downloads); then
# web/e2e/api-keys.mjs: create an API key (its secret shown once, copied),
# see it listed by its prefix only, revoke it.
# Screenshots at 375 and 1280 px in web/e2e/artifacts/. BASE_URL=http://… runs it against a stack already up
# instead (then MAIL_DIR says where its mails are; its billing must reach
# Stripe or a stand-in for the upgrade).
set -euo pipefail
cd "$(dirname "$0")/../.."

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
  cd web && node e2e/signup-chat.mjs && node e2e/admin.mjs && exec node e2e/api-keys.mjs
fi

# Replies of 24 tokens, 80 ms apart: about 2 s, time enough to stop one.
export MOCK_TTFT_MS="${MOCK_TTFT_MS:-50}" MOCK_TOKEN_DELAY_MS="${MOCK_TOKEN_DELAY_MS:-80}" MOCK_REPLY_TOKENS="${MOCK_REPLY_TOKENS:-24}"
# shellcheck source=deploy/local/test-stack.sh
source deploy/local/test-stack.sh
export TEST_STACK_STRIPE=1
test_stack_kept=", screenshots in web/e2e/artifacts"
test_stack_start e2e
export BASE_URL="http://$HTTP_ADDR"

rm -rf web/e2e/artifacts
(cd web && node e2e/signup-chat.mjs)
# make-admin on the stack's identity database, with run.sh's binary.
export IDENTITY_BIN="${CARGO_TARGET_DIR:-/var/tmp/aichat-target}/debug/identity"
export IDENTITY_DATABASE_URL="$PG_URL/${DB_PREFIX}identity" JWT_PRIVATE_KEY_FILE="$RUN_DIR/jwt-ed25519.pem"
(cd web && node e2e/admin.mjs)
(cd web && node e2e/api-keys.mjs)
