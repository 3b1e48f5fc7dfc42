-- Bulk jobs: Zendesk's job_status is deskd's own queue. A job and its items are stored before
-- the 200 is sent; workers claim jobs with a lease; each chunk's upserts, results and progress
-- commit together, so a job re-run after a crash resumes where it stopped.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    total           BIGINT NOT NULL,
    progress        BIGINT,
    message         TEXT,
    actor_id        BIGINT NOT NULL,
    actor_role      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    completed_at    BIGINT
);
CREATE INDEX jobs_status_created ON jobs (status, created_at);
CREATE INDEX jobs_created ON jobs (created_at);

CREATE TABLE job_results (
    job_id  TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx     BIGINT NOT NULL,
    result  TEXT NOT NULL,
    PRIMARY KEY (job_id, idx)
);

-- Idempotency-Key on bulk submissions: the first response is replayed for 2 hours.
CREATE TABLE idempotency_keys (
    key             TEXT PRIMARY KEY,
    request_digest  TEXT NOT NULL,
    response        TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
