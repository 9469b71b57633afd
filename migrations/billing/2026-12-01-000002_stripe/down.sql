SET lock_timeout = '10s';
DROP TABLE stripeEvents;
DROP TABLE stripeCustomers;
DROP TABLE invoices;
DROP TABLE payments;
DROP TABLE subscriptions;
ALTER TABLE plans DROP COLUMN stripeYearlyPriceId;
