-- Bumped in the same transaction as any write that takes access away (revoked token, suspended
-- or deleted user, removed identity, changed password). Every process polls it and drops its
-- cached logins when it moves, so revocation reaches every replica and the CLI's changes too.
CREATE TABLE credentials_epoch (
    id     INTEGER PRIMARY KEY,
    epoch  INTEGER NOT NULL
);
INSERT INTO credentials_epoch (id, epoch) VALUES (1, 0);

ALTER TABLE api_tokens ADD COLUMN updated_at INTEGER;
