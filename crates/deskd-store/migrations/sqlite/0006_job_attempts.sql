-- Claims of a job since it last made progress: a job that keeps failing ends `failed` instead
-- of being re-claimed after every lease.
ALTER TABLE jobs ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
