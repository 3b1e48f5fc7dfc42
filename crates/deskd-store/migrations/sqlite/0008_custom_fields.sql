-- Custom user fields and organization fields (one table, told apart by `resource`), and the
-- options of dropdown and multiselect fields. Values stay in users.user_fields /
-- organizations.organization_fields, keyed by the field's key.
CREATE TABLE custom_fields (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    resource                 TEXT NOT NULL,
    key                      TEXT NOT NULL,
    type                     TEXT NOT NULL,
    title                    TEXT NOT NULL,
    raw_title                TEXT NOT NULL,
    description              TEXT NOT NULL,
    raw_description          TEXT NOT NULL,
    position                 INTEGER NOT NULL,
    active                   INTEGER NOT NULL,
    regexp_for_validation    TEXT,
    tag                      TEXT,
    relationship_target_type TEXT,
    relationship_filter      TEXT,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL
);
-- A key names one field of its resource; the index, not a check, decides a race.
CREATE UNIQUE INDEX custom_fields_resource_key ON custom_fields (resource, key);

CREATE TABLE custom_field_options (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    field_id INTEGER NOT NULL REFERENCES custom_fields (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    raw_name TEXT NOT NULL,
    value    TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX custom_field_options_field ON custom_field_options (field_id, position);

INSERT INTO sqlite_sequence (name, seq) VALUES ('custom_fields', 340000000000), ('custom_field_options', 350000000000);
