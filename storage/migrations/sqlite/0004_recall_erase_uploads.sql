-- Recalled messages; identities banned before their account was erased; uploads. Never edit once applied.
ALTER TABLE messages ADD COLUMN recalled_at INTEGER;

-- The keyed hash (HMAC under the data key's index key) of a banned identity whose account was
-- erased: its next login makes a new account, which this keeps banned.
CREATE TABLE banned_identities (
    identity_index TEXT    NOT NULL PRIMARY KEY,
    created_at     INTEGER NOT NULL
);

-- Uploaded photos: the bytes are in the blob store under uploads/<name>.<ext>.
CREATE TABLE uploads (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id    INTEGER NOT NULL,
    name        TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX uploads_by_owner ON uploads (owner_id, id);
