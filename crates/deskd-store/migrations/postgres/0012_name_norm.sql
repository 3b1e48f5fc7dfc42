-- Names folded for case-insensitive search (trimmed, NFC, full case folding), written by deskd
-- with every name: SQLite's lower() and LIKE fold ASCII letters only, so `ÉMILE` never found
-- `émile` there. Rows from before take lower(name) here and deskd's folding on their next write.
ALTER TABLE users ADD COLUMN name_norm TEXT;
UPDATE users SET name_norm = lower(trim(name));
