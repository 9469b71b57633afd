-- identity: when billing's latest applied billing.subscription.changed
-- happened (its occurredAt), so an older event delivered late never
-- overwrites a newer plan tier. NULL: never changed by billing.
SET lock_timeout = '10s';

ALTER TABLE users ADD COLUMN planTierChangedAt TIMESTAMP;
