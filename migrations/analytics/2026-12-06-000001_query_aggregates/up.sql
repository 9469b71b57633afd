-- Issue 14's query target (every admin query p99 < 50 ms at 1 M users and
-- 10 M tokenUsage facts, docs/benchmarks.md): aggregates the queries read
-- instead of the read models' rows, so each reads about as many rows as it
-- answers.
--
-- They are kept by statement-level AFTER triggers on the read models, with
-- transition tables: whatever writes a row (an event one at a time, a batch,
-- backfill, a COPY) moves the aggregates by exactly (what the new rows
-- count) - (what the old rows counted), in the statement's transaction. So
-- the read models' ordering rules (facts once by id, states by version,
-- tombstones) carry over unchanged: a duplicate or an older state writes no
-- row and moves nothing. Each trigger writes its keys in key order (fewer
-- lock-order deadlocks between concurrent consumers), and skips keys whose
-- delta is zero (a profile update does not touch the plan counters).
--
-- Windows relative to now stay exact: counters are per UTC day (or per
-- period day), and the query reads the days wholly inside its window from
-- them and the part-day at its start from the rows.
SET lock_timeout = '10s';

-- TokenUsageByUser: a month's tokens and cost per user, in the answer's
-- order (keyset pages).
CREATE TABLE tokenUsageUserMonthly (
  billingMonth DATE NOT NULL,
  userId UUID NOT NULL,
  usageCount BIGINT NOT NULL DEFAULT 0,
  totalTokens BIGINT NOT NULL DEFAULT 0,
  costUsd NUMERIC(20, 6) NOT NULL DEFAULT 0,
  PRIMARY KEY (billingMonth, userId)
);
CREATE INDEX idx_tokenUsageUserMonthly_order ON tokenUsageUserMonthly(billingMonth, totalTokens DESC, userId)
  INCLUDE (costUsd) WHERE usageCount > 0;

-- LifetimeValue: the succeeded payments per user and amount, in the
-- answer's order.
CREATE TABLE paymentsLifetime (
  userId UUID NOT NULL,
  amount NUMERIC(10, 2) NOT NULL,
  paymentCount BIGINT NOT NULL DEFAULT 0,
  total NUMERIC(20, 2) NOT NULL DEFAULT 0,
  PRIMARY KEY (userId, amount)
);
CREATE INDEX idx_paymentsLifetime_order ON paymentsLifetime(total DESC, userId, amount)
  INCLUDE (paymentCount) WHERE paymentCount > 0;

-- UsersByPlan: the counted users (not deleted, active, registration known)
-- per tier. Signups and DailySeries: the not deleted users per UTC day of
-- createdAt.
CREATE TABLE usersPlanCounts (
  planTier VARCHAR(50) PRIMARY KEY,
  users BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE signupsDaily (
  day DATE PRIMARY KEY,
  users BIGINT NOT NULL DEFAULT 0
);

-- Subscriptions and Mrr: the active subscriptions of not deleted users, per
-- plan (planId; the nil uuid when the event named none, then planTier), per
-- billingInterval ('' unknown) and per period: the first UTC day not before
-- currentPeriodStart / currentPeriodEnd (for a day D, start <= D 00:00 iff
-- startDay <= D, and end > D 00:00 iff endDay > D; unknown: 'infinity' /
-- '-infinity', which no day passes).
CREATE TABLE subscriptionsActive (
  planId UUID NOT NULL,
  planTier VARCHAR(50) NOT NULL,
  billingInterval VARCHAR(10) NOT NULL,
  periodStartDay DATE NOT NULL,
  periodEndDay DATE NOT NULL,
  subscriptions BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (planId, planTier, billingInterval, periodStartDay, periodEndDay)
);

-- The first UTC day at or after `t` (`unknown` for NULL).
CREATE FUNCTION day_at_or_after(t TIMESTAMP, unknown DATE) RETURNS DATE
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN t IS NULL THEN unknown WHEN t = date_trunc('day', t) THEN t::date ELSE t::date + 1 END
$$;

-- DailySeries: chatAnalytics summed per day.
CREATE TABLE chatDaily (
  day DATE PRIMARY KEY,
  messages BIGINT NOT NULL DEFAULT 0,
  totalTokens BIGINT NOT NULL DEFAULT 0,
  costUsd NUMERIC(20, 6) NOT NULL DEFAULT 0
);

-- ConversationLength: the live conversations (creation known) per UTC day
-- of createdAt, with their counters summed.
CREATE TABLE conversationsDaily (
  day DATE PRIMARY KEY,
  conversations BIGINT NOT NULL DEFAULT 0,
  messages BIGINT NOT NULL DEFAULT 0,
  tokens BIGINT NOT NULL DEFAULT 0
);

-- subscriptionsActive needs both users and subscriptions: their triggers
-- each read the other table, so each first takes a per-user advisory lock
-- (in user order). Of two concurrent transactions, one writing a user's
-- subscription and one deleting the user, the second waits for the first
-- to end and then reads its row.
CREATE FUNCTION lock_users(users UUID[]) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(u::text, 14))
  FROM (SELECT DISTINCT u FROM unnest(users) AS u ORDER BY u) s;
