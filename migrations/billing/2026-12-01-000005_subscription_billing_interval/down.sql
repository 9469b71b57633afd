SET lock_timeout = '10s';
ALTER TABLE subscriptions DROP CONSTRAINT check_subscriptions_billingInterval;
ALTER TABLE subscriptions DROP COLUMN billingInterval;
