-- `make bench-analytics`: read-model data at the size issue 14 names, made
-- inside a migrated analytics database with generate_series (no events):
-- :users users (default 1,000,000) and :usage tokenUsage facts (default
-- 10,000,000) over the last 13 months, skewed over users (a power law: the
-- busiest 1% of users make about a fifth of the usage) and models (a few
-- popular ones), with the conversations, subscriptions, payments, invoices,
-- chatAnalytics and revenueAnalytics rows that go with them. Deterministic
-- ids (md5 of a counter), random values. Run by deploy/local/bench_analytics.sh,
-- not by `make test`.
--
--   psql -v users=1000000 -v usage=10000000 -f deploy/local/bench_analytics.sql "$DATABASE_URL"
\set ON_ERROR_STOP on
\if :{?users}
\else
  \set users 1000000
\endif
\if :{?usage}
\else
  \set usage 10000000
\endif
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
SET work_mem = '256MB';
SELECT setseed(0.14);

-- 13 months of history: the months before the migration's year back.
SELECT create_monthly_partitions(t, (date_trunc('month', CURRENT_DATE) - INTERVAL '13 months')::date, 14)
FROM unnest(ARRAY['userEvents', 'chatAnalytics', 'tokenUsage', 'messages']) AS t;

TRUNCATE users, plans, subscriptions, payments, invoices, conversations, tokenUsage, messages,
  chatAnalytics, revenueAnalytics, userEvents, tokenUsageMonthly, tokenUsageUserMonthly,
  paymentsLifetime, usersPlanCounts, signupsDaily, subscriptionsActive, chatDaily, conversationsDaily,
  conversationsUserMonthly;
-- The queries' aggregates (tokenUsageUserMonthly, paymentsLifetime, usersPlanCounts, signupsDaily,
-- subscriptionsActive, chatDaily, conversationsDaily, conversationsUserMonthly) are filled by their
-- triggers as the rows below are inserted, as the consumer's writes fill them.

INSERT INTO plans (id, name, tier, monthlyPrice, yearlyPrice) VALUES
  (md5('plan-free')::uuid, 'Free', 'FREE', 0, NULL),
  (md5('plan-plus')::uuid, 'Plus', 'PLUS', 20, 200),
  (md5('plan-pro')::uuid, 'Pro', 'PRO', 50, 500);

-- Users and subscriptions go in chunks of 10,000 users, a transaction each:
-- their triggers take a transaction advisory lock per user whose active
-- subscription changes (lock_users), and a million in one transaction would
-- overflow PostgreSQL's lock table (max_locks_per_transaction).
SET bench.users = :users;

-- Users: growth over 13 months (more signups recently), 85% Free, 10% Plus,
-- 5% Pro, 2% deleted, 3% inactive.
-- Subscriptions: every Plus/Pro user; 80% monthly; 90% active in a period
-- around today, the rest canceled.
DO $$
DECLARE
  n INT := current_setting('bench.users')::int;
BEGIN
  FOR lo IN 1..n BY 10000 LOOP
    INSERT INTO users (userId, createdAt, planTier, planTierVersion, role, emailVerified, isActive,
                       profileVersion, deletedAt)
    SELECT md5('user' || i)::uuid,
           c,
           CASE WHEN r < 0.85 THEN 'FREE' WHEN r < 0.95 THEN 'PLUS' ELSE 'PRO' END,
           CASE WHEN r >= 0.85 THEN c + interval '1 day' END,
           'user', random() < 0.8, random() >= 0.03, c,
           CASE WHEN random() < 0.02 THEN c + interval '30 days' END
    FROM (SELECT i, random() AS r,
                 LOCALTIMESTAMP - (sqrt(random()) * 395) * interval '1 day' AS c
          FROM generate_series(lo, least(lo + 9999, n)) AS i) g;

    INSERT INTO subscriptions (userId, subscriptionId, planId, planTier, status, billingInterval,
                               currentPeriodStart, currentPeriodEnd, createdAt, canceledAt, version)
    SELECT u.userId, md5('sub' || u.userId)::uuid,
           CASE u.planTier WHEN 'PLUS' THEN md5('plan-plus')::uuid ELSE md5('plan-pro')::uuid END,
           u.planTier,
           CASE WHEN r < 0.9 THEN 'active' ELSE 'canceled' END,
           CASE WHEN y THEN 'year' ELSE 'month' END,
           s, s + CASE WHEN y THEN interval '1 year' ELSE interval '1 month' END,
           u.createdAt + interval '1 day',
           CASE WHEN r >= 0.9 THEN s END,
           s
    FROM (SELECT userId, planTier, createdAt, random() AS r, random() < 0.2 AS y,
                 date_trunc('day', LOCALTIMESTAMP) - (random() * 27) * interval '1 day' AS s
          FROM generate_series(lo, least(lo + 9999, n)) AS i
          JOIN users ON userId = md5('user' || i)::uuid
          WHERE planTier <> 'FREE') u;
    COMMIT;
  END LOOP;
END $$;

-- Payments: one a month since the subscription began; 95% succeeded, 1%
-- refunded, 4% failed; an invoice for each: paid, or for a failed payment
-- open (the last 60 days, most of them past due) or uncollectible.
INSERT INTO payments (paymentId, userId, amount, amountRefunded, currency, status, createdAt, version)
SELECT md5('pay' || s.userId || m)::uuid, s.userId,
       CASE s.planTier WHEN 'PLUS' THEN 20 ELSE 50 END,
       CASE WHEN r >= 0.95 AND r < 0.96 THEN CASE s.planTier WHEN 'PLUS' THEN 20 ELSE 50 END ELSE 0 END,
       'usd',
       CASE WHEN r < 0.95 THEN 'succeeded' WHEN r < 0.96 THEN 'refunded' ELSE 'failed' END,
       s.createdAt + m * interval '1 month', s.createdAt + m * interval '1 month'
