-- Farm animals to claim (动物认领). Photos are a JSON array of URLs. Never edit once applied.
CREATE TABLE animals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_id INTEGER NOT NULL,
    species     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    story       TEXT    NOT NULL,
    photos      TEXT    NOT NULL,
    price_fen   INTEGER NOT NULL,
    period_days INTEGER NOT NULL,
    slots       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    hidden_at   INTEGER
);
CREATE INDEX animals_by_merchant ON animals (merchant_id, id);