END $$;

-- The aggregates of the rows there are (what the triggers would have
-- added one statement at a time).
INSERT INTO tokenUsageUserMonthly (billingMonth, userId, usageCount, totalTokens, costUsd)
SELECT billingMonth, userId, count(*), sum(totalTokens), sum(costUsd) FROM tokenUsage GROUP BY 1, 2;
INSERT INTO paymentsLifetime (userId, amount, paymentCount, total)
SELECT userId, amount, count(*), sum(amount) FROM payments WHERE status = 'succeeded' GROUP BY 1, 2;
INSERT INTO usersPlanCounts (planTier, users)
SELECT planTier, count(*) FROM users WHERE deletedAt IS NULL AND isActive AND createdAt IS NOT NULL
GROUP BY 1;
INSERT INTO signupsDaily (day, users)
SELECT createdAt::date, count(*) FROM users WHERE deletedAt IS NULL AND createdAt IS NOT NULL GROUP BY 1;
INSERT INTO subscriptionsActive (planId, planTier, billingInterval, periodStartDay, periodEndDay,
                                 subscriptions)
SELECT COALESCE(s.planId, '00000000-0000-0000-0000-000000000000'::uuid), COALESCE(s.planTier, ''),
  COALESCE(s.billingInterval, ''), day_at_or_after(s.currentPeriodStart, 'infinity'),
  day_at_or_after(s.currentPeriodEnd, '-infinity'), count(*)
FROM subscriptions s
WHERE s.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM users du WHERE du.userId = s.userId AND du.deletedAt IS NOT NULL)
GROUP BY 1, 2, 3, 4, 5;
INSERT INTO chatDaily (day, messages, totalTokens, costUsd)
SELECT day, sum(messages), sum(totalTokens), sum(costUsd) FROM chatAnalytics GROUP BY 1;
INSERT INTO conversationsDaily (day, conversations, messages, tokens)
SELECT createdAt::date, count(*), sum(messageCount), sum(tokenCount) FROM conversations
WHERE deletedAt IS NULL AND createdAt IS NOT NULL GROUP BY 1;

-- OverdueInvoices pages: the open invoices in the answer's order.
CREATE INDEX idx_invoices_open_order ON invoices(dueDate, invoiceNumber, invoiceId)
  INCLUDE (userId, total) WHERE status = 'open';
DROP INDEX idx_invoices_open_dueDate;

