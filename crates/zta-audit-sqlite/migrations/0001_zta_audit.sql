-- The audit table (the same columns as zta-audit-postgres's, in SQLite's types).
CREATE TABLE IF NOT EXISTS zta_audit (
    -- Stored order (for reading back); per writer it follows `seq`.
    pos         INTEGER PRIMARY KEY,
    -- The hash chain: one per writer, seq from 1, prev_hash of seq 1 is 32 zero bytes.
    writer_id   TEXT    NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    prev_hash   BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash        BLOB    NOT NULL CHECK (length(hash) = 32),
    -- The record's JSON, exactly the bytes hashed.
    record      TEXT    NOT NULL,
    -- Copies for queries (not hashed; NUL in text becomes U+FFFD here, never in `record`).
    -- The record id is also the request id shown to a denied caller; `time` is microseconds
    -- since 1970-01-01 UTC.
    record_id   TEXT    NOT NULL,
    time        INTEGER NOT NULL,
    event       TEXT    NOT NULL,
    effect      TEXT    NOT NULL,
    agent_id    TEXT,
    action_kind TEXT,
    action_name TEXT,
    reason      TEXT,
    stored_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (writer_id, seq)
) STRICT;
CREATE INDEX IF NOT EXISTS zta_audit_record_id ON zta_audit (record_id);
CREATE INDEX IF NOT EXISTS zta_audit_time ON zta_audit (time);
CREATE INDEX IF NOT EXISTS zta_audit_agent_time ON zta_audit (agent_id, time);
CREATE INDEX IF NOT EXISTS zta_audit_action_time ON zta_audit (action_kind, action_name, time);
CREATE INDEX IF NOT EXISTS zta_audit_effect_time ON zta_audit (effect, time);
