-- Merchants' flowers (the catalog). Photos are a JSON array of URLs. Never edit once applied.
CREATE TABLE products (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    merchant_id BIGINT       NOT NULL,
    kind        VARCHAR(16)  NOT NULL DEFAULT 'flower',
    title       VARCHAR(255) NOT NULL,
    description TEXT         NOT NULL,
    price_fen   BIGINT       NOT NULL,
    stock       BIGINT       NOT NULL,
    photos      TEXT         NOT NULL,
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL,
    hidden_at   BIGINT       NULL,
    KEY products_by_merchant (merchant_id, id),
    CONSTRAINT products_stock_not_negative CHECK (stock >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
