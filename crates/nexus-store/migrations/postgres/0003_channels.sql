-- Channel connections: runtime health, DM pairing (which doubles as the approved senders), and
-- the platform messages a streamed reply has created so far (so a retry edits them instead of
-- sending the reply again).

CREATE TABLE channel_health (
    channel_id UUID        NOT NULL PRIMARY KEY REFERENCES channel_credentials (id) ON DELETE CASCADE,
    state      TEXT        NOT NULL,
    last_error TEXT,
    holder     TEXT,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE channel_pairings (
    channel_id  UUID        NOT NULL REFERENCES channel_credentials (id) ON DELETE CASCADE,
    sender_id   TEXT        NOT NULL,
    sender_name TEXT,
    code        TEXT        NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    approved_at TIMESTAMPTZ,
    PRIMARY KEY (channel_id, sender_id)
);

CREATE TABLE channel_replies (
    turn_id     UUID        NOT NULL PRIMARY KEY REFERENCES inbox (turn_id) ON DELETE CASCADE,
    channel_id  UUID        NOT NULL REFERENCES channel_credentials (id) ON DELETE CASCADE,
    message_ids TEXT        NOT NULL, -- JSON array of platform message ids, in order
    updated_at  TIMESTAMPTZ NOT NULL
);
