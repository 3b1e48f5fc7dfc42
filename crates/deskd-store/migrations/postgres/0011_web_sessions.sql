-- Signed-in sessions of the admin pages (/admin). Only a digest of the cookie's secret is kept;
-- the role and a digest of the password hash at sign-in are kept so that a role or password
-- change ends the session.
CREATE TABLE web_sessions (
    digest          TEXT PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL,
    password_digest TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
