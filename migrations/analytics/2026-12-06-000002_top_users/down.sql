DROP TRIGGER conversations_user_monthly_insert ON conversations;
DROP TRIGGER conversations_user_monthly_update ON conversations;
DROP TRIGGER conversations_user_monthly_delete ON conversations;
DROP FUNCTION conversations_user_monthly();
DROP INDEX idx_conversations_user_window;
DROP TABLE conversationsUserMonthly;
