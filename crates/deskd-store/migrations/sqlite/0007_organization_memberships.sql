-- Organization memberships: a user in several organizations, one of them the default (mirrored
-- in users.organization_id). Existing users' organizations become their default memberships.
CREATE TABLE organization_memberships (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    is_default      INTEGER NOT NULL DEFAULT 0,
    view_tickets    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX organization_memberships_user_org ON organization_memberships (user_id, organization_id);
CREATE INDEX organization_memberships_org_user ON organization_memberships (organization_id, user_id);

INSERT INTO sqlite_sequence (name, seq) VALUES ('organization_memberships', 390000000000);

INSERT INTO organization_memberships (user_id, organization_id, is_default, view_tickets, created_at, updated_at)
SELECT id, organization_id, 1,
       CASE WHEN role IN ('agent', 'admin') OR ticket_restriction = 'organization' THEN 1 ELSE 0 END,
       updated_at, updated_at
FROM users WHERE organization_id IS NOT NULL;
