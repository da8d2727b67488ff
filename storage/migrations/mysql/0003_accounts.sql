-- Accounts: profile, privacy settings, sealed phone, consent; blocks. Never edit once applied.
ALTER TABLE users
    ADD COLUMN avatar_url      VARCHAR(512) NULL,
    ADD COLUMN gender          VARCHAR(16)  NOT NULL DEFAULT 'unspecified',
    ADD COLUMN birth_year      BIGINT       NULL,
    ADD COLUMN bio             TEXT         NULL,
    ADD COLUMN tags            TEXT         NULL,
    ADD COLUMN dm_from         VARCHAR(16)  NOT NULL DEFAULT 'everyone',
    ADD COLUMN group_add_from  VARCHAR(16)  NOT NULL DEFAULT 'contacts',
    ADD COLUMN presence_to     VARCHAR(16)  NOT NULL DEFAULT 'contacts',
    ADD COLUMN matchable       BIGINT       NOT NULL DEFAULT 1,
    ADD COLUMN phone_cipher    VARCHAR(255) NULL,
    ADD COLUMN phone_index     CHAR(64)     NULL,
    ADD COLUMN phone_masked    VARCHAR(32)  NULL,
    ADD COLUMN consent_version VARCHAR(64)  NULL,
    ADD COLUMN consent_at      BIGINT       NULL,
    ADD COLUMN erased_at       BIGINT       NULL,
    ADD UNIQUE KEY users_by_phone (phone_index);

CREATE TABLE blocks (
    user_id     BIGINT NOT NULL,
    blocked_id  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, blocked_id),
    KEY blocks_by_blocked (blocked_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
