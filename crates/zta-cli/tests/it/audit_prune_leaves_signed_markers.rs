//! `zta audit prune --older-than AGE` deletes a SQLite file's or PostgreSQL table's old
//! records (each writer keeps its last row) and leaves per writer a "pruned up to" marker
//! signed with the audit checkpoint key: `audit verify` with the public key passes and says so,
//! without it exits 4 (the markers unchecked), and a changed marker exits 1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use sqlx::Connection;

use crate::audit_sql_stores_query_tail_and_verify::{deployment_with, drop_database, new_database, run};

/// Three decisions by writer_bot, written to the deployment's sinks.
fn decide(dir: &Path, env: &[(&str, &str)]) {
    for request in ["write.json", "shell.json", "write.json"] {
        let args =
            ["authorize", "--config", "zta.yaml", "--credential-file", "writer.json", "--request", request];
        let (code, out, err) = run(&args, dir, env);
        assert!(code == 0 || code == 3, "{out}{err}");
    }
}

/// Prunes `store`, checks verification with and without the key, then changes the marker with
/// `tamper` and checks that verification fails.
fn prune_then_verify(dir: &Path, store: &[&str], env: &[(&str, &str)], writer: &str, tamper: impl FnOnce()) {
    let with = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(store);
        run(&all, dir, env)
    };
    let (code, out, err) =
        with(&["audit", "prune", "--older-than", "30d", "--key", "ckeys/audit-checkpoint.pem"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("nothing recorded before"), "{out}");
    let (code, _, err) = with(&["audit", "prune", "--older-than", "0s"]);
    assert_eq!(code, 2, "no key: {err}");
    let (code, out, err) =
        with(&["audit", "prune", "--older-than", "0s", "--key", "ckeys/audit-checkpoint.pem"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("writer {writer}: 2 records before")) && out.contains("pruned up to seq 2"),
        "{out}"
    );

    let (code, out, _) = with(&["audit", "query", "--format", "json"]);
    assert_eq!((code, out.lines().count()), (0, 1), "the last record stays: {out}");
    let (code, out, _) = with(&["audit", "verify"]);
    assert_eq!(code, 4, "the marker is not checked without the key: {out}");
    assert!(out.contains("pruned up to seq 2 (marker NOT checked"), "{out}");
    let (code, out, err) = with(&["audit", "verify", "--public-key", "ckeys/audit-checkpoint.pub.pem"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("writer {writer}: 1 records")) && out.contains("(marker signature verified)"),
        "{out}"
    );

    tamper();
    let (code, _, err) = with(&["audit", "verify", "--public-key", "ckeys/audit-checkpoint.pub.pem"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("writer `{writer}`")) && err.contains("signature does not verify"),
        "{err}"
    );
}

fn keys(dir: &Path) {
    let (code, out, err) = run(&["keygen", "--out", "ckeys", "--checkpoint"], dir, &[]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn sqlite_prune_leaves_a_signed_marker() {
    let dir = tempfile::tempdir().unwrap();
    deployment_with(
        dir.path(),
        "  - type: jsonl\n    dir: audit\n  - type: sqlite\n    path: audit.db\n    writer_id: cli-1\n",
    );
    keys(dir.path());
    decide(dir.path(), &[]);
    let db = dir.path().join("audit.db");
    prune_then_verify(dir.path(), &["--sqlite", "audit.db"], &[], "cli-1", || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut conn =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
            sqlx::query("UPDATE zta_audit_pruned SET seq = 1").execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        });
    });
}

#[test]
fn postgres_prune_leaves_a_signed_marker() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let name = format!("zta_cli_test_{}", uuid::Uuid::new_v4().simple());
    let url = rt.block_on(new_database(&name));
    let env = [("ZTA_CLI_TEST_PRUNE_PG_URL", url.as_str())];
    let dir = tempfile::tempdir().unwrap();
    deployment_with(
        dir.path(),
        "  - type: postgres\n    url_env: ZTA_CLI_TEST_PRUNE_PG_URL\n    writer_id: pg-1\n  \
         - type: jsonl\n    dir: audit\n",
    );
    keys(dir.path());
    decide(dir.path(), &env);
    prune_then_verify(dir.path(), &["--postgres-env", "ZTA_CLI_TEST_PRUNE_PG_URL"], &env, "pg-1", || {
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query("UPDATE zta_audit_pruned SET hash = sha256(hash)").execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        });
    });
    rt.block_on(drop_database(&name));
}
