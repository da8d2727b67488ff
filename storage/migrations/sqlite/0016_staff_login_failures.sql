-- Failed staff logins counted per (username, address) and per address, in windows that start at
-- their first failure; any username is counted, an unknown one too. They replace the per-account
-- lock (staff_accounts.failures and locked_until are no longer read). Never edit once applied.
CREATE TABLE staff_login_failures (
    username     TEXT    NOT NULL,
    address      TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    PRIMARY KEY (username, address)
);
CREATE INDEX staff_login_failures_window ON staff_login_failures (window_start);
CREATE TABLE staff_login_address_failures (
    address      TEXT    NOT NULL PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL
);
CREATE INDEX staff_login_address_failures_window ON staff_login_address_failures (window_start);
