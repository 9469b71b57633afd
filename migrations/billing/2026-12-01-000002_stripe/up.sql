-- billing (payments): the seed's subscriptions, payments and invoices
-- (spec/DATABASE_SCHEMA.md §9, §10, §11, its composite indexes and its
-- CHECKs) as written, plus what billing adds for Stripe: CHECKs, the log of
-- processed Stripe events, a Stripe customer per user, and each plan's
-- yearly Stripe price.
SET lock_timeout = '10s';

-- The seed's stripePriceId is the monthly price; the yearly one is new.
ALTER TABLE plans ADD COLUMN stripeYearlyPriceId VARCHAR(255);

-- The seed's `userId ... REFERENCES users(id) ON DELETE CASCADE` crosses
-- services (users live in identity's database): the column stays, the
-- foreign key goes, and the consumer of identity.user.deleted deletes the row.
-- The seed's status CHECK is kept as written: Stripe's other statuses
-- (trialing, incomplete, incomplete_expired) are mapped before they are
-- stored.
CREATE TABLE subscriptions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  userId UUID NOT NULL UNIQUE,

  planId UUID NOT NULL REFERENCES plans(id),

  -- Stripe Information
  stripeSubscriptionId VARCHAR(255) NOT NULL UNIQUE,
  stripeCustomerId VARCHAR(255) NOT NULL,

  -- Subscription Status
  status VARCHAR(50) NOT NULL DEFAULT 'active',
  -- Values: active, canceled, past_due, unpaid, paused

  -- Billing Cycle
  currentPeriodStart TIMESTAMP NOT NULL,
  currentPeriodEnd TIMESTAMP NOT NULL,

  -- Cancellation
  cancellationDate TIMESTAMP,
  cancellationReason VARCHAR(255),
  cancelAtPeriodEnd BOOLEAN DEFAULT FALSE,

  -- Trial
  trialEndsAt TIMESTAMP,

  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updatedAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

  CONSTRAINT check_subscription_status CHECK
    (status IN ('active', 'canceled', 'past_due', 'unpaid', 'paused')),
  -- billing's addition: a period never ends before it starts.
  CONSTRAINT check_subscriptions_currentPeriod CHECK (currentPeriodEnd >= currentPeriodStart)
);

CREATE INDEX idx_subscriptions_userId ON subscriptions(userId);
CREATE INDEX idx_subscriptions_planId ON subscriptions(planId);
CREATE INDEX idx_subscriptions_status ON subscriptions(status);
CREATE INDEX idx_subscriptions_currentPeriodEnd ON subscriptions(currentPeriodEnd);
CREATE INDEX idx_subscriptions_userId_status ON subscriptions(userId, status);

-- The seed's userId foreign key is dropped as above. Payments are kept for
-- accounting when their subscription goes (ON DELETE SET NULL, as written).
CREATE TABLE payments (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  userId UUID NOT NULL,
  subscriptionId UUID REFERENCES subscriptions(id) ON DELETE SET NULL,

  -- Stripe Information
  stripePaymentIntentId VARCHAR(255) NOT NULL UNIQUE,
  stripeInvoiceId VARCHAR(255),

  -- Payment Details
  amount DECIMAL(10, 2) NOT NULL,
  currency VARCHAR(3) NOT NULL DEFAULT 'USD',

  -- Status
  status VARCHAR(50) NOT NULL,
  -- Values: succeeded, failed, pending, refunded

  description TEXT,

  -- Metadata
  metadata JSON,

  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updatedAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

  CONSTRAINT check_status CHECK (status IN ('succeeded', 'failed', 'pending', 'refunded')),
  -- billing's additions: an amount is never negative (a refund changes the
  -- status, not the sign); a currency is an ISO 4217 code in upper case, as
  -- the seed's default; metadata is an object, as Stripe's.
  CONSTRAINT check_payments_amount CHECK (amount >= 0),
  CONSTRAINT check_payments_currency CHECK (currency ~ '^[A-Z]{3}$'),
  CONSTRAINT check_payments_metadata CHECK (metadata IS NULL OR json_typeof(metadata) = 'object')
);

CREATE INDEX idx_payments_userId ON payments(userId);
CREATE INDEX idx_payments_subscriptionId ON payments(subscriptionId);
CREATE INDEX idx_payments_status ON payments(status);
CREATE INDEX idx_payments_createdAt ON payments(createdAt DESC);
CREATE INDEX idx_payments_userId_createdAt ON payments(userId, createdAt DESC);

-- The seed's userId foreign key is dropped as above. Stripe gives a draft
-- invoice no number: the seed's NOT NULL invoiceNumber means an invoice is
-- stored from its finalisation on.
CREATE TABLE invoices (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  userId UUID NOT NULL,
  subscriptionId UUID REFERENCES subscriptions(id) ON DELETE SET NULL,

  -- Invoice Details
  invoiceNumber VARCHAR(50) NOT NULL UNIQUE,
  stripeInvoiceId VARCHAR(255) NOT NULL UNIQUE,

  -- Amounts
  subtotal DECIMAL(10, 2) NOT NULL,
  tax DECIMAL(10, 2) NOT NULL DEFAULT 0,
  total DECIMAL(10, 2) NOT NULL,

  -- Status
  status VARCHAR(50) NOT NULL DEFAULT 'draft',
  -- Values: draft, open, paid, void, uncollectible

  dueDate DATE,
  paidAt TIMESTAMP,

  -- PDF
  pdfUrl VARCHAR(500),

  createdAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updatedAt TIMESTAMP DEFAULT CURRENT_TIMESTAMP,

  -- billing's additions: the statuses the seed's comment lists (Stripe's
  -- invoice statuses; "overdue" is not one: it is an open invoice past its
  -- dueDate, as the seed's overdue query reads it); tax is never negative.
  -- Subtotal and total may be: Stripe credits a downgrade's proration with
  -- a negative invoice.
  CONSTRAINT check_invoices_status CHECK
    (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
  CONSTRAINT check_invoices_tax CHECK (tax >= 0)
);

CREATE INDEX idx_invoices_userId ON invoices(userId);
CREATE INDEX idx_invoices_status ON invoices(status);

-- billing's addition: each Stripe customer billing created, one per user,
-- so checkout reuses it. Deleted with the user (identity.user.deleted).
CREATE TABLE stripeCustomers (
  userId UUID PRIMARY KEY,
  stripeCustomerId VARCHAR(255) NOT NULL UNIQUE,
  createdAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- billing's addition: the Stripe events applied, each written in the same
-- transaction as its effect, so a redelivered event changes nothing.
-- Stripe's ids are strings (evt_...), not UUIDs: the inbox cannot hold them.
CREATE TABLE stripeEvents (
  stripeEventId VARCHAR(255) PRIMARY KEY,
  eventType VARCHAR(100) NOT NULL,
  -- The event's `created` (when Stripe generated it), to order what arrives
  -- out of order.
  eventCreatedAt TIMESTAMP NOT NULL,
  processedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_stripeEvents_processedAt ON stripeEvents(processedAt);
