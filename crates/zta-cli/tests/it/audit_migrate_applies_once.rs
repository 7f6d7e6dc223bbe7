//! `zta audit migrate` applies the embedded migrations of a SQLite file or PostgreSQL table
//! (the flags' store, or every SQL sink of `--config`), says what it applied and made, and
//! changes nothing when run again; the store it made verifies (empty).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::audit_sql_stores_query_tail_and_verify::{deployment_with, drop_database, new_database, run};

const APPLIED: &str =
    "applied migration 1 (zta audit), 2 (zta audit action name index), 3 (zta audit pruned markers)";
/// PostgreSQL has one more: the checkpoint anchor table.
const APPLIED_PG: &str = "applied migration 1 (zta audit), 2 (zta audit action name index), 3 (zta audit pruned markers), \
     4 (zta audit checkpoint anchor)";

#[test]
fn sqlite_file_is_made_and_migrated_once() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&["audit", "migrate", "--sqlite", "new.db"], dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(APPLIED) && out.contains("made file") && out.contains("schema version 3"), "{out}");
    let (code, out, _) = run(&["audit", "migrate", "--sqlite", "new.db"], dir.path(), &[]);
    assert_eq!(code, 0);
    assert_eq!(out, "SQLite file `new.db`: up to date; schema version 3\n");
    let (code, out, _) = run(&["audit", "verify", "--sqlite", "new.db"], dir.path(), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact: 0 records"), "{out}");

    // A config without a SQL sink has nothing to migrate.
    deployment_with(dir.path(), "  type: jsonl\n  dir: audit\n");
    let (code, _, err) = run(&["audit", "migrate", "--config", "zta.yaml"], dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no `postgres` or `sqlite` sink"), "{err}");
    let (code, _, err) = run(&["audit", "migrate"], dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn postgres_table_and_the_configs_sinks_are_migrated_once() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let name = format!("zta_cli_test_{}", uuid::Uuid::new_v4().simple());
    let url = rt.block_on(new_database(&name));
    let env = [("ZTA_CLI_TEST_MIGRATE_PG_URL", url.as_str())];
    let dir = tempfile::tempdir().unwrap();
    let flags = ["audit", "migrate", "--postgres-env", "ZTA_CLI_TEST_MIGRATE_PG_URL", "--table", "t1"];
    let (code, out, err) = run(&flags, dir.path(), &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("PostgreSQL table `t1`: {APPLIED_PG}; made table `t1`; schema version 4\n"));
    let (code, out, _) = run(&flags, dir.path(), &env);
    assert_eq!(code, 0);
    assert_eq!(out, "PostgreSQL table `t1`: up to date; schema version 4\n");

    deployment_with(
        dir.path(),
        "  - type: postgres\n    url_env: ZTA_CLI_TEST_MIGRATE_PG_URL\n    table: t2\n  \
         - type: jsonl\n    dir: audit\n  - type: sqlite\n    path: audit.db\n",
    );
    let (code, out, err) = run(&["audit", "migrate", "--config", "zta.yaml"], dir.path(), &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("PostgreSQL table `t2`: made table `t2`; schema version 4"), "{out}");
    assert!(out.contains(APPLIED) && out.contains("SQLite file"), "{out}");
    let (code, out, _) = run(&["audit", "migrate", "--config", "zta.yaml"], dir.path(), &env);
    assert_eq!(code, 0);
    assert_eq!(out.matches("up to date").count(), 2, "{out}");
    rt.block_on(drop_database(&name));
}
