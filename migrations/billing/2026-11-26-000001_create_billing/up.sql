-- billing (metering): the seed's plans and usageTracking
-- (spec/DATABASE_SCHEMA.md §8, §12) as written, plus what billing adds:
-- CHECKs, token reservations, a tombstone of deleted users, and the
-- outbox/inbox every service has.
SET lock_timeout = '10s';

CREATE TABLE plans (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

  name VARCHAR(100) NOT NULL UNIQUE,
  -- Values: Free, Plus, Pro

  stripePriceId VARCHAR(255),
  -- Stripe Price ID for webhook handling

  -- Pricing
  monthlyPrice DECIMAL(10, 2) NOT NULL,
  yearlyPrice DECIMAL(10, 2),

  -- Quotas
  monthlyTokenQuota INTEGER NOT NULL,
  maxConversations INTEGER,
  maxMessagesPerConversation INTEGER,

  -- Features (JSON array of feature names)
  features JSON DEFAULT '[]',

  -- Status
  isActive BOOLEAN DEFAULT TRUE,

  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updatedAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

  -- billing's additions: prices and quotas are never negative; a limit is
  -- either absent (unlimited) or at least 1; features is an array, as the
  -- seed's comment says.
  CONSTRAINT check_plans_monthlyPrice CHECK (monthlyPrice >= 0),
  CONSTRAINT check_plans_yearlyPrice CHECK (yearlyPrice IS NULL OR yearlyPrice >= 0),
  CONSTRAINT check_plans_monthlyTokenQuota CHECK (monthlyTokenQuota >= 0),
  CONSTRAINT check_plans_maxConversations CHECK (maxConversations IS NULL OR maxConversations > 0),
  CONSTRAINT check_plans_maxMessagesPerConversation
    CHECK (maxMessagesPerConversation IS NULL OR maxMessagesPerConversation > 0),
  CONSTRAINT check_plans_features CHECK (features IS NULL OR json_typeof(features) = 'array')
);

CREATE INDEX idx_plans_name ON plans(name);
CREATE INDEX idx_plans_isActive ON plans(isActive);

-- The seed's `userId ... REFERENCES users(id) ON DELETE CASCADE` crosses
-- services (users live in identity's database): the column stays, the
-- foreign key goes, and the consumer of identity.user.deleted deletes the row.
CREATE TABLE usageTracking (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  userId UUID NOT NULL UNIQUE,

  -- Current Month
  billingMonth DATE NOT NULL,
  -- First day of current billing month

  -- Usage Counts
  tokensUsed INTEGER DEFAULT 0,
  messagesCount INTEGER DEFAULT 0,
  conversationsCount INTEGER DEFAULT 0,

  -- Quota (cached from plan)
  monthlyQuota INTEGER NOT NULL,

  -- Cost
  costThisMonth DECIMAL(10, 6) DEFAULT 0,

  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updatedAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

  -- billing's additions: counters and money only grow from zero within a
  -- month, so a negative value is a bug to refuse, not to store; the month
  -- is always its first day.
  CONSTRAINT check_usageTracking_billingMonth CHECK (EXTRACT(DAY FROM billingMonth) = 1),
  CONSTRAINT check_usageTracking_tokensUsed CHECK (tokensUsed >= 0),
  CONSTRAINT check_usageTracking_messagesCount CHECK (messagesCount >= 0),
  CONSTRAINT check_usageTracking_conversationsCount CHECK (conversationsCount >= 0),
  CONSTRAINT check_usageTracking_monthlyQuota CHECK (monthlyQuota >= 0),
  CONSTRAINT check_usageTracking_costThisMonth CHECK (costThisMonth >= 0)
);

CREATE INDEX idx_usageTracking_userId ON usageTracking(userId);
CREATE INDEX idx_usageTracking_billingMonth ON usageTracking(billingMonth);

-- billing's addition: tokens held for a provider call in flight. Reserve
-- checks the quota against tokensUsed plus the unexpired reservations;
-- chat.tokens.used settles one (deletes it and counts the real tokens),
-- Release drops one, and an expired one (a crashed call) stops counting and
-- is swept. Reservations go with their usage row.
CREATE TABLE tokenReservations (
  id UUID PRIMARY KEY,
  userId UUID NOT NULL REFERENCES usageTracking(userId) ON DELETE CASCADE,
  -- The month the reservation was checked against (first day).
  billingMonth DATE NOT NULL,
  tokens INTEGER NOT NULL,
  expiresAt TIMESTAMP NOT NULL,
  createdAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,

  CONSTRAINT check_tokenReservations_tokens CHECK (tokens > 0),
  CONSTRAINT check_tokenReservations_billingMonth CHECK (EXTRACT(DAY FROM billingMonth) = 1),
  CONSTRAINT check_tokenReservations_expiresAt CHECK (expiresAt > createdAt)
);
CREATE INDEX idx_tokenReservations_userId_expiresAt ON tokenReservations(userId, expiresAt);
CREATE INDEX idx_tokenReservations_expiresAt ON tokenReservations(expiresAt);

-- billing's addition: users whose identity.user.deleted was applied. An
-- event about them that arrives later (queues do not order across
-- producers) must not bring their usage row back, as a foreign key would
-- have refused it.
CREATE TABLE deletedUsers (
  userId UUID PRIMARY KEY,
  deletedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Transactional outbox: an event row is written in the same transaction as
-- the change it reports; the relay publishes it and sets publishedAt.
CREATE TABLE outbox (
  id UUID PRIMARY KEY,
  eventType VARCHAR(100) NOT NULL,
  payload JSONB NOT NULL,
  createdAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  publishedAt TIMESTAMP,
  attempts INTEGER NOT NULL DEFAULT 0,
  lastError TEXT
);
CREATE INDEX idx_outbox_unpublished ON outbox(id) WHERE publishedAt IS NULL;
CREATE INDEX idx_outbox_publishedAt ON outbox(publishedAt) WHERE publishedAt IS NOT NULL;

-- Idempotent consumption: the id of every applied event, written in the
-- same transaction as its effect.
CREATE TABLE inbox (
  eventId UUID PRIMARY KEY,
  eventType VARCHAR(100) NOT NULL,
  processedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_inbox_processedAt ON inbox(processedAt);
