-- What every event paid for on the way in (issue 14's ingest rate) and
-- nothing needs.
--
-- The inbox: every event analytics applies has its userEvents row, written
-- in the same transaction, with the event id unique; that row now records
-- the event as applied (a redelivery's insert finds it and the effect is
-- skipped), and for as long as the partition is kept rather than the
-- inbox's seven days. Every event applied before has its row too, so the
-- switch skips nothing and doubles nothing.
--
-- Indexes no admin query reads since the query aggregates
-- (2026-12-06-000001, -000002) answer them, and which every event paid for
-- on the way in (issue 14's ingest rate):
--  - tokenUsage by (billingMonth, userId) and (billingMonth, model): the
--    figures per user and per model now come from tokenUsageUserMonthly
--    and tokenUsageMonthly, kept in the same transaction;
--  - userEvents by (type, occurredAt): nothing reads events by type; a
--    user's events are still found by (userId, occurredAt);
--  - conversations by userId: the partial idx_conversations_user_window
--    (userId, createdAt) WHERE deletedAt IS NULL serves the one statement
--    that finds a user's conversations (the user's tombstone).
SET lock_timeout = '10s';
DROP INDEX idx_tokenUsage_billingMonth_userId;
DROP INDEX idx_tokenUsage_billingMonth_model;
DROP INDEX idx_userEvents_type_occurredAt;
DROP INDEX idx_conversations_userId;
DROP TABLE inbox;
