-- The applied events' ids come back from userEvents.
CREATE TABLE inbox (
  eventId UUID PRIMARY KEY,
  eventType VARCHAR(100) NOT NULL,
  processedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_inbox_processedAt ON inbox(processedAt);
INSERT INTO inbox (eventId, eventType, processedAt)
SELECT eventId, type, occurredAt FROM userEvents ON CONFLICT DO NOTHING;
CREATE INDEX idx_tokenUsage_billingMonth_userId ON tokenUsage(billingMonth, userId)
  INCLUDE (totalTokens, costUsd);
CREATE INDEX idx_tokenUsage_billingMonth_model ON tokenUsage(billingMonth, model)
  INCLUDE (totalTokens, costUsd);
CREATE INDEX idx_userEvents_type_occurredAt ON userEvents(type, occurredAt DESC);
CREATE INDEX idx_conversations_userId ON conversations(userId);
