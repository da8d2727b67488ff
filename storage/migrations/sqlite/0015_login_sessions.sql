-- Login sessions: every token names one (its `jti`). A session ends when its user logs out (that
-- one, or all), when a staff account is disabled, or when its token expires; REST and the
-- gateway refuse a token whose session is not here and live. Never edit once applied.
CREATE TABLE login_sessions (
    session_key TEXT    NOT NULL PRIMARY KEY,
    user_id     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended_at    INTEGER NULL
);
CREATE INDEX login_sessions_by_user ON login_sessions (user_id, expires_at);
