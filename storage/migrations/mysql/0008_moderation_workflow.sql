-- The moderation queue as a workflow: every kind of subject, and a status. Never edit once applied.
-- conv_id and seq keep a message subject's place; they are 0 for other subjects.
ALTER TABLE moderation_items
    ADD COLUMN subject_kind    VARCHAR(16) NOT NULL DEFAULT 'message',
    ADD COLUMN subject_id      VARCHAR(64) NOT NULL DEFAULT '',
    ADD COLUMN status          VARCHAR(16) NOT NULL DEFAULT 'open',
    ADD COLUMN resolved_action VARCHAR(16) NULL,
    ADD COLUMN resolved_by     BIGINT      NULL,
    ADD COLUMN resolved_at     BIGINT      NULL,
    ADD KEY moderation_by_status (status, id),
    ADD KEY moderation_by_subject (subject_kind, subject_id, status);
UPDATE moderation_items SET subject_id = CONCAT(conv_id, ':', seq) WHERE subject_kind = 'message';
