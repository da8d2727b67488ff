-- Staff roles, the audit log, merchant applications, merchants, website leads. Never edit once applied.
ALTER TABLE users ADD COLUMN role VARCHAR(16) NOT NULL DEFAULT 'none';
UPDATE users SET role = 'admin' WHERE is_admin <> 0;
ALTER TABLE users DROP COLUMN is_admin;

-- Every staff action, written in the transaction of its change. Entries are never changed or
-- deleted: the triggers below refuse it (creating them needs the TRIGGER privilege, and SUPER
-- or log_bin_trust_function_creators where binary logging is on).
CREATE TABLE audit_log (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    actor_id    BIGINT       NOT NULL,
    action      VARCHAR(64)  NOT NULL,
    target      VARCHAR(200) NOT NULL,
    before_json TEXT         NULL,
    after_json  TEXT         NULL,
    ip          VARCHAR(64)  NULL,
    at          BIGINT       NOT NULL,
    KEY audit_by_actor (actor_id, id),
    KEY audit_by_action (action, id),
    CONSTRAINT audit_target_length CHECK (CHAR_LENGTH(target) BETWEEN 1 AND 200)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit entries cannot be changed';
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit entries cannot be deleted';

-- open_user is the applicant while the application is pending, NULL after: its unique index
-- keeps one open application per user, even for two submitted at once.
CREATE TABLE merchant_applications (
    id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id        BIGINT       NOT NULL,
    open_user      BIGINT       NULL,
    name           VARCHAR(255) NOT NULL,
    category       VARCHAR(16)  NOT NULL,
    license_cipher VARCHAR(255) NOT NULL,
    license_masked VARCHAR(32)  NOT NULL,
    contact_name   VARCHAR(128) NOT NULL,
    phone_cipher   VARCHAR(255) NOT NULL,
    phone_masked   VARCHAR(32)  NOT NULL,
    status         VARCHAR(16)  NOT NULL,
    reason         TEXT         NULL,
    created_at     BIGINT       NOT NULL,
    decided_at     BIGINT       NULL,
    decided_by     BIGINT       NULL,
    UNIQUE KEY applications_open (open_user),
    KEY applications_by_user (user_id, id),
    KEY applications_by_status (status, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A merchant's id is its user's id.
CREATE TABLE merchants (
    id             BIGINT       NOT NULL PRIMARY KEY,
    name           VARCHAR(255) NOT NULL,
    category       VARCHAR(16)  NOT NULL,
    status         VARCHAR(16)  NOT NULL DEFAULT 'active',
    suspend_reason TEXT         NULL,
    rating_sum     BIGINT       NOT NULL DEFAULT 0,
    reviews        BIGINT       NOT NULL DEFAULT 0,
    since          BIGINT       NOT NULL,
    KEY merchants_listed (status, category, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE merchant_leads (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    company      VARCHAR(255) NOT NULL,
    contact_name VARCHAR(128) NOT NULL,
    phone_cipher VARCHAR(255) NOT NULL,
    phone_masked VARCHAR(32)  NOT NULL,
    category     VARCHAR(16)  NOT NULL,
    city         VARCHAR(128) NOT NULL,
    message      TEXT         NOT NULL,
    created_at   BIGINT       NOT NULL,
    handled_by   BIGINT       NULL,
    handled_note TEXT         NULL,
    handled_at   BIGINT       NULL,
    KEY leads_open (handled_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
