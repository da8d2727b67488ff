-- Claims of farm animals (动物认领): a claim holds one of its animal's slots from the moment its
-- first order is placed until that order is cancelled, its money refunded, or the claim ends.
-- `slots_free` is taken and given back by conditional updates, never below zero. Updates are
-- what the merchant posts about an animal for its claimants. Never edit once applied.
ALTER TABLE animals
    ADD COLUMN slots_free BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT animals_slots_free_not_negative CHECK (slots_free >= 0);
UPDATE animals SET slots_free = slots;
ALTER TABLE orders ADD COLUMN claim_id BIGINT NULL;

CREATE TABLE claims (
    id             BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    animal_id      BIGINT      NOT NULL,
    merchant_id    BIGINT      NOT NULL,
    claimant_id    BIGINT      NOT NULL,
    state          VARCHAR(16) NOT NULL,
    period_days    BIGINT      NOT NULL,
    first_order_id BIGINT      NOT NULL DEFAULT 0,
    started_at     BIGINT      NULL,
    ends_at        BIGINT      NULL,
    created_at     BIGINT      NOT NULL,
    KEY claims_by_claimant (claimant_id, id),
    KEY claims_by_animal (animal_id, state),
    KEY claims_ending (state, ends_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE animal_updates (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    animal_id   BIGINT       NOT NULL,
    merchant_id BIGINT       NOT NULL,
    text        TEXT         NOT NULL,
    photos      TEXT         NOT NULL,
    created_at  BIGINT       NOT NULL,
    KEY animal_updates_by_animal (animal_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
