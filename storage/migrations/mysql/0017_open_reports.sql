-- One open report per (subject, reporter): a second report of the same subject by the same
-- reporter answers the item already open. `open_report_key` is `kind:id:reporter` while the
-- report is open, NULL once resolved (and for flags and appeals); reports stored before stay
-- as they are. Never edit once applied.
ALTER TABLE moderation_items ADD COLUMN open_report_key VARCHAR(191) NULL,
    ADD UNIQUE KEY moderation_open_report (open_report_key);
