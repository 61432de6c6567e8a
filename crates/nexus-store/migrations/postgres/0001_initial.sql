-- Nexus schema, PostgreSQL dialect; also valid on CockroachDB. Mirrors ../sqlite/0001_initial.sql.
-- Rules: random (v4) UUID primary keys supplied by the application, no sequences, no SERIAL,
-- no advisory locks, no LISTEN/NOTIFY. JSON is stored as TEXT (written and read whole, never
-- queried), timestamps as TIMESTAMPTZ (microsecond precision).

CREATE TABLE users (
    id          UUID    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    role        TEXT    NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE user_data_keys (
    user_id     UUID    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    wrapped_key BYTEA   NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id           UUID    NOT NULL PRIMARY KEY,
    user_id      UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_keys_by_user ON api_keys (user_id, created_at);
CREATE INDEX api_keys_by_created ON api_keys (created_at);

CREATE TABLE agents (
    id                UUID    NOT NULL PRIMARY KEY,
    owner_id          UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name              TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    system_prompt     TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    fallback_models   TEXT    NOT NULL, -- JSON array of strings
    tools             TEXT    NOT NULL, -- JSON array of strings
    max_steps         BIGINT  NOT NULL,
    max_output_tokens BIGINT,
    temperature       REAL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (owner_id, name)
);
CREATE INDEX agents_by_name ON agents (name);

CREATE TABLE sessions (
    id         UUID    NOT NULL PRIMARY KEY,
    user_id    UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id   UUID    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    channel    TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    -- The seq the next message of the session gets; bumped inside the inserting transaction.
    next_seq   BIGINT  NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, agent_id, channel, scope)
);
CREATE INDEX sessions_by_user_updated ON sessions (user_id, updated_at DESC);
CREATE INDEX sessions_by_agent_updated ON sessions (agent_id, updated_at DESC);
CREATE INDEX sessions_by_updated ON sessions (updated_at DESC);

CREATE TABLE messages (
    id           UUID    NOT NULL PRIMARY KEY,
    session_id   UUID    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq          BIGINT  NOT NULL,
    channel      TEXT    NOT NULL,
    direction    TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    content      TEXT    NOT NULL,
    tool_calls   TEXT    NOT NULL, -- JSON array
    tool_call_id TEXT,
    is_error     BOOLEAN NOT NULL,
    attachments  TEXT    NOT NULL, -- JSON array
    metadata     TEXT    NOT NULL, -- JSON object
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (session_id, seq)
);

CREATE TABLE inbox (
    turn_id            UUID    NOT NULL PRIMARY KEY,
    session_id         UUID    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    message_id         UUID    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    message_seq        BIGINT  NOT NULL,
    status             TEXT    NOT NULL,
    attempts           BIGINT  NOT NULL DEFAULT 0,
    error              TEXT,
    -- Deduplication key; all NULL when the message has none (NULLs never collide).
    dedupe_channel     TEXT,
    dedupe_account     TEXT,
    dedupe_external_id TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    completed_at       TIMESTAMPTZ,
    UNIQUE (dedupe_channel, dedupe_account, dedupe_external_id)
);
CREATE INDEX inbox_pending_by_session ON inbox (session_id, message_seq) WHERE status = 'pending';

CREATE TABLE deliveries (
    id                  UUID    NOT NULL PRIMARY KEY,
    turn_id             UUID    NOT NULL UNIQUE REFERENCES inbox (turn_id) ON DELETE CASCADE,
    session_id          UUID    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    message_id          UUID    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    channel             TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    platform_message_id TEXT,
    attempts            BIGINT  NOT NULL DEFAULT 0,
    last_error          TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX deliveries_by_channel_status ON deliveries (channel, status, created_at);

-- Usage outlives sessions and agents (it is billing history): no foreign keys.
CREATE TABLE usage (
    id                 UUID    NOT NULL PRIMARY KEY,
    turn_id            UUID    NOT NULL,
    session_id         UUID    NOT NULL,
    user_id            UUID    NOT NULL,
    agent_id           UUID    NOT NULL,
    model              TEXT    NOT NULL,
    input_tokens       BIGINT  NOT NULL,
    output_tokens      BIGINT  NOT NULL,
    cache_read_tokens  BIGINT  NOT NULL,
    cache_write_tokens BIGINT  NOT NULL,
    cost_micros        BIGINT,
    created_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX usage_by_created ON usage (created_at);
CREATE INDEX usage_by_user_created ON usage (user_id, created_at);
CREATE INDEX usage_by_agent_created ON usage (agent_id, created_at);
CREATE INDEX usage_by_session_created ON usage (session_id, created_at);

CREATE TABLE channel_credentials (
    id            UUID    NOT NULL PRIMARY KEY,
    user_id       UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id      UUID    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    settings      TEXT    NOT NULL, -- JSON
    sealed_secret BYTEA   NOT NULL,
    status        TEXT    NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, name)
);
CREATE INDEX channel_credentials_by_name ON channel_credentials (name);

CREATE TABLE provider_credentials (
    id            UUID    NOT NULL PRIMARY KEY,
    user_id       UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      TEXT    NOT NULL,
    sealed_secret BYTEA   NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, provider)
);

CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

