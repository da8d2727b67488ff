-- Accounts: profile, privacy settings, sealed phone, consent; blocks. Never edit once applied.
ALTER TABLE users ADD COLUMN avatar_url TEXT;
ALTER TABLE users ADD COLUMN gender TEXT NOT NULL DEFAULT 'unspecified';
ALTER TABLE users ADD COLUMN birth_year INTEGER;
ALTER TABLE users ADD COLUMN bio TEXT NOT NULL DEFAULT '';
-- Tags joined by a line break (a tag never has one).
ALTER TABLE users ADD COLUMN tags TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN dm_from TEXT NOT NULL DEFAULT 'everyone';
ALTER TABLE users ADD COLUMN group_add_from TEXT NOT NULL DEFAULT 'contacts';
ALTER TABLE users ADD COLUMN presence_to TEXT NOT NULL DEFAULT 'contacts';
ALTER TABLE users ADD COLUMN matchable INTEGER NOT NULL DEFAULT 1;
-- AES-256-GCM sealed number (base64), its HMAC blind index (hex), its masked form.
ALTER TABLE users ADD COLUMN phone_cipher TEXT;
ALTER TABLE users ADD COLUMN phone_index TEXT;
ALTER TABLE users ADD COLUMN phone_masked TEXT;
ALTER TABLE users ADD COLUMN consent_version TEXT;
ALTER TABLE users ADD COLUMN consent_at INTEGER;
ALTER TABLE users ADD COLUMN erased_at INTEGER;
CREATE UNIQUE INDEX users_by_phone ON users (phone_index);

CREATE TABLE blocks (
    user_id     INTEGER NOT NULL,
    blocked_id  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
);
CREATE INDEX blocks_by_blocked ON blocks (blocked_id);
