-- What the staff dashboard counts: the business day of a user's last activity, and indexes for "today". Never edit once applied.
ALTER TABLE users ADD COLUMN active_day INTEGER;
CREATE INDEX users_by_active_day ON users (active_day);
CREATE INDEX users_by_created ON users (created_at);
CREATE INDEX messages_by_ts ON messages (ts);