-- The triggers (written out per operation: a trigger has only the
-- transition tables of its operation). `sign`: +1 for a new row, -1 for an
-- old one.
CREATE FUNCTION token_usage_user_monthly() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO tokenUsageUserMonthly AS m (billingMonth, userId, usageCount, totalTokens, costUsd)
    SELECT billingMonth, userId, sum(sign), sum(sign * totalTokens), sum(sign * costUsd) FROM (SELECT r.*, 1 AS sign FROM new_rows r) d
    GROUP BY 1, 2 HAVING sum(sign) <> 0 OR sum(sign * totalTokens) <> 0 OR sum(sign * costUsd) <> 0
    ORDER BY 1, 2
    ON CONFLICT (billingMonth, userId) DO UPDATE SET usageCount = m.usageCount + EXCLUDED.usageCount,
      totalTokens = m.totalTokens + EXCLUDED.totalTokens, costUsd = m.costUsd + EXCLUDED.costUsd;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO tokenUsageUserMonthly AS m (billingMonth, userId, usageCount, totalTokens, costUsd)
    SELECT billingMonth, userId, sum(sign), sum(sign * totalTokens), sum(sign * costUsd) FROM (SELECT r.*, 1 AS sign FROM new_rows r UNION ALL SELECT r.*, -1 FROM old_rows r) d
    GROUP BY 1, 2 HAVING sum(sign) <> 0 OR sum(sign * totalTokens) <> 0 OR sum(sign * costUsd) <> 0
    ORDER BY 1, 2
    ON CONFLICT (billingMonth, userId) DO UPDATE SET usageCount = m.usageCount + EXCLUDED.usageCount,
      totalTokens = m.totalTokens + EXCLUDED.totalTokens, costUsd = m.costUsd + EXCLUDED.costUsd;
  ELSE
    INSERT INTO tokenUsageUserMonthly AS m (billingMonth, userId, usageCount, totalTokens, costUsd)
    SELECT billingMonth, userId, sum(sign), sum(sign * totalTokens), sum(sign * costUsd) FROM (SELECT r.*, -1 AS sign FROM old_rows r) d
    GROUP BY 1, 2 HAVING sum(sign) <> 0 OR sum(sign * totalTokens) <> 0 OR sum(sign * costUsd) <> 0
    ORDER BY 1, 2
    ON CONFLICT (billingMonth, userId) DO UPDATE SET usageCount = m.usageCount + EXCLUDED.usageCount,
      totalTokens = m.totalTokens + EXCLUDED.totalTokens, costUsd = m.costUsd + EXCLUDED.costUsd;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER token_usage_user_monthly_insert AFTER INSERT ON tokenUsage
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION token_usage_user_monthly();
CREATE TRIGGER token_usage_user_monthly_update AFTER UPDATE ON tokenUsage
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION token_usage_user_monthly();
CREATE TRIGGER token_usage_user_monthly_delete AFTER DELETE ON tokenUsage
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION token_usage_user_monthly();

CREATE FUNCTION payments_lifetime() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO paymentsLifetime AS l (userId, amount, paymentCount, total)
    SELECT userId, amount, sum(sign), sum(sign * amount) FROM (SELECT r.*, 1 AS sign FROM new_rows r) d WHERE status = 'succeeded'
    GROUP BY 1, 2 HAVING sum(sign) <> 0 ORDER BY 1, 2
    ON CONFLICT (userId, amount) DO UPDATE SET paymentCount = l.paymentCount + EXCLUDED.paymentCount,
      total = l.total + EXCLUDED.total;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO paymentsLifetime AS l (userId, amount, paymentCount, total)
    SELECT userId, amount, sum(sign), sum(sign * amount) FROM (SELECT r.*, 1 AS sign FROM new_rows r UNION ALL SELECT r.*, -1 FROM old_rows r) d WHERE status = 'succeeded'
    GROUP BY 1, 2 HAVING sum(sign) <> 0 ORDER BY 1, 2
    ON CONFLICT (userId, amount) DO UPDATE SET paymentCount = l.paymentCount + EXCLUDED.paymentCount,
      total = l.total + EXCLUDED.total;
  ELSE
    INSERT INTO paymentsLifetime AS l (userId, amount, paymentCount, total)
    SELECT userId, amount, sum(sign), sum(sign * amount) FROM (SELECT r.*, -1 AS sign FROM old_rows r) d WHERE status = 'succeeded'
    GROUP BY 1, 2 HAVING sum(sign) <> 0 ORDER BY 1, 2
    ON CONFLICT (userId, amount) DO UPDATE SET paymentCount = l.paymentCount + EXCLUDED.paymentCount,
      total = l.total + EXCLUDED.total;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER payments_lifetime_insert AFTER INSERT ON payments
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION payments_lifetime();
CREATE TRIGGER payments_lifetime_update AFTER UPDATE ON payments
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION payments_lifetime();
CREATE TRIGGER payments_lifetime_delete AFTER DELETE ON payments
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION payments_lifetime();

