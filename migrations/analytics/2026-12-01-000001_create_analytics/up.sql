-- analytics: the seed's userEvents, chatAnalytics and revenueAnalytics (named
-- only by the seed: designed here), the read models the sample queries need,
-- built from every event (and by `analytics backfill` from the owning
-- services' Export* calls), and the inbox every consumer has.
--
-- Ordering rules (docs/analytics.md): facts are keyed by their source id and
-- aggregates are bumped only when a fact is first inserted; states carry
-- their source's version and an older write never overwrites a newer one;
-- deletions are tombstones. Times are UTC TIMESTAMPs, as in every service.
SET lock_timeout = '10s';

-- Creates the monthly partitions of `parent` from `first` for `months`
-- months (a no-op for those that exist). The service calls it at start-up
-- and every few hours, so next months always exist before they are needed;
-- a row outside every monthly partition (history older than a year, a
-- clock far off) lands in the table's DEFAULT partition.
CREATE FUNCTION create_monthly_partitions(parent TEXT, first DATE, months INTEGER) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
  created INTEGER := 0;
  m DATE := date_trunc('month', first)::date;
  name TEXT;
BEGIN
  FOR i IN 1..months LOOP
    name := format('%s_%s', lower(parent), to_char(m, 'YYYY_MM'));
    IF to_regclass(name) IS NULL THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                     name, lower(parent), m, (m + INTERVAL '1 month')::date);
      created := created + 1;
    END IF;
    m := (m + INTERVAL '1 month')::date;
  END LOOP;
  RETURN created;
END $$;

-- One row per domain event about a user (every event this service consumes
-- names one). The primary key of a partitioned table must hold the
-- partition key: an event's occurredAt never changes, so (eventId,
-- occurredAt) is unique per event.
CREATE TABLE userEvents (
  eventId UUID NOT NULL,
  userId UUID NOT NULL,
  type VARCHAR(100) NOT NULL,
  occurredAt TIMESTAMP NOT NULL,
  properties JSONB NOT NULL DEFAULT '{}',
  PRIMARY KEY (eventId, occurredAt)
) PARTITION BY RANGE (occurredAt);
CREATE INDEX idx_userEvents_userId_occurredAt ON userEvents(userId, occurredAt DESC);
CREATE INDEX idx_userEvents_type_occurredAt ON userEvents(type, occurredAt DESC);
CREATE TABLE userevents_default PARTITION OF userEvents DEFAULT;

-- Daily (UTC) per-user per-model figures: messages from the messages facts,
-- tokens and cost from the tokenUsage facts, each bumped once per fact.
-- User messages have no model: model ''.
CREATE TABLE chatAnalytics (
  day DATE NOT NULL,
  userId UUID NOT NULL,
  model VARCHAR(100) NOT NULL,
  messages BIGINT NOT NULL DEFAULT 0,
  promptTokens BIGINT NOT NULL DEFAULT 0,
  completionTokens BIGINT NOT NULL DEFAULT 0,
  totalTokens BIGINT NOT NULL DEFAULT 0,
  costUsd NUMERIC(20, 6) NOT NULL DEFAULT 0,
  PRIMARY KEY (day, userId, model)
) PARTITION BY RANGE (day);
CREATE TABLE chatanalytics_default PARTITION OF chatAnalytics DEFAULT;

