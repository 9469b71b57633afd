DROP INDEX CONCURRENTLY IF EXISTS idx_password_resets_expiresAt;
