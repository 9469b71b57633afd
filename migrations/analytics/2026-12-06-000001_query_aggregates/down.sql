DROP TRIGGER token_usage_user_monthly_insert ON tokenUsage;
DROP TRIGGER token_usage_user_monthly_update ON tokenUsage;
DROP TRIGGER token_usage_user_monthly_delete ON tokenUsage;
DROP TRIGGER payments_lifetime_insert ON payments;
DROP TRIGGER payments_lifetime_update ON payments;
DROP TRIGGER payments_lifetime_delete ON payments;
DROP TRIGGER subscriptions_active_insert ON subscriptions;
DROP TRIGGER subscriptions_active_update ON subscriptions;
DROP TRIGGER subscriptions_active_delete ON subscriptions;
DROP TRIGGER users_aggregates_insert ON users;
DROP TRIGGER users_aggregates_update ON users;
DROP TRIGGER users_aggregates_delete ON users;
DROP TRIGGER chat_daily_insert ON chatAnalytics;
DROP TRIGGER chat_daily_update ON chatAnalytics;
DROP TRIGGER chat_daily_delete ON chatAnalytics;
DROP TRIGGER conversations_daily_insert ON conversations;
DROP TRIGGER conversations_daily_update ON conversations;
DROP TRIGGER conversations_daily_delete ON conversations;
DROP FUNCTION token_usage_user_monthly(), payments_lifetime(), subscriptions_active(),
  users_aggregates(), chat_daily(), conversations_daily(), lock_users(UUID[]),
  day_at_or_after(TIMESTAMP, DATE);
CREATE INDEX idx_invoices_open_dueDate ON invoices(dueDate) WHERE status = 'open';
DROP INDEX idx_invoices_open_order;
DROP TABLE tokenUsageUserMonthly, paymentsLifetime, usersPlanCounts, signupsDaily,
  subscriptionsActive, chatDaily, conversationsDaily;
