-- For the retention task's deletes (crates/identity/src/retention.rs).
-- CONCURRENTLY: no write lock on a live table; hence a migration of its
-- own, outside a transaction (metadata.toml).
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_password_resets_expiresAt ON passwordResets(expiresAt);