CREATE FUNCTION subscriptions_active() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM lock_users(ARRAY(SELECT userId FROM (SELECT r.*, 1 AS sign FROM new_rows r) d));
    INSERT INTO subscriptionsActive AS a (planId, planTier, billingInterval, periodStartDay,
                                          periodEndDay, subscriptions)
    SELECT COALESCE(s.planId, '00000000-0000-0000-0000-000000000000'::uuid), COALESCE(s.planTier, ''),
      COALESCE(s.billingInterval, ''), day_at_or_after(s.currentPeriodStart, 'infinity'),
      day_at_or_after(s.currentPeriodEnd, '-infinity'), sum(s.sign)
    FROM (SELECT r.*, 1 AS sign FROM new_rows r) s
    WHERE s.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM users du WHERE du.userId = s.userId AND du.deletedAt IS NOT NULL)
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(s.sign) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (planId, planTier, billingInterval, periodStartDay, periodEndDay)
    DO UPDATE SET subscriptions = a.subscriptions + EXCLUDED.subscriptions;
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM lock_users(ARRAY(SELECT userId FROM (SELECT r.*, 1 AS sign FROM new_rows r UNION ALL SELECT r.*, -1 FROM old_rows r) d));
    INSERT INTO subscriptionsActive AS a (planId, planTier, billingInterval, periodStartDay,
                                          periodEndDay, subscriptions)
    SELECT COALESCE(s.planId, '00000000-0000-0000-0000-000000000000'::uuid), COALESCE(s.planTier, ''),
      COALESCE(s.billingInterval, ''), day_at_or_after(s.currentPeriodStart, 'infinity'),
      day_at_or_after(s.currentPeriodEnd, '-infinity'), sum(s.sign)
    FROM (SELECT r.*, 1 AS sign FROM new_rows r UNION ALL SELECT r.*, -1 FROM old_rows r) s
    WHERE s.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM users du WHERE du.userId = s.userId AND du.deletedAt IS NOT NULL)
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(s.sign) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (planId, planTier, billingInterval, periodStartDay, periodEndDay)
    DO UPDATE SET subscriptions = a.subscriptions + EXCLUDED.subscriptions;
  ELSE
    PERFORM lock_users(ARRAY(SELECT userId FROM (SELECT r.*, -1 AS sign FROM old_rows r) d));
    INSERT INTO subscriptionsActive AS a (planId, planTier, billingInterval, periodStartDay,
                                          periodEndDay, subscriptions)
    SELECT COALESCE(s.planId, '00000000-0000-0000-0000-000000000000'::uuid), COALESCE(s.planTier, ''),
      COALESCE(s.billingInterval, ''), day_at_or_after(s.currentPeriodStart, 'infinity'),
      day_at_or_after(s.currentPeriodEnd, '-infinity'), sum(s.sign)
    FROM (SELECT r.*, -1 AS sign FROM old_rows r) s
    WHERE s.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM users du WHERE du.userId = s.userId AND du.deletedAt IS NOT NULL)
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(s.sign) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (planId, planTier, billingInterval, periodStartDay, periodEndDay)
    DO UPDATE SET subscriptions = a.subscriptions + EXCLUDED.subscriptions;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER subscriptions_active_insert AFTER INSERT ON subscriptions
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION subscriptions_active();
CREATE TRIGGER subscriptions_active_update AFTER UPDATE ON subscriptions
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION subscriptions_active();
CREATE TRIGGER subscriptions_active_delete AFTER DELETE ON subscriptions
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION subscriptions_active();

