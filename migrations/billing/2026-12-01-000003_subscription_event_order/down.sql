ALTER TABLE subscriptions DROP COLUMN stripeEventCreatedAt;
