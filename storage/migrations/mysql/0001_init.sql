-- Jiebanke schema, MySQL 8 / MariaDB dialect. Never edit once applied: add a file.
CREATE TABLE users (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    provider    VARCHAR(16)  NOT NULL,
    subject     VARCHAR(128) NOT NULL,
    nickname    VARCHAR(64)  NOT NULL,
    created_at  BIGINT       NOT NULL,
    last_seen   BIGINT       NULL,
    UNIQUE KEY users_identity (provider, subject)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE conversations (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind        VARCHAR(16)  NOT NULL,
    title       VARCHAR(255) NULL,
    owner_id    BIGINT       NULL,
    direct_key  VARCHAR(64)  NULL,
    last_seq    BIGINT       NOT NULL DEFAULT 0,
    created_at  BIGINT       NOT NULL,
    UNIQUE KEY conversations_direct (direct_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE members (
    conv_id     BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    read_seq    BIGINT NOT NULL DEFAULT 0,
    joined_at   BIGINT NOT NULL,
    PRIMARY KEY (conv_id, user_id),
    KEY members_by_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE messages (
    conv_id     BIGINT        NOT NULL,
    seq         BIGINT        NOT NULL,
    sender_id   BIGINT        NOT NULL,
    cmid        VARCHAR(64)   NOT NULL,
    ts          BIGINT        NOT NULL,
    kind        VARCHAR(16)   NOT NULL,
    text        VARCHAR(4000) NOT NULL,
    PRIMARY KEY (conv_id, seq),
    UNIQUE KEY messages_cmid (sender_id, cmid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
