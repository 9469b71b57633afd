-- chat's additions for "every provider call ends in exactly one tokenUsage
-- row", whatever happens to the replica making it.
SET lock_timeout = '10s';

-- The chat processes alive: each inserts its row at start-up and keeps
-- heartbeatAt fresh. A replica whose heartbeat is older than the recovery
-- timeout is dead (killed, crashed, partitioned away).
CREATE TABLE chatReplicas (
  id UUID PRIMARY KEY,
  startedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  heartbeatAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_chatReplicas_heartbeatAt ON chatReplicas(heartbeatAt);

-- A provider call in flight, written with the user's message before the
-- provider is called and deleted in the transaction that charges it. Whoever
-- deletes the row charges the call: the replica that made it when the reply
-- ends, or the recovery task of another replica when the maker died (then
-- with what is known: the prompt tokens and the completion tokens of the
-- last checkpoint). Deleting it is the claim, so a call is charged once.
CREATE TABLE pendingSends (
  -- The id the tokenUsage row will have.
  id UUID PRIMARY KEY,
  replicaId UUID NOT NULL,
  userId UUID NOT NULL,
  conversationId UUID REFERENCES conversations(id) ON DELETE SET NULL,
  userMessageId UUID REFERENCES messages(id) ON DELETE SET NULL,
  reservationId UUID NOT NULL,
  provider VARCHAR(100) NOT NULL,
  model VARCHAR(100) NOT NULL,
  promptTokens INTEGER NOT NULL,
  -- Completion tokens streamed so far, as of checkpointAt.
  completionTokens INTEGER NOT NULL DEFAULT 0,
  createdAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  checkpointAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,

  CONSTRAINT check_pendingSends_promptTokens CHECK (promptTokens >= 0),
  CONSTRAINT check_pendingSends_completionTokens CHECK (completionTokens >= 0)
);
CREATE INDEX idx_pendingSends_replicaId ON pendingSends(replicaId);
CREATE INDEX idx_pendingSends_conversationId ON pendingSends(conversationId);
CREATE INDEX idx_pendingSends_userMessageId ON pendingSends(userMessageId);
