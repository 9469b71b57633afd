CREATE INDEX idx_tokenUsage_billingMonth_userId ON tokenUsage(billingMonth, userId)
  INCLUDE (totalTokens, costUsd);
CREATE INDEX idx_tokenUsage_billingMonth_model ON tokenUsage(billingMonth, model)
  INCLUDE (totalTokens, costUsd);
CREATE INDEX idx_userEvents_type_occurredAt ON userEvents(type, occurredAt DESC);
CREATE INDEX idx_conversations_userId ON conversations(userId);
