-- Login sessions: every token names one (its `jti`). A session ends when its user logs out (that
-- one, or all), when a staff account is disabled, or when its token expires; REST and the
-- gateway refuse a token whose session is not here and live. Never edit once applied.
CREATE TABLE login_sessions (
    session_key CHAR(32)      NOT NULL PRIMARY KEY,
    user_id     BIGINT        NOT NULL,
    created_at  BIGINT        NOT NULL,
    expires_at  BIGINT        NOT NULL,
    ended_at    BIGINT        NULL,
    KEY login_sessions_by_user (user_id, expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
