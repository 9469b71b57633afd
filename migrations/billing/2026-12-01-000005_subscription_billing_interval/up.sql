-- billing (payments): how often a subscription bills, `month` or `year`:
-- the interval of the subscribed Stripe price (the plan whose
-- stripeYearlyPriceId is the price: `year`; its stripePriceId: `month`),
-- written with every other column of the row by each Stripe event, each
-- reconciliation and each cancel/resume. Analytics reads it (a yearly
-- subscription counts yearlyPrice / 12 towards MRR).
--
-- Rows written before this column existed get `month`; the reconciler
-- compares the interval with Stripe's and rewrites the ones that differ.
--
-- The table is small (one row per paying user) and the default constant:
-- no rewrite; the CHECK scans the rows once under the ALTER's lock.
-- This is the table's 16th column, diesel's limit without its
-- `32-column-tables` feature.
SET lock_timeout = '10s';

ALTER TABLE subscriptions
  ADD COLUMN billingInterval VARCHAR(10) NOT NULL DEFAULT 'month',
  ADD CONSTRAINT check_subscriptions_billingInterval
    CHECK (billingInterval IN ('month', 'year'));
