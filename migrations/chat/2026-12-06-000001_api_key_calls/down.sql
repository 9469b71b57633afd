DROP INDEX IF EXISTS idx_tokenusage_apikey;
ALTER TABLE tokenUsage DROP COLUMN apiKeyId;
ALTER TABLE pendingSends DROP COLUMN apiKeyId;
