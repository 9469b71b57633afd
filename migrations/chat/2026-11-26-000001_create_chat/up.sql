-- chat: the seed's chat tables (spec/DATABASE_SCHEMA.md §5-7, §13 and the
-- performance-critical indexes) as written, plus the outbox/inbox every
-- service has. users(id) lives in identity: userId columns keep no foreign
-- key; identity.user.deleted events delete what a user owned, as ON DELETE
-- CASCADE would have.
SET lock_timeout = '10s';

CREATE TABLE conversations (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  userId UUID NOT NULL,

  title VARCHAR(500) NOT NULL,
  description TEXT,

  -- Model & Configuration
  model VARCHAR(100) NOT NULL,

  systemPrompt TEXT,

  -- Statistics (denormalized for performance)
  messageCount INTEGER DEFAULT 0,
  tokenCount INTEGER DEFAULT 0,

  -- Status
  isArchived BOOLEAN DEFAULT FALSE,
  archivedAt TIMESTAMP,

  -- Metadata
  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updatedAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_conversations_userId ON conversations(userId);
CREATE INDEX idx_conversations_model ON conversations(model);
CREATE INDEX idx_conversations_createdAt ON conversations(createdAt DESC);
CREATE INDEX idx_conversations_isArchived ON conversations(isArchived);
CREATE INDEX idx_conversations_userId_createdAt ON conversations(userId, createdAt DESC);
CREATE INDEX idx_conversations_userId_model_createdAt ON conversations(userId, model, createdAt DESC);

CREATE TABLE messages (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  conversationId UUID NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,

  -- Message Metadata
  role VARCHAR(50) NOT NULL,

  content TEXT NOT NULL,

  -- Token Information
  tokenCount INTEGER NOT NULL DEFAULT 0,
  promptTokens INTEGER,
  completionTokens INTEGER,

  -- AI Configuration
  model VARCHAR(100),

  -- Content Metadata
  language VARCHAR(10),

  -- Deletion
  isDeleted BOOLEAN DEFAULT FALSE,
  deletedAt TIMESTAMP,

  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updatedAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

  CONSTRAINT check_role CHECK (role IN ('user', 'assistant'))
);

CREATE INDEX idx_messages_conversationId ON messages(conversationId);
CREATE INDEX idx_messages_role ON messages(role);
CREATE INDEX idx_messages_createdAt ON messages(createdAt DESC);
CREATE INDEX idx_messages_model ON messages(model);
CREATE INDEX idx_messages_conversationId_createdAt ON messages(conversationId, createdAt DESC);

-- Partitioned by billingMonth (monthly ranges, the seed asks for
-- partitioning). A primary key of a partitioned table must include the
-- partition key, so it is (id, billingMonth).
CREATE TABLE tokenUsage (
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  userId UUID NOT NULL,
  conversationId UUID REFERENCES conversations(id) ON DELETE SET NULL,
  messageId UUID REFERENCES messages(id) ON DELETE SET NULL,

  -- Provider & Model Information
  provider VARCHAR(100) NOT NULL,

  model VARCHAR(100) NOT NULL,

  -- Token Counts
  promptTokens INTEGER NOT NULL,
  completionTokens INTEGER NOT NULL,
  totalTokens INTEGER NOT NULL,

  -- Cost Information
  costUsd DECIMAL(10, 6) NOT NULL,

  -- Billing Period: first day of the month
  billingMonth DATE NOT NULL,

  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

  PRIMARY KEY (id, billingMonth),
  CONSTRAINT check_providers CHECK (provider IN ('openai', 'anthropic', 'google')),
  CONSTRAINT check_billingMonth_first_day CHECK (EXTRACT(DAY FROM billingMonth) = 1)
) PARTITION BY RANGE (billingMonth);

CREATE INDEX idx_tokenUsage_userId ON tokenUsage(userId);
CREATE INDEX idx_tokenUsage_userId_billingMonth ON tokenUsage(userId, billingMonth);
CREATE INDEX idx_tokenUsage_conversationId ON tokenUsage(conversationId);
CREATE INDEX idx_tokenUsage_model ON tokenUsage(model);
CREATE INDEX idx_tokenUsage_createdAt ON tokenUsage(createdAt DESC);
CREATE INDEX idx_tokenUsage_userId_model ON tokenUsage(userId, model);
CREATE INDEX idx_tokenUsage_billingMonth ON tokenUsage(billingMonth);
CREATE INDEX idx_tokenUsage_userId_billingMonth_model ON tokenUsage(userId, billingMonth, model);

-- Creates the monthly partitions from `first` for `months` months (a no-op
-- for those that exist). The service calls it at start-up and daily, so the
-- next months always exist before they are needed.
CREATE FUNCTION create_tokenusage_partitions(first DATE, months INTEGER) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
  created INTEGER := 0;
  m DATE := date_trunc('month', first)::date;
  name TEXT;
BEGIN
  FOR i IN 1..months LOOP
    name := format('tokenusage_%s', to_char(m, 'YYYY_MM'));
    IF to_regclass(name) IS NULL THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF tokenUsage FOR VALUES FROM (%L) TO (%L)',
                     name, m, (m + INTERVAL '1 month')::date);
      created := created + 1;
    END IF;
    m := (m + INTERVAL '1 month')::date;
  END LOOP;
  RETURN created;
END $$;

-- From a year back (late events, tests) to a year ahead.
SELECT create_tokenusage_partitions((date_trunc('month', CURRENT_DATE) - INTERVAL '12 months')::date, 25);

CREATE TABLE aiProviders (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

  name VARCHAR(100) NOT NULL UNIQUE,

  -- Pricing (per 1K tokens)
  inputTokenCostPer1k DECIMAL(10, 8) NOT NULL,
  outputTokenCostPer1k DECIMAL(10, 8) NOT NULL,

  -- Rate Limits
  requestsPerMinute INTEGER,
  requestsPerDay INTEGER,

  -- Models
  supportedModels JSON NOT NULL DEFAULT '[]',

  -- Status
  isActive BOOLEAN DEFAULT TRUE,
  isAvailable BOOLEAN DEFAULT TRUE,

  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updatedAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_aiProviders_name ON aiProviders(name);
CREATE INDEX idx_aiProviders_isActive ON aiProviders(isActive);

-- Transactional outbox and idempotent inbox (as in every service).
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

CREATE TABLE inbox (
  eventId UUID PRIMARY KEY,
  eventType VARCHAR(100) NOT NULL,
  processedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_inbox_processedAt ON inbox(processedAt);
