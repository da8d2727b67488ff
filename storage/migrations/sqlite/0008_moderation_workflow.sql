-- The moderation queue as a workflow: every kind of subject, and a status. Never edit once applied.
-- conv_id and seq keep a message subject's place; they are 0 for other subjects.
ALTER TABLE moderation_items ADD COLUMN subject_kind TEXT NOT NULL DEFAULT 'message';
ALTER TABLE moderation_items ADD COLUMN subject_id TEXT NOT NULL DEFAULT '';
ALTER TABLE moderation_items ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
ALTER TABLE moderation_items ADD COLUMN resolved_action TEXT;
ALTER TABLE moderation_items ADD COLUMN resolved_by INTEGER;
ALTER TABLE moderation_items ADD COLUMN resolved_at INTEGER;
CREATE INDEX moderation_by_status ON moderation_items (status, id);
CREATE INDEX moderation_by_subject ON moderation_items (subject_kind, subject_id, status);
UPDATE moderation_items SET subject_id = conv_id || ':' || seq WHERE subject_kind = 'message';
