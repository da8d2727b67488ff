-- Farm animals to claim (动物认领). Photos are a JSON array of URLs. Never edit once applied.
CREATE TABLE animals (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    merchant_id BIGINT       NOT NULL,
    species     VARCHAR(128) NOT NULL,
    name        VARCHAR(128) NOT NULL,
    story       TEXT         NOT NULL,
    photos      TEXT         NOT NULL,
    price_fen   BIGINT       NOT NULL,
    period_days BIGINT       NOT NULL,
    slots       BIGINT       NOT NULL,
    created_at  BIGINT       NOT NULL,
    hidden_at   BIGINT       NULL,
    KEY animals_by_merchant (merchant_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
