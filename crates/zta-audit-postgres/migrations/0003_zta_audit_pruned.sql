-- Retention: per table and writer, the signed "pruned up to" marker left when the writer's
-- oldest rows are deleted (`zta audit prune`): the last deleted row's seq and hash, signed with
-- the audit checkpoint key. Verification starts the writer's chain after it.
CREATE TABLE IF NOT EXISTS zta_audit_pruned (
    audit_table text        NOT NULL,
    writer_id   text        NOT NULL,
    seq         bigint      NOT NULL CHECK (seq >= 1),
    hash        bytea       NOT NULL CHECK (octet_length(hash) = 32),
    key_id      text        NOT NULL,
    signature   bytea       NOT NULL,
    pruned_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (audit_table, writer_id)
);
