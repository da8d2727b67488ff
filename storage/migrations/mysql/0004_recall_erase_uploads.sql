-- Recalled messages; identities banned before their account was erased; uploads. Never edit once applied.
ALTER TABLE messages ADD COLUMN recalled_at BIGINT NULL;

-- The keyed hash (HMAC under the data key's index key) of a banned identity whose account was
-- erased: its next login makes a new account, which this keeps banned.
CREATE TABLE banned_identities (
    identity_index CHAR(64) NOT NULL PRIMARY KEY,
    created_at     BIGINT   NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Uploaded photos: the bytes are in the blob store under uploads/<name>.<ext>.
CREATE TABLE uploads (
    id          BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    owner_id    BIGINT      NOT NULL,
    name        CHAR(32)    NOT NULL,
    kind        VARCHAR(8)  NOT NULL,
    size        BIGINT      NOT NULL,
    created_at  BIGINT      NOT NULL,
    UNIQUE KEY uploads_by_name (name),
    KEY uploads_by_owner (owner_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
