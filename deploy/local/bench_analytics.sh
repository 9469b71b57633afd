#!/usr/bin/env bash
# `make bench-analytics`: the analytics service at the size issue 14 names.
#  1. Queries: a database `aichat_bench_analytics` migrated, then filled by
#     deploy/local/bench_analytics.sql (1 M users, 10 M tokenUsage facts over
#     13 months, ...; BENCH_USERS / BENCH_USAGE to change it); every admin
#     query timed BENCH_RUNS times; EXPLAIN (ANALYZE, BUFFERS) of the two
#     slowest. BENCH_REUSE=1 keeps an existing filled database.
#  2. Ingest: BENCH_EVENTS chat events through the consumer, batched
#     (BENCH_BATCH), and BENCH_EVENTS_ONE one at a time, each on a fresh
#     database and exchange.
# Results go into docs/benchmarks.md between the BENCH:analytics markers.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${CARGO_TARGET_DIR:=/var/tmp/aichat-target}"
: "${PG_URL:=postgres://postgres@127.0.0.1:5432}"
: "${BENCH_DB:=aichat_bench_analytics}"
: "${BENCH_USERS:=1000000}"
: "${BENCH_USAGE:=10000000}"
: "${BENCH_RUNS:=20}"
: "${BENCH_EVENTS:=200000}"
: "${BENCH_EVENTS_ONE:=20000}"
: "${BENCH_BATCH:=1000}"
: "${BENCH_PROFILE:=release}"
export CARGO_TARGET_DIR RUST_LOG=warn

log() { printf '\033[1;35m[bench-analytics]\033[0m %s\n' "$*" >&2; }

log "building analytics-bench ($BENCH_PROFILE)"
if [ "$BENCH_PROFILE" = release ]; then
  cargo build --release -q -p aichat-analytics --features testing --bin analytics-bench
else
  cargo build -q -p aichat-analytics --features testing --bin analytics-bench
fi
bin="$CARGO_TARGET_DIR/$BENCH_PROFILE/analytics-bench"
url="$PG_URL/$BENCH_DB"

if [ "${BENCH_REUSE:-0}" != 1 ] || ! psql "$url" -qAtc "SELECT 1 FROM users LIMIT 1" >/dev/null 2>&1; then
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)"
  psql "$PG_URL/postgres" -qc "CREATE DATABASE $BENCH_DB"
  DATABASE_URL="$url" "$bin" migrate
  log "generating $BENCH_USERS users, $BENCH_USAGE tokenUsage facts (minutes)"
  start=$(date +%s)
  psql "$url" -q -v users="$BENCH_USERS" -v usage="$BENCH_USAGE" -f deploy/local/bench_analytics.sql >&2
  log "generated in $(( $(date +%s) - start )) s"
