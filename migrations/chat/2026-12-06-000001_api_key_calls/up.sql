-- Calls made with an API key (the OpenAI-compatible API, issue 15) belong to
-- no conversation; the key they were made with is recorded instead, on the
-- call in flight and on its tokenUsage row. identity owns the keys: no
-- foreign key across services.
ALTER TABLE pendingSends ADD COLUMN apiKeyId uuid;
ALTER TABLE tokenUsage ADD COLUMN apiKeyId uuid;
-- A key's usage over time (most rows have no key).
CREATE INDEX idx_tokenusage_apikey ON tokenUsage (apiKeyId, createdAt) WHERE apiKeyId IS NOT NULL;
