-- Staff roles, the audit log, merchant applications, merchants, website leads. Never edit once applied.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'none';
UPDATE users SET role = 'admin' WHERE is_admin <> 0;
ALTER TABLE users DROP COLUMN is_admin;

-- Every staff action, written in the transaction of its change. Entries are never changed or
-- deleted: the triggers below refuse it.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id    INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL CHECK (length(target) BETWEEN 1 AND 200),
    before_json TEXT,
    after_json  TEXT,
    ip          TEXT,
    at          INTEGER NOT NULL
);
CREATE INDEX audit_by_actor ON audit_log (actor_id, id);
CREATE INDEX audit_by_action ON audit_log (action, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit entries cannot be changed'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit entries cannot be deleted'); END;

-- open_user is the applicant while the application is pending, NULL after: its unique index
-- keeps one open application per user, even for two submitted at once.
CREATE TABLE merchant_applications (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        INTEGER NOT NULL,
    open_user      INTEGER,
    name           TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    license_cipher TEXT    NOT NULL,
    license_masked TEXT    NOT NULL,
    contact_name   TEXT    NOT NULL,
    phone_cipher   TEXT    NOT NULL,
    phone_masked   TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    reason         TEXT,
    created_at     INTEGER NOT NULL,
    decided_at     INTEGER,
    decided_by     INTEGER
);
CREATE UNIQUE INDEX applications_open ON merchant_applications (open_user);
CREATE INDEX applications_by_user ON merchant_applications (user_id, id);
CREATE INDEX applications_by_status ON merchant_applications (status, id);

-- A merchant's id is its user's id.
CREATE TABLE merchants (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    status         TEXT    NOT NULL DEFAULT 'active',
    suspend_reason TEXT,
    rating_sum     INTEGER NOT NULL DEFAULT 0,
    reviews        INTEGER NOT NULL DEFAULT 0,
    since          INTEGER NOT NULL
);
CREATE INDEX merchants_listed ON merchants (status, category, id);

CREATE TABLE merchant_leads (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    company      TEXT    NOT NULL,
    contact_name TEXT    NOT NULL,
    phone_cipher TEXT    NOT NULL,
    phone_masked TEXT    NOT NULL,
    category     TEXT    NOT NULL,
    city         TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    handled_by   INTEGER,
    handled_note TEXT,
    handled_at   INTEGER
);
CREATE INDEX leads_open ON merchant_leads (handled_at, id);
