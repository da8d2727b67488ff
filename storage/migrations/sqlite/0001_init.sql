-- Jiebanke schema, SQLite dialect (the embedded default). Never edit once applied: add a file.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    provider    TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    nickname    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER,
    UNIQUE (provider, subject)
);

CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    title       TEXT,
    owner_id    INTEGER,
    direct_key  TEXT UNIQUE,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

CREATE TABLE members (
    conv_id     INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    read_seq    INTEGER NOT NULL DEFAULT 0,
    joined_at   INTEGER NOT NULL,
    PRIMARY KEY (conv_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

CREATE TABLE messages (
    conv_id     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    sender_id   INTEGER NOT NULL,
    cmid        TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    PRIMARY KEY (conv_id, seq),
    UNIQUE (sender_id, cmid)
);
