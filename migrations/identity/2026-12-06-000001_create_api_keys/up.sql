-- identity: per-user API keys (issue 15). The secret is shown to the user
-- once and stored only as its SHA-256 (hex): it has 256 random bits, so a
-- fast hash is right, and a key is found by the unique index on its hash.
-- A new, empty table: its indexes need no CONCURRENTLY.
SET lock_timeout = '10s';

CREATE TABLE apiKeys (
  id UUID PRIMARY KEY,
  -- The key dies with its account.
  userId UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name VARCHAR(100) NOT NULL,
  keyHash VARCHAR(64) NOT NULL UNIQUE,
  -- The first characters of the key (`sk-aichat-AbCd`), to recognise it.
  prefix VARCHAR(20) NOT NULL,
  createdAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  -- NULL: never expires.
  expiresAt TIMESTAMP,
  -- Updated at most once a minute per key (not a write per request).
  lastUsedAt TIMESTAMP
);

CREATE INDEX idx_apiKeys_userId ON apiKeys(userId);
