ALTER TABLE users DROP COLUMN planTierChangedAt;
