-- Checkpoint anchoring: the JSON Lines sink's signed checkpoints, published here so that a log
-- rolled back on its own disk shows (`zta audit verify --anchor`). Append-only: give the
-- sinks' role INSERT and SELECT on it, never UPDATE or DELETE. Several logs share the table;
-- a log is its `log_id` and the id of the key that signs its checkpoints.
CREATE TABLE IF NOT EXISTS zta_audit_anchor (
    -- The order entries were stored in: a seq going back in it is a rollback.
    pos         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_id      text        NOT NULL,
    key_id      text        NOT NULL,
    -- Copies of the checkpoint's fields, for queries; `checkpoint` is what is verified.
    seq         bigint      NOT NULL CHECK (seq >= 0),
    hash        text        NOT NULL,
    -- The checkpoint as the log wrote it: one line of JSON, signed.
    checkpoint  text        NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS zta_audit_anchor_log ON zta_audit_anchor (log_id, key_id, pos);
