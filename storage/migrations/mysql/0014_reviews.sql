-- Reviews of completed orders: one per order (a unique index), one reply by the merchant. The
-- merchant's `rating_sum` and `reviews` change in the review's transaction. Never edit once
-- applied.
CREATE TABLE reviews (
    id          BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id    BIGINT        NOT NULL,
    merchant_id BIGINT        NOT NULL,
    author_id   BIGINT        NOT NULL,
    rating      BIGINT        NOT NULL,
    text        TEXT          NOT NULL,
    photos      TEXT          NOT NULL,
    created_at  BIGINT        NOT NULL,
    reply       TEXT          NULL,
    replied_at  BIGINT        NULL,
    hidden_at   BIGINT        NULL,
    UNIQUE KEY reviews_one_per_order (order_id),
    KEY reviews_by_merchant (merchant_id, id),
    CONSTRAINT reviews_rating_range CHECK (rating BETWEEN 1 AND 5)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The dashboards count orders placed and paid today (and a merchant's paid orders by day).
CREATE INDEX orders_by_created ON orders (created_at);
CREATE INDEX orders_by_paid ON orders (merchant_id, paid_at);
CREATE INDEX orders_paid_at ON orders (paid_at);
