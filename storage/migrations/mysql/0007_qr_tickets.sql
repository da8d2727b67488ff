-- QR login tickets, by the SHA-256 of the ticket (the ticket itself is never stored). Never edit once applied.
CREATE TABLE qr_tickets (
    ticket_hash  CHAR(64) NOT NULL PRIMARY KEY,
    created_at   BIGINT   NOT NULL,
    expires_at   BIGINT   NOT NULL,
    user_id      BIGINT   NULL,
    confirmed_at BIGINT   NULL,
    consumed_at  BIGINT   NULL,
    KEY qr_tickets_expiry (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
