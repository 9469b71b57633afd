-- billing (payments): what Stripe's invoice, payment and refund events need
-- on the seed's invoices and payments.
--
-- stripeEventCreatedAt: the `created` of the Stripe event a row was last
-- written from, so an older event arriving late never overwrites newer
-- state (as on subscriptions). Between events of the same second, the one
-- further along wins (invoices: draft < open < paid, void, uncollectible;
-- payments: pending < failed < succeeded < refunded).
--
-- invoices.overdueNotifiedAt: when billing.invoice.overdue was enqueued for
-- an open invoice past its dueDate (the daily overdue job): once per
-- invoice, whatever the number of billing replicas running the job.
--
-- payments.amountRefunded: what Stripe refunded of the payment so far
-- (charge.refunded). A full refund turns the status to 'refunded'; a
-- partial one keeps 'succeeded' (the money kept is still collected) and is
-- read here.
--
-- The tables are new (2026-12-01-000002): the constant defaults rewrite
-- nothing and the partial index builds at once.
SET lock_timeout = '10s';

ALTER TABLE invoices ADD COLUMN stripeEventCreatedAt TIMESTAMP;
ALTER TABLE invoices ADD COLUMN overdueNotifiedAt TIMESTAMP;

ALTER TABLE payments ADD COLUMN amountRefunded DECIMAL(10, 2) NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN stripeEventCreatedAt TIMESTAMP;
ALTER TABLE payments ADD CONSTRAINT check_payments_amountRefunded
  CHECK (amountRefunded >= 0 AND amountRefunded <= amount);

-- The overdue job's scan: open invoices not yet notified, by due date.
CREATE INDEX idx_invoices_overdue ON invoices(dueDate)
  WHERE status = 'open' AND overdueNotifiedAt IS NULL;
