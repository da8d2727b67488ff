-- QR login tickets, by the SHA-256 of the ticket (the ticket itself is never stored). Never edit once applied.
CREATE TABLE qr_tickets (
    ticket_hash  TEXT    PRIMARY KEY,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    user_id      INTEGER,
    confirmed_at INTEGER,
    consumed_at  INTEGER
);
CREATE INDEX qr_tickets_expiry ON qr_tickets (expires_at);
