-- What the staff dashboard counts: the business day of a user's last activity, and indexes for "today". Never edit once applied.
ALTER TABLE users ADD COLUMN active_day BIGINT NULL, ADD KEY users_by_active_day (active_day), ADD KEY users_by_created (created_at);
ALTER TABLE messages ADD KEY messages_by_ts (ts);
