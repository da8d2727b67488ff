-- One open report per (subject, reporter): a second report of the same subject by the same
-- reporter answers the item already open. `open_report_key` is `kind:id:reporter` while the
-- report is open, NULL once resolved (and for flags and appeals); reports stored before stay
-- as they are. Never edit once applied.
ALTER TABLE moderation_items ADD COLUMN open_report_key TEXT NULL;
CREATE UNIQUE INDEX moderation_open_report ON moderation_items (open_report_key);
