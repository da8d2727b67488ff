-- Staff accounts (console logins): a user of provider 'staff' with a password and a TOTP secret. Never edit once applied.
CREATE TABLE staff_accounts (
    user_id       INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    totp_cipher   TEXT    NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER,
    disabled_at   INTEGER,
    last_step     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);
