-- Durable events (outbox), merchants' orders and alerts, moderation. Never edit once applied.
ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN banned_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;

-- state: 0 waiting to be relayed, 1 relayed, 2 dead (never handled; kept for an operator).
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topic       TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    state       INTEGER NOT NULL DEFAULT 0,
    done_at     INTEGER,
    error       TEXT
);
CREATE INDEX outbox_by_state ON outbox (state, id);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_id INTEGER NOT NULL,
    buyer_id    INTEGER,
    item        TEXT    NOT NULL,
    amount_fen  INTEGER NOT NULL,
    paid_at     INTEGER NOT NULL
);
CREATE INDEX orders_by_merchant ON orders (merchant_id, id);

-- One alert per order.paid event: its id is the event's.
CREATE TABLE order_alerts (
    id          INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL,
    order_id    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    acked_at    INTEGER
);
CREATE INDEX order_alerts_pending ON order_alerts (merchant_id, acked_at, id);

CREATE TABLE moderation_items (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    conv_id     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    author_id   INTEGER NOT NULL,
    reporter_id INTEGER,
    reason      TEXT    NOT NULL,
    words       TEXT    NOT NULL,
    excerpt     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
