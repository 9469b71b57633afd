# Sourced by contract.sh and e2e.sh (not run on its own): the whole platform
# as `make run` starts it (deploy/local/run.sh), for a test run named NAME,
# on free ports, with fresh databases NAME_identity, NAME_chat, NAME_billing,
# NAME_analytics and its own exchange aichat.NAME. One run of a NAME at a time on a machine:
# the databases and the exchange (whose queues outlive a run) have fixed
# names. The caller defines `log` and `started`, and may export run.sh's
# settings (WEB_BUILD, MOCK_*) before `test_stack_start NAME`, which returns
# once the gateway is ready and every backend up, with HTTP_ADDR, RUN_DIR and
# MAIL_DIR exported. On exit the stack stops and its databases go; RUN_DIR is
# kept on failure: its stack.log, and what `test_stack_kept` adds (", the
# reports in ...").
# TEST_STACK_STRIPE=1 (e2e.sh sets it) puts a local stand-in for Stripe
# (web/e2e/stripe-standin.mjs, on a free port, its log in RUN_DIR) in front
# of billing: STRIPE_SECRET_KEY=sk_test_e2e, STRIPE_WEBHOOK_SECRET=whsec_e2e,
# STRIPE_API_BASE at the stand-in, which sends its webhooks to the gateway.
# Without it the stack has no Stripe (contract.sh: the payment calls answer
# 503 stripe_not_configured).

: "${PG_URL:=postgres://postgres@127.0.0.1:5432}"
test_stack_kept=
test_stack_pid=
test_stack_stripe_pid=
test_stack_databases=()

test_stack_drop_databases() {
  local db
  for db in "${test_stack_databases[@]}"; do
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  done
}

test_stack_finish() {
  local status=$?
  if [ -n "$test_stack_pid" ]; then
    kill -TERM "$test_stack_pid" 2>/dev/null || true
    wait "$test_stack_pid" 2>/dev/null || true
  fi
  if [ -n "$test_stack_stripe_pid" ]; then
    kill -TERM "$test_stack_stripe_pid" 2>/dev/null || true
    wait "$test_stack_stripe_pid" 2>/dev/null || true
  fi
  test_stack_drop_databases || true
  if [ "$status" = 0 ]; then
    rm -rf "$RUN_DIR"
  else
    log "failed; the stack's log is in $RUN_DIR/stack.log$test_stack_kept"
  fi
  log "took $((SECONDS - started)) s"
  exit "$status"
}

test_stack_start() {
  local name=$1 http identity chat billing analytics mock stripe ready
  exec 9>"/var/tmp/aichat-$name.lock"
  if ! flock -n 9; then
    log "waiting for another $name run to finish"
    flock 9
  fi
  # Seven free ports: the gateway, the four services, the mock LLM and the
  # Stripe stand-in.
  read -r http identity chat billing analytics mock stripe < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks: s.close()')
  RUN_DIR=$(mktemp -d "/tmp/aichat-$name.XXXXXX")
  export RUN_DIR MAIL_DIR="$RUN_DIR/mail" DB_PREFIX="${name}_" AMQP_EXCHANGE="aichat.$name"
  export HTTP_ADDR="127.0.0.1:$http" IDENTITY_GRPC_ADDR="127.0.0.1:$identity"
  export CHAT_GRPC_ADDR="127.0.0.1:$chat" BILLING_GRPC_ADDR="127.0.0.1:$billing" MOCK_ADDR="127.0.0.1:$mock"
  export ANALYTICS_GRPC_ADDR="127.0.0.1:$analytics"
  export PUBLIC_URL="http://$HTTP_ADDR" RUST_LOG="${RUST_LOG:-warn}"
  export PGOPTIONS="${PGOPTIONS:---client-min-messages=warning}"
  test_stack_databases=("${name}_identity" "${name}_chat" "${name}_billing" "${name}_analytics")
  trap test_stack_finish EXIT
  test_stack_drop_databases
  if [ "${TEST_STACK_STRIPE:-0}" = 1 ]; then
    export STRIPE_SECRET_KEY=sk_test_e2e STRIPE_WEBHOOK_SECRET=whsec_e2e STRIPE_API_BASE="http://127.0.0.1:$stripe"
    log "starting the Stripe stand-in on $STRIPE_API_BASE"
    STRIPE_STANDIN_ADDR="127.0.0.1:$stripe" STRIPE_WEBHOOK_URL="http://$HTTP_ADDR/webhooks/stripe" \
      node web/e2e/stripe-standin.mjs >"$RUN_DIR/stripe-standin.log" 2>&1 &
    test_stack_stripe_pid=$!
    until curl -so /dev/null "$STRIPE_API_BASE/"; do
      kill -0 "$test_stack_stripe_pid" 2>/dev/null || { cat "$RUN_DIR/stripe-standin.log" >&2; log "the Stripe stand-in did not start"; exit 1; }
      sleep 0.2
    done
  else
    unset STRIPE_SECRET_KEY STRIPE_WEBHOOK_SECRET STRIPE_API_BASE
  fi
  log "starting the platform (deploy/local/run.sh) on $HTTP_ADDR"
  bash deploy/local/run.sh >"$RUN_DIR/stack.log" 2>&1 &
  test_stack_pid=$!
  # Ready (keys and deny list), revocation events followed, no backend down.
  until ready=$(curl -fsS "http://$HTTP_ADDR/readyz?verbose" 2>/dev/null) \
    && grep -q '"revocationEvents":"subscribed"' <<<"$ready" && ! grep -q '"down"' <<<"$ready"; do
    if ! kill -0 "$test_stack_pid" 2>/dev/null; then
      tail -30 "$RUN_DIR/stack.log" >&2
      log "the platform did not start"
      exit 1
    fi
    sleep 0.5
  done
}
