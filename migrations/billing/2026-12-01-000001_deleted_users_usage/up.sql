-- Tokens a provider produced for a user whose account was deleted while
-- the reply streamed: chat charges them (the provider bills the platform),
-- and billing records them against the user's tombstone instead of dropping
-- them, so billing's totals still equal chat's tokenUsage.
SET lock_timeout = '10s';

ALTER TABLE deletedUsers
  ADD COLUMN tokensUsed BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN costUsd DECIMAL(12, 6) NOT NULL DEFAULT 0,
  ADD CONSTRAINT check_deletedUsers_tokensUsed CHECK (tokensUsed >= 0),
  ADD CONSTRAINT check_deletedUsers_costUsd CHECK (costUsd >= 0);
