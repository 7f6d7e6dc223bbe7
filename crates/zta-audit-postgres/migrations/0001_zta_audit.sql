-- The audit table. `zta_audit` is the default table; a sink configured with another table
-- gets one made `LIKE zta_audit INCLUDING ALL` (same columns, checks and indexes).
CREATE TABLE IF NOT EXISTS zta_audit (
    -- Stored order (for reading back); per writer it follows `seq`.
    pos         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The hash chain: one per writer, seq from 1, prev_hash of seq 1 is 32 zero bytes.
    writer_id   text        NOT NULL,
    seq         bigint      NOT NULL CHECK (seq >= 1),
    prev_hash   bytea       NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash        bytea       NOT NULL CHECK (octet_length(hash) = 32),
    -- The record's JSON, exactly the bytes hashed.
    record      text        NOT NULL,
    -- Copies for queries (not hashed; NUL in text becomes U+FFFD here, never in `record`).
    -- The record id is also the request id shown to a denied caller.
    record_id   uuid        NOT NULL,
    time        timestamptz NOT NULL,
    event       text        NOT NULL,
    effect      text        NOT NULL,
    agent_id    text,
    action_kind text,
    action_name text,
    reason      text,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (writer_id, seq)
);
CREATE INDEX IF NOT EXISTS zta_audit_record_id ON zta_audit (record_id);
CREATE INDEX IF NOT EXISTS zta_audit_time ON zta_audit (time);
CREATE INDEX IF NOT EXISTS zta_audit_agent_time ON zta_audit (agent_id, time);
CREATE INDEX IF NOT EXISTS zta_audit_action_time ON zta_audit (action_kind, action_name, time);
CREATE INDEX IF NOT EXISTS zta_audit_effect_time ON zta_audit (effect, time);
