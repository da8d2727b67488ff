-- Merchants' flowers (the catalog). Photos are a JSON array of URLs. Never edit once applied.
CREATE TABLE products (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_id INTEGER NOT NULL,
    kind        TEXT    NOT NULL DEFAULT 'flower',
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL,
    price_fen   INTEGER NOT NULL,
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    photos      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    hidden_at   INTEGER
);
CREATE INDEX products_by_merchant ON products (merchant_id, id);