-- Daily (UTC) revenue figures, recomputed for a day from the payments and
-- subscriptions read models whenever a change touches that day (so their
-- order does not matter); mrr is the snapshot taken on that day (the
-- service refreshes today's at every subscription or plan change and every
-- maintenance round).
CREATE TABLE revenueAnalytics (
  day DATE PRIMARY KEY,
  -- Net of refunds, USD payments only.
  revenue NUMERIC(14, 2) NOT NULL DEFAULT 0,
  newSubscriptions INTEGER NOT NULL DEFAULT 0,
  churnedSubscriptions INTEGER NOT NULL DEFAULT 0,
  mrr NUMERIC(14, 2),
  updatedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- The user dimension (identity's users). createdAt is NULL until the user's
-- registration (or backfill) is known: such a row only holds a plan change
-- or a tombstone that arrived first, and counts nowhere. planTierVersion is
-- identity's planTierChangedAt (the occurredAt of the
-- billing.subscription.changed that set planTier; NULL: the registration's).
-- profileVersion orders role/emailVerified/isActive. deletedAt: tombstone.
CREATE TABLE users (
  userId UUID PRIMARY KEY,
  createdAt TIMESTAMP,
  planTier VARCHAR(50) NOT NULL DEFAULT 'FREE',
  planTierVersion TIMESTAMP,
  role VARCHAR(50) NOT NULL DEFAULT 'user',
  emailVerified BOOLEAN NOT NULL DEFAULT FALSE,
  isActive BOOLEAN NOT NULL DEFAULT TRUE,
  profileVersion TIMESTAMP,
  deletedAt TIMESTAMP,
  updatedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT check_users_planTier CHECK (planTier IN ('FREE', 'PLUS', 'PRO'))
);
-- Signups per day; users by plan (index-only over the counted users).
CREATE INDEX idx_users_createdAt ON users(createdAt) WHERE deletedAt IS NULL;
CREATE INDEX idx_users_planTier ON users(planTier)
  WHERE deletedAt IS NULL AND isActive AND createdAt IS NOT NULL;
-- The deleted users: billing's rows of theirs are gone (an anti-join).
CREATE INDEX idx_users_deleted ON users(userId) WHERE deletedAt IS NOT NULL;

-- billing's plans (ListPlans at start-up and by backfill). tier: the plan
-- tier its name stands for (Free -> FREE).
CREATE TABLE plans (
  id UUID PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  tier VARCHAR(50) NOT NULL,
  monthlyPrice NUMERIC(10, 2) NOT NULL,
  yearlyPrice NUMERIC(10, 2),
  updatedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_plans_tier ON plans(tier);

-- billing's subscriptions: one per user, as billing keeps them. version:
-- the row's stripeEventCreatedAt / the event's occurredAt. createdAt: the
-- first period start known (or the row's createdAt from backfill);
-- canceledAt: the version that made it canceled.
CREATE TABLE subscriptions (
  userId UUID PRIMARY KEY,
  subscriptionId UUID,
  planId UUID,
  planTier VARCHAR(50),
  status VARCHAR(50) NOT NULL,
  billingInterval VARCHAR(10),
  currentPeriodStart TIMESTAMP,
  currentPeriodEnd TIMESTAMP,
  createdAt TIMESTAMP,
  canceledAt TIMESTAMP,
  version TIMESTAMP NOT NULL,
  updatedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_subscriptions_active ON subscriptions(planId)
  INCLUDE (userId, billingInterval, currentPeriodStart, currentPeriodEnd) WHERE status = 'active';
CREATE INDEX idx_subscriptions_createdAt ON subscriptions(createdAt);
CREATE INDEX idx_subscriptions_canceledAt ON subscriptions(canceledAt) WHERE canceledAt IS NOT NULL;

-- billing's payments (they stay when the user is deleted, as billing keeps
-- them). createdAt: the earliest time known of the payment.
CREATE TABLE payments (
  paymentId UUID PRIMARY KEY,
  userId UUID NOT NULL,
  amount NUMERIC(10, 2) NOT NULL,
  amountRefunded NUMERIC(10, 2) NOT NULL DEFAULT 0,
  currency VARCHAR(3) NOT NULL,
  status VARCHAR(50) NOT NULL,
  createdAt TIMESTAMP NOT NULL,
  version TIMESTAMP NOT NULL,
  updatedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
-- Lifetime value: the succeeded payments per user.
CREATE INDEX idx_payments_succeeded ON payments(userId, amount) WHERE status = 'succeeded';
CREATE INDEX idx_payments_createdAt ON payments(createdAt);

-- billing's invoices.
CREATE TABLE invoices (
  invoiceId UUID PRIMARY KEY,
  userId UUID NOT NULL,
  subscriptionId UUID,
  invoiceNumber VARCHAR(50) NOT NULL,
  status VARCHAR(50) NOT NULL,
  subtotal NUMERIC(10, 2) NOT NULL,
  tax NUMERIC(10, 2) NOT NULL DEFAULT 0,
  total NUMERIC(10, 2) NOT NULL,
  dueDate DATE,
  paidAt TIMESTAMP,
  createdAt TIMESTAMP NOT NULL,
  version TIMESTAMP NOT NULL,
  updatedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
-- Overdue invoices: the open ones by due date.
CREATE INDEX idx_invoices_open_dueDate ON invoices(dueDate) WHERE status = 'open';

-- chat's conversations and their counters. createdAt NULL until the
-- conversation's creation is known (counters may come first);
-- countersVersion: the counters' updatedAt. deletedAt: tombstone (the
-- conversation, or its user, deleted).
CREATE TABLE conversations (
  conversationId UUID PRIMARY KEY,
  userId UUID NOT NULL,
  model VARCHAR(100),
  createdAt TIMESTAMP,
  messageCount INTEGER NOT NULL DEFAULT 0,
  tokenCount INTEGER NOT NULL DEFAULT 0,
  countersVersion TIMESTAMP,
  deletedAt TIMESTAMP,
  updatedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
-- Top users and conversation length: the live conversations started in a
-- window, their counters read from the index.
CREATE INDEX idx_conversations_createdAt ON conversations(createdAt)
  INCLUDE (userId, messageCount, tokenCount) WHERE deletedAt IS NULL;
CREATE INDEX idx_conversations_userId ON conversations(userId);

-- chat's tokenUsage rows (facts, kept when the user is deleted, as chat
-- keeps them), partitioned by billingMonth like chat's.
CREATE TABLE tokenUsage (
  usageId UUID NOT NULL,
  billingMonth DATE NOT NULL,
  userId UUID NOT NULL,
  conversationId UUID,
  provider VARCHAR(100) NOT NULL,
  model VARCHAR(100) NOT NULL,
  promptTokens INTEGER NOT NULL,
  completionTokens INTEGER NOT NULL,
  totalTokens INTEGER NOT NULL,
  costUsd NUMERIC(10, 6) NOT NULL,
  createdAt TIMESTAMP NOT NULL,
  PRIMARY KEY (usageId, billingMonth)
) PARTITION BY RANGE (billingMonth);
CREATE INDEX idx_tokenUsage_billingMonth_userId ON tokenUsage(billingMonth, userId)
  INCLUDE (totalTokens, costUsd);
CREATE INDEX idx_tokenUsage_billingMonth_model ON tokenUsage(billingMonth, model)
  INCLUDE (totalTokens, costUsd);
CREATE TABLE tokenusage_default PARTITION OF tokenUsage DEFAULT;

-- chat's messages (facts, without content), partitioned by createdAt.
CREATE TABLE messages (
  messageId UUID NOT NULL,
  createdAt TIMESTAMP NOT NULL,
  conversationId UUID NOT NULL,
  userId UUID NOT NULL,
  role VARCHAR(50) NOT NULL,
  tokenCount INTEGER NOT NULL DEFAULT 0,
  model VARCHAR(100),
  PRIMARY KEY (messageId, createdAt)
) PARTITION BY RANGE (createdAt);
CREATE TABLE messages_default PARTITION OF messages DEFAULT;

-- Where `analytics backfill` is in each source: `after` is the last id
-- applied; finishedAt set once the source's last page was applied.
CREATE TABLE backfillCursors (
  source VARCHAR(50) PRIMARY KEY,
  after TEXT NOT NULL DEFAULT '',
  rows BIGINT NOT NULL DEFAULT 0,
  finishedAt TIMESTAMP,
  updatedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Idempotent consumption: the id of every applied event, written in the
-- same transaction as its effect.
CREATE TABLE inbox (
  eventId UUID PRIMARY KEY,
  eventType VARCHAR(100) NOT NULL,
  processedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_inbox_processedAt ON inbox(processedAt);

-- From a year back to a year ahead.
SELECT create_monthly_partitions(t, (date_trunc('month', CURRENT_DATE) - INTERVAL '12 months')::date, 25)
FROM unnest(ARRAY['userEvents', 'chatAnalytics', 'tokenUsage', 'messages']) AS t;
