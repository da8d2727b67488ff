-- Reviews of completed orders: one per order (a unique index), one reply by the merchant. The
-- merchant's `rating_sum` and `reviews` change in the review's transaction. Never edit once
-- applied.
CREATE TABLE reviews (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id    INTEGER NOT NULL,
    merchant_id INTEGER NOT NULL,
    author_id   INTEGER NOT NULL,
    rating      INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    photos      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    reply       TEXT,
    replied_at  INTEGER,
    hidden_at   INTEGER
);
CREATE UNIQUE INDEX reviews_one_per_order ON reviews (order_id);
CREATE INDEX reviews_by_merchant ON reviews (merchant_id, id);

-- The dashboards count orders placed and paid today (and a merchant's paid orders by day).
CREATE INDEX orders_by_created ON orders (created_at);
CREATE INDEX orders_by_paid ON orders (merchant_id, paid_at);
CREATE INDEX orders_paid_at ON orders (paid_at);
