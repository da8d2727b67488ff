-- Failed staff logins counted per (username, address) and per address, in windows that start at
-- their first failure; any username is counted, an unknown one too. They replace the per-account
-- lock (staff_accounts.failures and locked_until are no longer read). Never edit once applied.
CREATE TABLE staff_login_failures (
    username     VARCHAR(64) NOT NULL,
    address      VARCHAR(64) NOT NULL,
    window_start BIGINT      NOT NULL,
    failures     BIGINT      NOT NULL,
    PRIMARY KEY (username, address),
    KEY staff_login_failures_window (window_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE staff_login_address_failures (
    address      VARCHAR(64) NOT NULL PRIMARY KEY,
    window_start BIGINT      NOT NULL,
    failures     BIGINT      NOT NULL,
    KEY staff_login_address_failures_window (window_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
