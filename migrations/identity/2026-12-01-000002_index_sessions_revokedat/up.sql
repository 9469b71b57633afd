-- For the retention task's deletes (crates/identity/src/retention.rs).
-- CONCURRENTLY: no write lock on a live table; hence a migration of its
-- own, outside a transaction (metadata.toml).
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_sessions_revokedAt ON sessions(revokedAt) WHERE revokedAt IS NOT NULL;