fi
sizes=$(psql "$url" -qAtF ' ' -c "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tokenUsage),
  (SELECT count(*) FROM chatAnalytics), (SELECT count(*) FROM conversations), (SELECT count(*) FROM payments),
  (SELECT count(*) FROM invoices), pg_size_pretty(pg_database_size(current_database()))")

log "timing the admin queries ($BENCH_RUNS runs each)"
query_results=$(DATABASE_URL="$url" "$bin" queries --runs "$BENCH_RUNS")
log "$query_results"

# The plans of the two slowest (by p99), with the SQL the store runs.
slowest=$(python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
print(" ".join(r["query"] for r in sorted(rows, key=lambda r: -r["p99_ms"])[:2]))' <<<"$query_results")
month=$(date -u -d "$(date -u +%Y-%m-01) -1 month" +%Y-%m-01)
# The SQL each query runs (store::queries); the paged lists' first page of 100 (a deep page runs
# the same with the cursor's key); TopUsers' first round (the candidates of the window's two months
# and their exact figures; store::queries::top_users reads more rounds until the top 10 are settled).
# TopUsers' window (30 days) starts in month top1; top2 is the next.
top1=$(date -u -d "$(date -u -d '30 days ago' +%Y-%m-01)" +%Y-%m-%d)
top2=$(date -u -d "$top1 +1 month" +%Y-%m-%d)
declare -A SQL=(
  [Signups]="SELECT d::date AS date, COALESCE(c.users, 0) AS new_users FROM generate_series((CURRENT_DATE - 29)::timestamp, CURRENT_DATE::timestamp, interval '1 day') AS d LEFT JOIN signupsDaily c ON c.day = d::date ORDER BY d DESC"
  [UsersByPlan]="SELECT planTier AS plan_tier, users AS count FROM usersPlanCounts WHERE users > 0 ORDER BY planTier"
  [TokenUsageByUser]="SELECT userId AS user_id, totalTokens AS total_tokens, costUsd::text AS total_cost FROM tokenUsageUserMonthly WHERE billingMonth = '$month' AND usageCount > 0 ORDER BY totalTokens DESC, userId LIMIT 101"
  [TokenUsageByModel]="SELECT model, usageCount AS usage_count, totalTokens AS total_tokens, (totalTokens::numeric / usageCount::numeric)::text AS avg_tokens, costUsd::text AS total_cost FROM tokenUsageMonthly WHERE billingMonth = '$month' AND usageCount > 0 ORDER BY total_tokens DESC, model"
  [Subscriptions]="SELECT plan, SUM(n * matches)::bigint AS subscription_count, SUM(n)::bigint AS user_count FROM (SELECT COALESCE(p.name, f.name) AS plan, a.planId, a.planTier, a.n, count(*) AS matches FROM (SELECT planId, planTier, SUM(subscriptions) AS n FROM subscriptionsActive WHERE subscriptions > 0 GROUP BY 1, 2) a LEFT JOIN plans p ON p.id = a.planId LEFT JOIN plans f ON a.planId = '00000000-0000-0000-0000-000000000000' AND f.tier = a.planTier WHERE COALESCE(p.name, f.name) IS NOT NULL GROUP BY 1, 2, 3, 4) g GROUP BY plan ORDER BY plan"
  [Mrr]="SELECT COALESCE(round(SUM(a.subscriptions * CASE WHEN a.billingInterval = 'year' AND COALESCE(p.yearlyPrice, f.yearlyPrice) IS NOT NULL THEN COALESCE(p.yearlyPrice, f.yearlyPrice) / 12 ELSE COALESCE(p.monthlyPrice, f.monthlyPrice) END), 2), 0.00)::numeric(14, 2) FROM subscriptionsActive a LEFT JOIN plans p ON p.id = a.planId LEFT JOIN plans f ON a.planId = '00000000-0000-0000-0000-000000000000' AND f.tier = a.planTier WHERE a.subscriptions > 0 AND a.periodStartDay <= CURRENT_DATE AND a.periodEndDay > CURRENT_DATE"
  [DailySeries]="SELECT d::date AS date, COALESCE(su.n, 0) AS signups, COALESCE(c.messages, 0)::bigint AS messages, COALESCE(c.tokens, 0)::bigint AS tokens, COALESCE(c.cost, 0)::numeric(20, 6)::text AS cost, COALESCE(r.revenue, 0)::numeric(14, 2)::text AS revenue, COALESCE(r.mrr, 0)::numeric(14, 2)::text AS mrr FROM generate_series((CURRENT_DATE - 29)::timestamp, CURRENT_DATE::timestamp, interval '1 day') AS d LEFT JOIN (SELECT day, messages, totalTokens AS tokens, costUsd AS cost FROM chatDaily) c ON c.day = d::date LEFT JOIN (SELECT day, users AS n FROM signupsDaily) su ON su.day = d::date LEFT JOIN revenueAnalytics r ON r.day = d::date ORDER BY d"
  [TopUsers]="WITH cand AS ((SELECT userId FROM conversationsUserMonthly WHERE month = '$top1' AND conversations > 0 ORDER BY tokens DESC, userId LIMIT 40) UNION (SELECT userId FROM conversationsUserMonthly WHERE month = '$top2' AND conversations > 0 ORDER BY tokens DESC, userId LIMIT 40)) SELECT userId AS user_id, COUNT(*) AS conversation_count, SUM(tokenCount) AS total_tokens FROM conversations WHERE userId IN (SELECT userId FROM cand) AND deletedAt IS NULL AND createdAt >= LOCALTIMESTAMP - make_interval(days => 30) GROUP BY userId"
  [ConversationLength]="WITH w AS (SELECT LOCALTIMESTAMP - make_interval(days => 30) AS start), parts AS (SELECT d.conversations AS n, d.messages AS m, d.tokens AS t FROM conversationsDaily d, w WHERE d.day > w.start::date UNION ALL SELECT count(*), SUM(messageCount), SUM(tokenCount) FROM conversations, w WHERE deletedAt IS NULL AND createdAt >= w.start AND createdAt < w.start::date + 1) SELECT CASE WHEN SUM(n) > 0 THEN (SUM(m)::numeric / SUM(n)::numeric)::text END AS avg_messages, CASE WHEN SUM(n) > 0 THEN (SUM(t)::numeric / SUM(n)::numeric)::text END AS avg_tokens FROM parts"
  [OverdueInvoices]="SELECT invoiceId AS id, invoiceNumber AS invoice_number, userId AS user_id, total::text AS total, dueDate AS due_date FROM invoices WHERE status = 'open' AND dueDate < CURRENT_DATE ORDER BY dueDate, invoiceNumber, invoiceId LIMIT 101"
  [LifetimeValue]="SELECT l.userId AS user_id, l.amount::text AS amount, l.paymentCount AS payment_count, l.total::text AS total_spent, u.createdAt AS signup_date FROM paymentsLifetime l JOIN users u ON u.userId = l.userId WHERE l.paymentCount > 0 AND u.deletedAt IS NULL AND u.createdAt IS NOT NULL ORDER BY l.total DESC, l.userId, l.amount LIMIT 101"
)
plans=""
for q in $slowest; do
  sql=${SQL[${q%@*}]:-}
  if [ -z "$sql" ]; then
    plans+=$'\n'"**$q**: (no EXPLAIN recorded: see crates/analytics/src/store/queries.rs)"$'\n'
    continue
  fi
  plan=$(psql "$url" -qAtc "SET TIME ZONE 'UTC'" -c "EXPLAIN (ANALYZE, BUFFERS) $sql")
  plans+=$'\n'"**$q** (\`EXPLAIN (ANALYZE, BUFFERS)\`):"$'\n\n```\n'"$plan"$'\n```\n'
done

ingest_results=""
for batch in "$BENCH_BATCH" 1; do
  # One event per transaction runs at a few hundred events/s: fewer of them.
  events=$BENCH_EVENTS
  [ "$batch" = 1 ] && events=$BENCH_EVENTS_ONE
  for backlog in "" --backlog; do
    log "ingest: $events events, batch $batch $backlog"
    line=$("$bin" ingest --events "$events" --batch "$batch" $backlog)
    log "$line"
    ingest_results+="$line"$'\n'
  done
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
query_table=$(python3 -c '
import json, sys
print("| query | rows answered | p50 ms | p99 ms | p99 < 50 ms |")
print("|---|---|---|---|---|")
for line in sys.stdin:
    if line.strip():
        r = json.loads(line)
        print("| {query} | {rows} | {p50_ms:.1f} | {p99_ms:.1f} | {ok} |".format(ok="yes" if r["p99_ms"] < 50 else "**no**", **r))
' <<<"$query_results")
ingest_table=$(python3 -c '
import json, sys
print("| mode | measured | events | seconds | events/s | load avg | process CPU µs/event | PostgreSQL CPU µs/event |")
print("|---|---|---|---|---|---|---|---|")
for line in sys.stdin:
    if line.strip():
        r = json.loads(line)
        mode = "one event per transaction" if r["batch"] == 1 else "batches of up to %d" % r["batch"]
        what = "backlog drained (published first, consumer started after)" if r["scenario"] == "backlog" else "end to end (first publish → last event applied)"
        print("| {} | {} | {} | {:.1f} | {:.0f} | {:.1f} | {:.1f} | {:.1f} |".format(mode, what, r["events"], r["seconds"], r["events_per_s"], r.get("load_average", 0), r.get("process_cpu_us_per_event", 0), r.get("postgres_cpu_us_per_event", 0)))
' <<<"$ingest_results")
read -r n_users n_usage n_chat n_conv n_pay n_inv size <<<"$sizes"
block=$(cat <<MD
<!-- BENCH:analytics:start -->
Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($cpu), shared with the bench process, PostgreSQL
and RabbitMQ (numbers are noisy); $BENCH_PROFILE build; \`make bench-analytics\`.

Data (deploy/local/bench_analytics.sql): $n_users users, $n_usage tokenUsage facts over 13 months,
$n_chat chatAnalytics rows, $n_conv conversations, $n_pay payments, $n_inv invoices; database $size.
Queries through \`store::queries\` (what the gRPC service calls), $BENCH_RUNS runs each after one warm-up;
TokenUsageByUser/ByModel for last month, Signups/TopUsers/ConversationLength over 30 days, DailySeries over 30 days.
The paged lists (TokenUsageByUser, OverdueInvoices, LifetimeValue): their first page of 100 rows (the largest
\`?limit=\`), and \`@deep\` the page of 100 after the first 100,000 rows (or the list's last page when shorter).

$query_table

The two slowest:
$plans
Ingest (chat events: a user message, an assistant message and its tokenUsage per exchange, each with the
conversation's counters), published at once to a queue of its own:

$ingest_table
<!-- BENCH:analytics:end -->
MD
)
python3 - "$block" <<'PY'
import re, sys, pathlib
path = pathlib.Path("docs/benchmarks.md")
text = path.read_text()
block = sys.argv[1]
pattern = re.compile(r"<!-- BENCH:analytics:start -->.*?<!-- BENCH:analytics:end -->", re.S)
text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n## Analytics\n\n" + block + "\n"
path.write_text(text)
PY
log "results written to docs/benchmarks.md"
