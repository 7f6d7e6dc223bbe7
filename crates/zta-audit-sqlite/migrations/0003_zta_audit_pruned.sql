-- Retention: per writer, the signed "pruned up to" marker left when its oldest rows are
-- deleted (`zta audit prune`): the last deleted row's seq and hash, signed with the audit
-- checkpoint key. Verification starts the writer's chain after it.
CREATE TABLE IF NOT EXISTS zta_audit_pruned (
    writer_id   TEXT    PRIMARY KEY,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    hash        BLOB    NOT NULL CHECK (length(hash) = 32),
    key_id      TEXT    NOT NULL,
    signature   BLOB    NOT NULL,
    pruned_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
