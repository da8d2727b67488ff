-- Staff accounts (console logins): a user of provider 'staff' with a password and a TOTP secret. Never edit once applied.
CREATE TABLE staff_accounts (
    user_id       BIGINT       NOT NULL PRIMARY KEY,
    username      VARCHAR(32)  NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    totp_cipher   VARCHAR(255) NOT NULL,
    failures      BIGINT       NOT NULL DEFAULT 0,
    locked_until  BIGINT       NULL,
    disabled_at   BIGINT       NULL,
    last_step     BIGINT       NOT NULL DEFAULT 0,
    created_at    BIGINT       NOT NULL,
    UNIQUE KEY staff_by_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
