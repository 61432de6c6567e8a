-- Nexus schema, SQLite dialect. Mirrors ../postgres/0001_initial.sql table for table.
-- Conventions: ids are 16-byte UUID blobs; timestamps are INTEGER microseconds since the Unix
-- epoch (UTC), so they sort and compare as numbers; JSON is stored as TEXT; booleans are 0/1.

CREATE TABLE users (
    id          BLOB    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    role        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE user_data_keys (
    user_id     BLOB    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    wrapped_key BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id           BLOB    NOT NULL PRIMARY KEY,
    user_id      BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX api_keys_by_user ON api_keys (user_id, created_at);
CREATE INDEX api_keys_by_created ON api_keys (created_at);

CREATE TABLE agents (
    id                BLOB    NOT NULL PRIMARY KEY,
    owner_id          BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name              TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    system_prompt     TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    fallback_models   TEXT    NOT NULL, -- JSON array of strings
    tools             TEXT    NOT NULL, -- JSON array of strings
    max_steps         INTEGER NOT NULL,
    max_output_tokens INTEGER,
    temperature       REAL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (owner_id, name)
) STRICT;
CREATE INDEX agents_by_name ON agents (name);

CREATE TABLE sessions (
    id         BLOB    NOT NULL PRIMARY KEY,
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id   BLOB    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    channel    TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    -- The seq the next message of the session gets; bumped inside the inserting transaction.
    next_seq   INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (user_id, agent_id, channel, scope)
) STRICT;
CREATE INDEX sessions_by_user_updated ON sessions (user_id, updated_at DESC);
CREATE INDEX sessions_by_agent_updated ON sessions (agent_id, updated_at DESC);
CREATE INDEX sessions_by_updated ON sessions (updated_at DESC);

CREATE TABLE messages (
    id           BLOB    NOT NULL PRIMARY KEY,
    session_id   BLOB    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    channel      TEXT    NOT NULL,
    direction    TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    content      TEXT    NOT NULL,
    tool_calls   TEXT    NOT NULL, -- JSON array
    tool_call_id TEXT,
    is_error     INTEGER NOT NULL,
    attachments  TEXT    NOT NULL, -- JSON array
    metadata     TEXT    NOT NULL, -- JSON object
    created_at   INTEGER NOT NULL,
    UNIQUE (session_id, seq)
) STRICT;

CREATE TABLE inbox (
    turn_id            BLOB    NOT NULL PRIMARY KEY,
    session_id         BLOB    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    message_id         BLOB    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    message_seq        INTEGER NOT NULL,
    status             TEXT    NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    error              TEXT,
    -- Deduplication key; all NULL when the message has none (NULLs never collide).
    dedupe_channel     TEXT,
    dedupe_account     TEXT,
    dedupe_external_id TEXT,
    created_at         INTEGER NOT NULL,
    completed_at       INTEGER,
    UNIQUE (dedupe_channel, dedupe_account, dedupe_external_id)
) STRICT;
CREATE INDEX inbox_pending_by_session ON inbox (session_id, message_seq) WHERE status = 'pending';

CREATE TABLE deliveries (
    id                  BLOB    NOT NULL PRIMARY KEY,
    turn_id             BLOB    NOT NULL UNIQUE REFERENCES inbox (turn_id) ON DELETE CASCADE,
    session_id          BLOB    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    message_id          BLOB    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    channel             TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    platform_message_id TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;
CREATE INDEX deliveries_by_channel_status ON deliveries (channel, status, created_at);

-- Usage outlives sessions and agents (it is billing history): no foreign keys.
CREATE TABLE usage (
    id                 BLOB    NOT NULL PRIMARY KEY,
    turn_id            BLOB    NOT NULL,
    session_id         BLOB    NOT NULL,
    user_id            BLOB    NOT NULL,
    agent_id           BLOB    NOT NULL,
    model              TEXT    NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_micros        INTEGER,
    created_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX usage_by_created ON usage (created_at);
CREATE INDEX usage_by_user_created ON usage (user_id, created_at);
CREATE INDEX usage_by_agent_created ON usage (agent_id, created_at);
CREATE INDEX usage_by_session_created ON usage (session_id, created_at);

CREATE TABLE channel_credentials (
    id            BLOB    NOT NULL PRIMARY KEY,
    user_id       BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id      BLOB    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    settings      TEXT    NOT NULL, -- JSON
    sealed_secret BLOB    NOT NULL,
    status        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (user_id, name)
) STRICT;
CREATE INDEX channel_credentials_by_name ON channel_credentials (name);

CREATE TABLE provider_credentials (
    id            BLOB    NOT NULL PRIMARY KEY,
    user_id       BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      TEXT    NOT NULL,
    sealed_secret BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (user_id, provider)
) STRICT;

CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
