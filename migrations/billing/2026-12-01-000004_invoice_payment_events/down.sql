DROP INDEX idx_invoices_overdue;
ALTER TABLE payments DROP CONSTRAINT check_payments_amountRefunded;
ALTER TABLE payments DROP COLUMN stripeEventCreatedAt;
ALTER TABLE payments DROP COLUMN amountRefunded;
ALTER TABLE invoices DROP COLUMN overdueNotifiedAt;
ALTER TABLE invoices DROP COLUMN stripeEventCreatedAt;
