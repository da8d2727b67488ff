-- Durable events (outbox), merchants' orders and alerts, moderation. Never edit once applied.
ALTER TABLE users ADD COLUMN is_admin BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN banned_at BIGINT NULL;
ALTER TABLE messages ADD COLUMN deleted_at BIGINT NULL;

-- state: 0 waiting to be relayed, 1 relayed, 2 dead (never handled; kept for an operator).
CREATE TABLE outbox (
    id          BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    topic       VARCHAR(64)   NOT NULL,
    payload     TEXT          NOT NULL,
    created_at  BIGINT        NOT NULL,
    state       BIGINT        NOT NULL DEFAULT 0,
    done_at     BIGINT        NULL,
    error       VARCHAR(1000) NULL,
    KEY outbox_by_state (state, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE orders (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    merchant_id BIGINT       NOT NULL,
    buyer_id    BIGINT       NULL,
    item        VARCHAR(512) NOT NULL,
    amount_fen  BIGINT       NOT NULL,
    paid_at     BIGINT       NOT NULL,
    KEY orders_by_merchant (merchant_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One alert per order.paid event: its id is the event's.
CREATE TABLE order_alerts (
    id          BIGINT NOT NULL PRIMARY KEY,
    merchant_id BIGINT NOT NULL,
    order_id    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    acked_at    BIGINT NULL,
    KEY order_alerts_pending (merchant_id, acked_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE moderation_items (
    id          BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind        VARCHAR(16)   NOT NULL,
    conv_id     BIGINT        NOT NULL,
    seq         BIGINT        NOT NULL,
    author_id   BIGINT        NOT NULL,
    reporter_id BIGINT        NULL,
    reason      VARCHAR(1000) NOT NULL,
    words       TEXT          NOT NULL,
    excerpt     VARCHAR(1000) NOT NULL,
    created_at  BIGINT        NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
