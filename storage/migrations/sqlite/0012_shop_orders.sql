-- Orders of the shop (issue 14): flower orders and animal claims, one state machine. The table
-- of issue 4's paid orders is rebuilt with room for an order's whole life; its rows become
-- orders of kind `manual` in state `paid`. Recipients are sealed (AES-256-GCM, the buyer's id
-- as associated data); `recipient_masked` is what a merchant sees outside fulfilment.
-- Never edit once applied.
CREATE TABLE orders_v2 (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_id      INTEGER NOT NULL,
    buyer_id         INTEGER,
    kind             TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    item             TEXT    NOT NULL,
    amount_fen       INTEGER NOT NULL,
    order_lines      TEXT    NOT NULL DEFAULT '[]',
    recipient_sealed TEXT,
    recipient_masked TEXT,
    deliver_on       INTEGER,
    slot             TEXT,
    note             TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    expires_at       INTEGER,
    paid_at          INTEGER,
    provider         TEXT,
    transaction_id   TEXT,
    refund_reason    TEXT,
    late_paid_at     INTEGER
);
INSERT INTO orders_v2 (id, merchant_id, buyer_id, kind, state, item, amount_fen, created_at, updated_at, paid_at)
    SELECT id, merchant_id, buyer_id, 'manual', 'paid', item, amount_fen, paid_at, paid_at, paid_at FROM orders;
DROP TABLE orders;
ALTER TABLE orders_v2 RENAME TO orders;
CREATE INDEX orders_by_merchant ON orders (merchant_id, id);
CREATE INDEX orders_by_buyer ON orders (buyer_id, id);
CREATE INDEX orders_expiring ON orders (state, expires_at);

-- Scheduled jobs that one node at a time runs (the unpaid-order expiry): a lease.
CREATE TABLE job_leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    until_ms    INTEGER NOT NULL
);
