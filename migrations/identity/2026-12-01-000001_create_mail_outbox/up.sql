-- Mails waiting to leave (verification and password reset links). A use
-- case writes the row in the transaction that issues the link's token; the
-- mail worker claims due rows (FOR UPDATE SKIP LOCKED, then a lease in
-- nextAttemptAt), sends with a timeout and deletes the row once sent, or
-- retries it with backoff and gives up after a few attempts. The body holds
-- the raw link token, so a row lives only until its mail has left.
SET lock_timeout = '10s';

CREATE TABLE mailOutbox (
  id UUID PRIMARY KEY,
  -- Whose link it is; a deleted account's pending mail goes with it.
  userId UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  recipient VARCHAR(255) NOT NULL,
  subject VARCHAR(255) NOT NULL,
  body TEXT NOT NULL,
  -- Sending attempts started so far (counted when a worker claims the row).
  attempts INTEGER NOT NULL DEFAULT 0,
  -- Due time: now for a new mail, later after a failure, or the end of the
  -- lease while a worker is sending it.
  nextAttemptAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  lastError TEXT,
  createdAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_mailOutbox_nextAttemptAt ON mailOutbox(nextAttemptAt);
CREATE INDEX idx_mailOutbox_userId ON mailOutbox(userId);
