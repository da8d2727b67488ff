-- Orders of the shop (issue 14): flower orders and animal claims, one state machine. Issue 4's
-- paid orders become orders of kind `manual` in state `paid`. Recipients are sealed (AES-256-GCM,
-- the buyer's id as associated data); `recipient_masked` is what a merchant sees outside
-- fulfilment. Never edit once applied.
ALTER TABLE orders
    MODIFY paid_at BIGINT NULL,
    ADD COLUMN kind             VARCHAR(16)  NOT NULL DEFAULT 'manual',
    ADD COLUMN state            VARCHAR(32)  NOT NULL DEFAULT 'paid',
    ADD COLUMN order_lines      TEXT         NULL,
    ADD COLUMN recipient_sealed TEXT         NULL,
    ADD COLUMN recipient_masked VARCHAR(255) NULL,
    ADD COLUMN deliver_on       BIGINT       NULL,
    ADD COLUMN slot             VARCHAR(16)  NULL,
    ADD COLUMN note             VARCHAR(1024) NOT NULL DEFAULT '',
    ADD COLUMN created_at       BIGINT       NOT NULL DEFAULT 0,
    ADD COLUMN updated_at       BIGINT       NOT NULL DEFAULT 0,
    ADD COLUMN expires_at       BIGINT       NULL,
    ADD COLUMN provider         VARCHAR(16)  NULL,
    ADD COLUMN transaction_id   VARCHAR(64)  NULL,
    ADD COLUMN refund_reason    VARCHAR(1024) NULL,
    ADD COLUMN late_paid_at     BIGINT       NULL,
    ADD KEY orders_by_buyer (buyer_id, id),
    ADD KEY orders_expiring (state, expires_at);
UPDATE orders SET order_lines = '[]', created_at = paid_at, updated_at = paid_at WHERE order_lines IS NULL;

-- Scheduled jobs that one node at a time runs (the unpaid-order expiry): a lease.
CREATE TABLE job_leases (
    name        VARCHAR(64) NOT NULL PRIMARY KEY,
    holder      VARCHAR(128) NOT NULL,
    until_ms    BIGINT      NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
