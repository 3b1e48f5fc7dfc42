-- deskd schema, SQLite. Kept in lockstep with migrations/postgres/0001_init.sql.
-- Booleans are INTEGER 0/1 and times Unix seconds on both backends, so one SQL text serves both.

CREATE TABLE organizations (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT NOT NULL,
    name_norm           TEXT NOT NULL,
    external_id         TEXT,
    external_id_norm    TEXT,
    details             TEXT,
    notes               TEXT,
    group_id            INTEGER,
    shared_tickets      INTEGER NOT NULL DEFAULT 0,
    shared_comments     INTEGER NOT NULL DEFAULT 0,
    domain_names        TEXT NOT NULL DEFAULT '[]',
    tags                TEXT NOT NULL DEFAULT '[]',
    organization_fields TEXT NOT NULL DEFAULT '{}',
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX organizations_name_norm ON organizations (name_norm);
CREATE UNIQUE INDEX organizations_external_id_norm ON organizations (external_id_norm);

CREATE TABLE users (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    name                  TEXT NOT NULL,
    email                 TEXT,
    external_id           TEXT,
    external_id_norm      TEXT,
    role                  TEXT NOT NULL,
    custom_role_id        INTEGER,
    organization_id       INTEGER REFERENCES organizations (id) ON DELETE SET NULL,
    default_group_id      INTEGER,
    time_zone             TEXT NOT NULL,
    locale                TEXT NOT NULL,
    locale_id             INTEGER NOT NULL,
    phone                 TEXT,
    shared_phone_number   INTEGER,
    alias                 TEXT,
    details               TEXT,
    notes                 TEXT,
    signature             TEXT,
    remote_photo_url      TEXT,
    ticket_restriction    TEXT,
    tags                  TEXT NOT NULL DEFAULT '[]',
    user_fields           TEXT NOT NULL DEFAULT '{}',
    moderator             INTEGER NOT NULL DEFAULT 0,
    only_private_comments INTEGER NOT NULL DEFAULT 0,
    suspended             INTEGER NOT NULL DEFAULT 0,
    verified              INTEGER NOT NULL DEFAULT 0,
    active                INTEGER NOT NULL DEFAULT 1,
    password_hash         TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    last_login_at         INTEGER
);
CREATE UNIQUE INDEX users_external_id_norm ON users (external_id_norm);
CREATE INDEX users_organization_id ON users (organization_id);
CREATE INDEX users_role ON users (role, id);

CREATE TABLE identities (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    value       TEXT NOT NULL,
    value_norm  TEXT NOT NULL,
    verified    INTEGER NOT NULL DEFAULT 0,
    is_primary  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX identities_type_value_norm ON identities (type, value_norm);
CREATE INDEX identities_user_id ON identities (user_id);

-- Account API tokens, stored as SHA-256 digests only.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    digest      TEXT NOT NULL,
    description TEXT,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX api_tokens_digest ON api_tokens (digest);

-- OAuth-style bearer tokens issued by an admin for one user, stored as SHA-256 digests only.
CREATE TABLE oauth_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest      TEXT NOT NULL,
    scopes      TEXT NOT NULL DEFAULT '["read","write"]',
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX oauth_tokens_digest ON oauth_tokens (digest);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Zendesk ids are large numbers; start each sequence in its own range so that an id of one
-- kind used as another fails loudly.
INSERT INTO sqlite_sequence (name, seq) VALUES
    ('users', 360000000000),
    ('identities', 370000000000),
    ('organizations', 380000000000),
    ('api_tokens', 100),
    ('oauth_tokens', 500);