FROM subscriptions s
CROSS JOIN LATERAL generate_series(0, greatest(0, floor(extract(epoch FROM LOCALTIMESTAMP - s.createdAt)
                                                   / (30 * 86400))::int)) AS m
CROSS JOIN LATERAL (SELECT random() + 0 * m AS r) x;

INSERT INTO invoices (invoiceId, userId, subscriptionId, invoiceNumber, status, subtotal, tax, total,
                      dueDate, paidAt, createdAt, version)
SELECT p.paymentId, p.userId, md5('sub' || p.userId)::uuid,
       'INV-' || lpad(row_number() OVER (ORDER BY p.createdAt, p.paymentId)::text, 9, '0'),
       CASE WHEN p.status <> 'failed' THEN 'paid'
            WHEN p.createdAt > LOCALTIMESTAMP - interval '60 days' THEN 'open' ELSE 'uncollectible' END,
       p.amount, 0, p.amount,
       (p.createdAt + interval '14 days')::date,
       CASE WHEN p.status <> 'failed' THEN p.createdAt END,
       p.createdAt, p.createdAt
FROM payments p;

-- Conversations: 3 per user on average, skewed like the usage.
INSERT INTO conversations (conversationId, userId, model, createdAt, messageCount, tokenCount,
                           countersVersion, deletedAt)
SELECT md5('conv' || i)::uuid, md5('user' || u)::uuid, m, c,
       1 + floor(random() * 40)::int, floor(random() * 20000)::int, c,
       CASE WHEN random() < 0.03 THEN c + interval '1 day' END
FROM (SELECT i,
             1 + floor(:users * power(random(), 3))::int AS u,
             (ARRAY['gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o', 'gpt-4o', 'claude-3-5-sonnet',
                    'claude-3-haiku', 'gpt-3.5-turbo'])[1 + floor(random() * 8)::int] AS m,
             LOCALTIMESTAMP - random() * 395 * interval '1 day' AS c
      FROM generate_series(1, 3 * :users) AS i) g;

-- tokenUsage facts: users by a power law (user k of N with probability
-- ~ k^(-2/3)), models by popularity, 13 months.
INSERT INTO tokenUsage (usageId, billingMonth, userId, conversationId, provider, model, promptTokens,
                        completionTokens, totalTokens, costUsd, createdAt)
SELECT md5('use' || i)::uuid, date_trunc('month', c)::date, md5('user' || u)::uuid,
       md5('conv' || (1 + floor(3 * :users * random())::int))::uuid,
       CASE WHEN m LIKE 'claude%' THEN 'anthropic' ELSE 'openai' END, m,
       p, q, p + q, round((p + q) * 0.000002, 6), c
FROM (SELECT i,
             1 + floor(:users * power(random(), 3))::int AS u,
             (ARRAY['gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o', 'gpt-4o',
                    'claude-3-5-sonnet', 'claude-3-haiku', 'gpt-3.5-turbo', 'o1-mini'])[1 + floor(random() * 10)::int] AS m,
             50 + floor(random() * 1500)::int AS p,
             20 + floor(random() * 800)::int AS q,
             LOCALTIMESTAMP - random() * 395 * interval '1 day' AS c
      FROM generate_series(1, :usage) AS i) g;

-- tokenUsageMonthly: what the consumer adds per new fact.
INSERT INTO tokenUsageMonthly (billingMonth, model, usageCount, totalTokens, costUsd)
SELECT billingMonth, model, count(*), sum(totalTokens), sum(costUsd) FROM tokenUsage GROUP BY 1, 2;

-- chatAnalytics: what the consumer bumps per fact (messages: a user and an
-- assistant message per call).
INSERT INTO chatAnalytics (day, userId, model, messages, promptTokens, completionTokens, totalTokens, costUsd)
SELECT createdAt::date, userId, model, 2 * count(*), sum(promptTokens), sum(completionTokens),
       sum(totalTokens), sum(costUsd)
FROM tokenUsage GROUP BY 1, 2, 3;

-- revenueAnalytics: per day from the payments and subscriptions.
INSERT INTO revenueAnalytics (day, revenue, newSubscriptions, churnedSubscriptions, mrr)
SELECT d::date,
       COALESCE((SELECT sum(amount - amountRefunded) FROM payments
                 WHERE status IN ('succeeded', 'refunded') AND createdAt >= d AND createdAt < d + interval '1 day'), 0),
       (SELECT count(*) FROM subscriptions WHERE createdAt >= d AND createdAt < d + interval '1 day'),
       (SELECT count(*) FROM subscriptions WHERE canceledAt >= d AND canceledAt < d + interval '1 day'),
       CASE WHEN d::date = CURRENT_DATE THEN 0 END
FROM generate_series(CURRENT_DATE - 395, CURRENT_DATE, interval '1 day') AS d;

VACUUM ANALYZE;
SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM tokenUsage) AS token_usage,
       (SELECT count(*) FROM chatAnalytics) AS chat_analytics,
       (SELECT count(*) FROM conversations) AS conversations,
       (SELECT count(*) FROM subscriptions) AS subscriptions,
       (SELECT count(*) FROM payments) AS payments, (SELECT count(*) FROM invoices) AS invoices;
