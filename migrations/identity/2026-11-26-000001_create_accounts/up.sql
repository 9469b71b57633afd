-- identity: the seed's account tables (spec/DATABASE_SCHEMA.md §1-4) as
-- written, plus what the identity service adds: users.role, session
-- revocation bookkeeping, and the outbox/inbox every service has.
SET lock_timeout = '10s';

CREATE TABLE users (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  email VARCHAR(255) NOT NULL UNIQUE,
  password VARCHAR(255) NOT NULL,
  name VARCHAR(255) NOT NULL,

  -- Subscription & Plan Information
  planTier VARCHAR(50) NOT NULL DEFAULT 'FREE',

  -- Account Status
  emailVerified BOOLEAN DEFAULT FALSE,
  emailVerifiedAt TIMESTAMP,
  isActive BOOLEAN DEFAULT TRUE,

  -- Usage Tracking (for convenience, also tracked separately)
  monthlyTokenUsed INTEGER DEFAULT 0,
  monthlyTokenReset DATE DEFAULT CURRENT_DATE,

  -- Metadata
  lastLoginAt TIMESTAMP,
  loginCount INTEGER DEFAULT 0,

  -- Audit
  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updatedAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

  -- identity's addition: who may use the admin endpoints.
  role VARCHAR(20) NOT NULL DEFAULT 'user',

  CONSTRAINT check_planTier CHECK (planTier IN ('FREE', 'PLUS', 'PRO')),
  CONSTRAINT check_emailVerified CHECK (emailVerified IS NOT TRUE OR emailVerifiedAt IS NOT NULL),
  CONSTRAINT check_role CHECK (role IN ('user', 'admin'))
);

CREATE INDEX idx_users_email ON users(email);
CREATE INDEX idx_users_planTier ON users(planTier);
CREATE INDEX idx_users_isActive ON users(isActive);
CREATE INDEX idx_users_createdAt ON users(createdAt DESC);

CREATE TABLE sessions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  userId UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,

  -- The seed stores the token here; we store the SHA-256 (hex) of the
  -- current refresh token, never the token itself.
  token VARCHAR(512) NOT NULL UNIQUE,

  userAgent VARCHAR(500),
  ipAddress INET,

  -- Session Lifecycle
  isActive BOOLEAN DEFAULT TRUE,
  expiresAt TIMESTAMP NOT NULL,
  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  lastActivityAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

  -- identity's additions: when and why it ended.
  revokedAt TIMESTAMP,
  revokedReason VARCHAR(50)
);

CREATE INDEX idx_sessions_userId ON sessions(userId);
CREATE INDEX idx_sessions_token ON sessions(token);
CREATE INDEX idx_sessions_expiresAt ON sessions(expiresAt);

-- Refresh tokens a session has rotated away from. Presenting one again is
-- reuse (RFC 9700 §4.14.2): the session is revoked.
CREATE TABLE sessionRotatedTokens (
  tokenHash VARCHAR(64) PRIMARY KEY,
  sessionId UUID NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  rotatedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_sessionRotatedTokens_sessionId ON sessionRotatedTokens(sessionId);

-- Revocations, kept (without a foreign key) past the session's deletion so
-- a restarting gateway can rebuild its deny list of live access tokens.
CREATE TABLE sessionRevocations (
  sessionId UUID PRIMARY KEY,
  userId UUID NOT NULL,
  revokedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_sessionRevocations_revokedAt ON sessionRevocations(revokedAt);

CREATE TABLE emailVerifications (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  userId UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,

  email VARCHAR(255) NOT NULL,
  -- SHA-256 (hex) of the mailed token.
  token VARCHAR(255) NOT NULL UNIQUE,

  isVerified BOOLEAN DEFAULT FALSE,
  verifiedAt TIMESTAMP,
  expiresAt TIMESTAMP NOT NULL,

  -- Tracking
  attemptCount INTEGER DEFAULT 0,

  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updatedAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_email_verifications_userId ON emailVerifications(userId);
CREATE INDEX idx_email_verifications_token ON emailVerifications(token);
CREATE INDEX idx_email_verifications_expiresAt ON emailVerifications(expiresAt);

CREATE TABLE passwordResets (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  userId UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,

  -- SHA-256 (hex) of the mailed token.
  token VARCHAR(255) NOT NULL UNIQUE,
  email VARCHAR(255) NOT NULL,

  isUsed BOOLEAN DEFAULT FALSE,
  usedAt TIMESTAMP,
  expiresAt TIMESTAMP NOT NULL,

  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

  -- identity's addition, as emailVerifications has it.
  attemptCount INTEGER DEFAULT 0
);

CREATE INDEX idx_password_resets_userId ON passwordResets(userId);
CREATE INDEX idx_password_resets_token ON passwordResets(token);

-- Transactional outbox: an event row is written in the same transaction as
-- the change it reports; the relay publishes it and sets publishedAt.
CREATE TABLE outbox (
  id UUID PRIMARY KEY,
  eventType VARCHAR(100) NOT NULL,
  payload JSONB NOT NULL,
  createdAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  publishedAt TIMESTAMP,
  attempts INTEGER NOT NULL DEFAULT 0,
  lastError TEXT
);
CREATE INDEX idx_outbox_unpublished ON outbox(id) WHERE publishedAt IS NULL;
CREATE INDEX idx_outbox_publishedAt ON outbox(publishedAt) WHERE publishedAt IS NOT NULL;

-- Idempotent consumption: the id of every applied event, written in the
-- same transaction as its effect.
CREATE TABLE inbox (
  eventId UUID PRIMARY KEY,
  eventType VARCHAR(100) NOT NULL,
  processedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_inbox_processedAt ON inbox(processedAt);
