-- Claims of farm animals (动物认领): a claim holds one of its animal's slots from the moment its
-- first order is placed until that order is cancelled, its money refunded, or the claim ends.
-- `slots_free` is taken and given back by conditional updates, never below zero. Updates are
-- what the merchant posts about an animal for its claimants. Never edit once applied.
ALTER TABLE animals ADD COLUMN slots_free INTEGER NOT NULL DEFAULT 0;
UPDATE animals SET slots_free = slots;
ALTER TABLE orders ADD COLUMN claim_id INTEGER;

-- state: pending (its first order unpaid), active, ended, cancelled.
CREATE TABLE claims (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    animal_id      INTEGER NOT NULL,
    merchant_id    INTEGER NOT NULL,
    claimant_id    INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    period_days    INTEGER NOT NULL,
    first_order_id INTEGER NOT NULL DEFAULT 0,
    started_at     INTEGER,
    ends_at        INTEGER,
    created_at     INTEGER NOT NULL
);
CREATE INDEX claims_by_claimant ON claims (claimant_id, id);
CREATE INDEX claims_by_animal ON claims (animal_id, state);
CREATE INDEX claims_ending ON claims (state, ends_at);

CREATE TABLE animal_updates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    animal_id   INTEGER NOT NULL,
    merchant_id INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    photos      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX animal_updates_by_animal ON animal_updates (animal_id, id);