CREATE FUNCTION users_aggregates() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  flipped UUID[];
  flips BIGINT[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO usersPlanCounts AS c (planTier, users)
    SELECT planTier, sum(sign) FROM (SELECT r.*, 1 AS sign FROM new_rows r) d
    WHERE deletedAt IS NULL AND isActive AND createdAt IS NOT NULL
    GROUP BY 1 HAVING sum(sign) <> 0 ORDER BY 1
    ON CONFLICT (planTier) DO UPDATE SET users = c.users + EXCLUDED.users;
    INSERT INTO signupsDaily AS c (day, users)
    SELECT createdAt::date, sum(sign) FROM (SELECT r.*, 1 AS sign FROM new_rows r) d
    WHERE deletedAt IS NULL AND createdAt IS NOT NULL
    GROUP BY 1 HAVING sum(sign) <> 0 ORDER BY 1
    ON CONFLICT (day) DO UPDATE SET users = c.users + EXCLUDED.users;
    -- Users deleted (+1) or no longer deleted (-1): their active subscription
    -- leaves (or re-enters) subscriptionsActive.
    SELECT array_agg(userId), array_agg(flip) INTO flipped, flips FROM (
        SELECT userId, sum(CASE WHEN deletedAt IS NOT NULL THEN sign ELSE 0 END) AS flip
        FROM (SELECT r.*, 1 AS sign FROM new_rows r) d GROUP BY 1) f WHERE flip <> 0;
    IF flipped IS NOT NULL THEN
      PERFORM lock_users(flipped);
      INSERT INTO subscriptionsActive AS a (planId, planTier, billingInterval, periodStartDay,
                                            periodEndDay, subscriptions)
      SELECT COALESCE(s.planId, '00000000-0000-0000-0000-000000000000'::uuid), COALESCE(s.planTier, ''),
      COALESCE(s.billingInterval, ''), day_at_or_after(s.currentPeriodStart, 'infinity'),
      day_at_or_after(s.currentPeriodEnd, '-infinity'), sum(-f.flip)
      FROM unnest(flipped, flips) AS f (userId, flip) JOIN subscriptions s ON s.userId = f.userId
      WHERE s.status = 'active'
      GROUP BY 1, 2, 3, 4, 5 HAVING sum(-f.flip) <> 0 ORDER BY 1, 2, 3, 4, 5
      ON CONFLICT (planId, planTier, billingInterval, periodStartDay, periodEndDay)
    DO UPDATE SET subscriptions = a.subscriptions + EXCLUDED.subscriptions;
    END IF;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO usersPlanCounts AS c (planTier, users)
    SELECT planTier, sum(sign) FROM (SELECT r.*, 1 AS sign FROM new_rows r UNION ALL SELECT r.*, -1 FROM old_rows r) d
    WHERE deletedAt IS NULL AND isActive AND createdAt IS NOT NULL
    GROUP BY 1 HAVING sum(sign) <> 0 ORDER BY 1
    ON CONFLICT (planTier) DO UPDATE SET users = c.users + EXCLUDED.users;
    INSERT INTO signupsDaily AS c (day, users)
    SELECT createdAt::date, sum(sign) FROM (SELECT r.*, 1 AS sign FROM new_rows r UNION ALL SELECT r.*, -1 FROM old_rows r) d
    WHERE deletedAt IS NULL AND createdAt IS NOT NULL
    GROUP BY 1 HAVING sum(sign) <> 0 ORDER BY 1
    ON CONFLICT (day) DO UPDATE SET users = c.users + EXCLUDED.users;
    -- Users deleted (+1) or no longer deleted (-1): their active subscription
    -- leaves (or re-enters) subscriptionsActive.
    SELECT array_agg(userId), array_agg(flip) INTO flipped, flips FROM (
        SELECT userId, sum(CASE WHEN deletedAt IS NOT NULL THEN sign ELSE 0 END) AS flip
        FROM (SELECT r.*, 1 AS sign FROM new_rows r UNION ALL SELECT r.*, -1 FROM old_rows r) d GROUP BY 1) f WHERE flip <> 0;
    IF flipped IS NOT NULL THEN
      PERFORM lock_users(flipped);
      INSERT INTO subscriptionsActive AS a (planId, planTier, billingInterval, periodStartDay,
                                            periodEndDay, subscriptions)
      SELECT COALESCE(s.planId, '00000000-0000-0000-0000-000000000000'::uuid), COALESCE(s.planTier, ''),
      COALESCE(s.billingInterval, ''), day_at_or_after(s.currentPeriodStart, 'infinity'),
      day_at_or_after(s.currentPeriodEnd, '-infinity'), sum(-f.flip)
      FROM unnest(flipped, flips) AS f (userId, flip) JOIN subscriptions s ON s.userId = f.userId
      WHERE s.status = 'active'
      GROUP BY 1, 2, 3, 4, 5 HAVING sum(-f.flip) <> 0 ORDER BY 1, 2, 3, 4, 5
      ON CONFLICT (planId, planTier, billingInterval, periodStartDay, periodEndDay)
    DO UPDATE SET subscriptions = a.subscriptions + EXCLUDED.subscriptions;
    END IF;
  ELSE
    INSERT INTO usersPlanCounts AS c (planTier, users)
    SELECT planTier, sum(sign) FROM (SELECT r.*, -1 AS sign FROM old_rows r) d
    WHERE deletedAt IS NULL AND isActive AND createdAt IS NOT NULL
    GROUP BY 1 HAVING sum(sign) <> 0 ORDER BY 1
    ON CONFLICT (planTier) DO UPDATE SET users = c.users + EXCLUDED.users;
    INSERT INTO signupsDaily AS c (day, users)
    SELECT createdAt::date, sum(sign) FROM (SELECT r.*, -1 AS sign FROM old_rows r) d
    WHERE deletedAt IS NULL AND createdAt IS NOT NULL
    GROUP BY 1 HAVING sum(sign) <> 0 ORDER BY 1
    ON CONFLICT (day) DO UPDATE SET users = c.users + EXCLUDED.users;
    -- Users deleted (+1) or no longer deleted (-1): their active subscription
    -- leaves (or re-enters) subscriptionsActive.
    SELECT array_agg(userId), array_agg(flip) INTO flipped, flips FROM (
        SELECT userId, sum(CASE WHEN deletedAt IS NOT NULL THEN sign ELSE 0 END) AS flip
        FROM (SELECT r.*, -1 AS sign FROM old_rows r) d GROUP BY 1) f WHERE flip <> 0;
    IF flipped IS NOT NULL THEN
      PERFORM lock_users(flipped);
      INSERT INTO subscriptionsActive AS a (planId, planTier, billingInterval, periodStartDay,
                                            periodEndDay, subscriptions)
      SELECT COALESCE(s.planId, '00000000-0000-0000-0000-000000000000'::uuid), COALESCE(s.planTier, ''),
      COALESCE(s.billingInterval, ''), day_at_or_after(s.currentPeriodStart, 'infinity'),
      day_at_or_after(s.currentPeriodEnd, '-infinity'), sum(-f.flip)
      FROM unnest(flipped, flips) AS f (userId, flip) JOIN subscriptions s ON s.userId = f.userId
      WHERE s.status = 'active'
      GROUP BY 1, 2, 3, 4, 5 HAVING sum(-f.flip) <> 0 ORDER BY 1, 2, 3, 4, 5
      ON CONFLICT (planId, planTier, billingInterval, periodStartDay, periodEndDay)
    DO UPDATE SET subscriptions = a.subscriptions + EXCLUDED.subscriptions;
    END IF;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER users_aggregates_insert AFTER INSERT ON users
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION users_aggregates();
CREATE TRIGGER users_aggregates_update AFTER UPDATE ON users
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION users_aggregates();
CREATE TRIGGER users_aggregates_delete AFTER DELETE ON users
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION users_aggregates();

CREATE FUNCTION chat_daily() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO chatDaily AS c (day, messages, totalTokens, costUsd)
    SELECT day, sum(sign * messages), sum(sign * totalTokens), sum(sign * costUsd) FROM (SELECT r.*, 1 AS sign FROM new_rows r) d
    GROUP BY 1 HAVING sum(sign * messages) <> 0 OR sum(sign * totalTokens) <> 0 OR sum(sign * costUsd) <> 0
    ORDER BY 1
    ON CONFLICT (day) DO UPDATE SET messages = c.messages + EXCLUDED.messages,
      totalTokens = c.totalTokens + EXCLUDED.totalTokens, costUsd = c.costUsd + EXCLUDED.costUsd;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO chatDaily AS c (day, messages, totalTokens, costUsd)
    SELECT day, sum(sign * messages), sum(sign * totalTokens), sum(sign * costUsd) FROM (SELECT r.*, 1 AS sign FROM new_rows r UNION ALL SELECT r.*, -1 FROM old_rows r) d
    GROUP BY 1 HAVING sum(sign * messages) <> 0 OR sum(sign * totalTokens) <> 0 OR sum(sign * costUsd) <> 0
    ORDER BY 1
    ON CONFLICT (day) DO UPDATE SET messages = c.messages + EXCLUDED.messages,
      totalTokens = c.totalTokens + EXCLUDED.totalTokens, costUsd = c.costUsd + EXCLUDED.costUsd;
  ELSE
    INSERT INTO chatDaily AS c (day, messages, totalTokens, costUsd)
    SELECT day, sum(sign * messages), sum(sign * totalTokens), sum(sign * costUsd) FROM (SELECT r.*, -1 AS sign FROM old_rows r) d
    GROUP BY 1 HAVING sum(sign * messages) <> 0 OR sum(sign * totalTokens) <> 0 OR sum(sign * costUsd) <> 0
    ORDER BY 1
    ON CONFLICT (day) DO UPDATE SET messages = c.messages + EXCLUDED.messages,
      totalTokens = c.totalTokens + EXCLUDED.totalTokens, costUsd = c.costUsd + EXCLUDED.costUsd;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER chat_daily_insert AFTER INSERT ON chatAnalytics
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chat_daily();
CREATE TRIGGER chat_daily_update AFTER UPDATE ON chatAnalytics
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chat_daily();
CREATE TRIGGER chat_daily_delete AFTER DELETE ON chatAnalytics
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chat_daily();

CREATE FUNCTION conversations_daily() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO conversationsDaily AS c (day, conversations, messages, tokens)
    SELECT createdAt::date, sum(sign), sum(sign * messageCount), sum(sign * tokenCount) FROM (SELECT r.*, 1 AS sign FROM new_rows r) d
    WHERE deletedAt IS NULL AND createdAt IS NOT NULL
    GROUP BY 1 HAVING sum(sign) <> 0 OR sum(sign * messageCount) <> 0 OR sum(sign * tokenCount) <> 0
    ORDER BY 1
    ON CONFLICT (day) DO UPDATE SET conversations = c.conversations + EXCLUDED.conversations,
      messages = c.messages + EXCLUDED.messages, tokens = c.tokens + EXCLUDED.tokens;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO conversationsDaily AS c (day, conversations, messages, tokens)
    SELECT createdAt::date, sum(sign), sum(sign * messageCount), sum(sign * tokenCount) FROM (SELECT r.*, 1 AS sign FROM new_rows r UNION ALL SELECT r.*, -1 FROM old_rows r) d
    WHERE deletedAt IS NULL AND createdAt IS NOT NULL
    GROUP BY 1 HAVING sum(sign) <> 0 OR sum(sign * messageCount) <> 0 OR sum(sign * tokenCount) <> 0
    ORDER BY 1
    ON CONFLICT (day) DO UPDATE SET conversations = c.conversations + EXCLUDED.conversations,
      messages = c.messages + EXCLUDED.messages, tokens = c.tokens + EXCLUDED.tokens;
  ELSE
    INSERT INTO conversationsDaily AS c (day, conversations, messages, tokens)
    SELECT createdAt::date, sum(sign), sum(sign * messageCount), sum(sign * tokenCount) FROM (SELECT r.*, -1 AS sign FROM old_rows r) d
    WHERE deletedAt IS NULL AND createdAt IS NOT NULL
    GROUP BY 1 HAVING sum(sign) <> 0 OR sum(sign * messageCount) <> 0 OR sum(sign * tokenCount) <> 0
    ORDER BY 1
    ON CONFLICT (day) DO UPDATE SET conversations = c.conversations + EXCLUDED.conversations,
      messages = c.messages + EXCLUDED.messages, tokens = c.tokens + EXCLUDED.tokens;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER conversations_daily_insert AFTER INSERT ON conversations
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION conversations_daily();
CREATE TRIGGER conversations_daily_update AFTER UPDATE ON conversations
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION conversations_daily();
CREATE TRIGGER conversations_daily_delete AFTER DELETE ON conversations
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION conversations_daily();

