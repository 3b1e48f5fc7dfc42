-- Incremental export walks users in (updated_at, id) order.
CREATE INDEX users_updated_at_id ON users (updated_at, id);
