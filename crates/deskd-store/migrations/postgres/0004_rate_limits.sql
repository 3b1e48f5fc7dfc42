-- GCRA buckets shared by replicas (PostgreSQL); SQLite runs one process and keeps them in memory,
-- but the table exists on both so the schemas stay in lockstep.
CREATE TABLE rate_limits (
    key      TEXT PRIMARY KEY,
    tat_ms   BIGINT NOT NULL,
    allowed  BIGINT NOT NULL DEFAULT 1
);
