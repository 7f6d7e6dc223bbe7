//! `zta audit query`, `tail`, `verify` over the SQL sinks' stores: a SQLite file (`--sqlite`)
//! and a PostgreSQL table (`--postgres-env`, or the config's `type: postgres` sink with
//! `url_env`) answer every filter exactly as the JSON Lines log the same decisions went to,
//! follow new records, print hostile text escaped, and verify per writer (a tampered row exits
//! 1). A `--postgres` URL with a password is refused: it would stay in shell history.
//!
//! The PostgreSQL tests need the server in `ZTA_TEST_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`), and make a database of their own through it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{
    io::BufRead,
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::Value;
use sqlx::Connection;

use crate::common::deployment;

/// The variable that hands `zta` the PostgreSQL URL.
const PG_VAR: &str = "ZTA_CLI_TEST_AUDIT_PG_URL";

/// Runs `zta ARGS` in `dir` with `env`; the exit code, stdout and stderr.
pub(crate) fn run(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zta"))
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The deployment of `common`, its audit section replaced by `sinks` (list items).
pub(crate) fn deployment_with(dir: &Path, sinks: &str) {
    deployment(dir);
    let config = std::fs::read_to_string(dir.join("zta.yaml")).unwrap();
    let jsonl = "audit:\n  type: jsonl\n  dir: audit\n";
    assert!(config.contains(jsonl), "{config}");
    std::fs::write(dir.join("zta.yaml"), config.replace(jsonl, &format!("audit:\n{sinks}"))).unwrap();
    std::fs::write(dir.join("evil.json"), r#"{"action": {"kind": "tool_call", "name": "a\u001b[2Jb\nc"}}"#)
        .unwrap();
}

/// Three decisions (allowed, denied, a hostile tool name) by `writer_bot`.
fn decide(dir: &Path, env: &[(&str, &str)]) {
    for request in ["write.json", "shell.json", "evil.json"] {
        let args =
            ["authorize", "--config", "zta.yaml", "--credential-file", "writer.json", "--request", request];
        let (code, out, err) = run(&args, dir, env);
        assert!(code == 0 || code == 3, "{out}{err}");
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Every filter gives the same records from `store` (the flags naming a SQL store) as from the
/// JSON Lines log `audit`.
fn same_answers_as_the_log(dir: &Path, store: &[&str], env: &[(&str, &str)]) {
    let query = |source: &[&str], extra: &[&str]| {
        let mut args = vec!["audit", "query", "--format", "json"];
        args.extend_from_slice(source);
        args.extend_from_slice(extra);
        let (code, out, err) = run(&args, dir, env);
        assert_eq!(code, 0, "{args:?}: {err}");
        json_lines(&out)
    };
    let all = query(&["audit"], &[]);
    assert_eq!(all.len(), 3, "three decisions: {all:?}");
    let denied = query(&["audit"], &["--effect", "deny"]);
    let id = denied[0]["id"].as_str().unwrap().to_owned();
    let filters: [&[&str]; 11] = [
        &[],
        &["--effect", "deny", "--agent", "writer_bot"],
        &["--request-id", &id],
        &["--action", "write_document", "--event", "authorization"],
        &["--action", "shell"],
        &["--reason", "DENIED BY"],
        &["--since", "2999-01-01T00:00:00Z"],
        &["--until", "2999-01-01T00:00:00Z"],
        &["--since", "2000-01-01T00:00:00Z", "--event", "login"],
        &["--agent", "research_bot"],
        &["--limit", "2"],
    ];
    for f in filters {
        assert_eq!(query(store, f), query(&["audit"], f), "{store:?} {f:?}");
    }
    assert_eq!(query(store, &["--limit", "1"]), all[all.len() - 1..].to_vec(), "the latest");

    let mut args = vec!["audit", "query", "--event", "authorization"];
    args.extend_from_slice(store);
    let (code, table, _) = run(&args, dir, env);
    assert_eq!(code, 0);
    assert!(table.starts_with("TIME") && table.contains(&id), "{table}");
    assert!(!table.contains('\u{1b}'), "{table:?}");
    assert_eq!(table.lines().count(), 4, "the header and three rows: {table:?}");
    assert!(table.contains("a\\u{1b}[2Jb\\nc"), "{table:?}");
}

/// `zta audit tail --follow` on `store` prints the latest record, then a new one.
fn tail_follows(dir: &Path, store: &[&str], env: &[(&str, &str)]) {
    let mut args =
        vec!["audit", "tail", "--follow", "-n", "1", "--format", "json", "--event", "authorization"];
    args.extend_from_slice(store);
    let mut tail = Command::new(env!("CARGO_BIN_EXE_zta"))
        .args(&args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, seen) = mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let next =
        || serde_json::from_str::<Value>(&seen.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(next()["action"]["name"], "a\u{1b}[2Jb\nc", "the latest one first");
    let args =
        ["authorize", "--config", "zta.yaml", "--credential-file", "writer.json", "--request", "shell.json"];
    assert_eq!(run(&args, dir, env).0, 3);
    let new = next();
    assert_eq!((new["action"]["name"].as_str(), new["effect"].as_str()), (Some("shell"), Some("deny")));
    tail.kill().unwrap();
    tail.wait().unwrap();
}

#[test]
fn sqlite_file_answers_like_the_log_and_verifies_per_writer() {
    let dir = tempfile::tempdir().unwrap();
    deployment_with(
        dir.path(),
        "  - type: jsonl\n    dir: audit\n  - type: sqlite\n    path: audit.db\n    writer_id: cli-1\n",
    );
    decide(dir.path(), &[]);
    same_answers_as_the_log(dir.path(), &["--sqlite", "audit.db"], &[]);
    tail_follows(dir.path(), &["--sqlite", "audit.db"], &[]);

    let (code, out, err) = run(&["audit", "verify", "--sqlite", "audit.db"], dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("intact: 4 records from 1 writers") && out.contains("writer cli-1: 4 records"),
        "{out}"
    );
    // The config's sinks: the log (no checkpoint key: its tail is unprotected, exit 4) and
    // the file.
    let (code, out, _) = run(&["audit", "verify", "--config", "zta.yaml"], dir.path(), &[]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("SQLite file") && out.contains("writer cli-1"), "{out}");

    tamper_sqlite(&dir.path().join("audit.db"));
    let (code, _, err) = run(&["audit", "verify", "--sqlite", "audit.db"], dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("FAILED") && err.contains("writer `cli-1`, seq 2"), "{err}");
    let (code, _, err) = run(&["audit", "verify", "--config", "zta.yaml"], dir.path(), &[]);
    assert_eq!(code, 1, "the worst of the sinks: {err}");

    let (code, _, err) = run(&["audit", "query", "--sqlite", "missing.db"], dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = run(&["audit", "query", "audit", "--sqlite", "audit.db"], dir.path(), &[]);
    assert_eq!(code, 2, "two stores: {err}");
    let (code, _, err) = run(&["audit", "query", "--sqlite", "audit.db", "--table", "t"], dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
}

/// Changes the reason inside the stored record of seq 2.
fn tamper_sqlite(path: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        let changed = sqlx::query(
            "UPDATE zta_audit SET record = replace(record, '\"effect\":\"', '\"effect\": \"') WHERE seq = 2",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        assert_eq!(changed.rows_affected(), 1);
        conn.close().await.unwrap();
    });
}

/// A database of the test's own on the server in `ZTA_TEST_POSTGRES_URL`; its URL.
pub(crate) async fn new_database(name: &str) -> String {
    let admin = std::env::var("ZTA_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
        panic!(
            "this test needs PostgreSQL: set ZTA_TEST_POSTGRES_URL, e.g. \
             postgres://postgres@127.0.0.1:5432/test (`cargo xtask test` sets it)"
        )
    });
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at ZTA_TEST_POSTGRES_URL does not answer: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let (base, query) = admin.split_once('?').map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
    let (server, _) = base.rsplit_once('/').expect("the URL names a database");
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

pub(crate) async fn drop_database(name: &str) {
    let admin = std::env::var("ZTA_TEST_POSTGRES_URL").unwrap();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[test]
fn postgres_table_answers_like_the_log_and_verifies_per_writer() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let name = format!("zta_cli_test_{}", uuid::Uuid::new_v4().simple());
    let url = rt.block_on(new_database(&name));
    let env = [(PG_VAR, url.as_str())];
    let dir = tempfile::tempdir().unwrap();
    // The table first, so that `--config` reads it.
    deployment_with(
        dir.path(),
        &format!(
            "  - type: postgres\n    url_env: {PG_VAR}\n    table: cli_audit\n    writer_id: pg-1\n  \
             - type: jsonl\n    dir: audit\n"
        ),
    );
    decide(dir.path(), &env);
    let store = ["--postgres-env", PG_VAR, "--table", "cli_audit"];
    same_answers_as_the_log(dir.path(), &store, &env);
    same_answers_as_the_log(dir.path(), &["--config", "zta.yaml"], &env);
    tail_follows(dir.path(), &store, &env);

    let (code, out, err) =
        run(&["audit", "verify", "--postgres-env", PG_VAR, "--table", "cli_audit"], dir.path(), &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PostgreSQL table `cli_audit`: intact: 4 records from 1 writers"), "{out}");
    assert!(out.contains("writer pg-1: 4 records, head "), "{out}");
    let (code, out, _) =
        run(&["audit", "verify", "--postgres", &url, "--table", "cli_audit"], dir.path(), &[]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run(&["audit", "verify", "--config", "zta.yaml"], dir.path(), &env);
    assert_eq!(code, 4, "the log's tail is unprotected: {out}");
    assert!(out.contains("PostgreSQL table `cli_audit`: intact"), "{out}");

    // A password on the command line is refused, before anything is reached.
    let (code, _, err) =
        run(&["audit", "query", "--postgres", "postgres://zta:hunter2@127.0.0.1:1/x"], dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("PGPASSWORD") && !err.contains("hunter2"), "{err}");
    // A password from the environment never shows in an error.
    let bad = [(PG_VAR, "postgres://zta:hunter2@127.0.0.1:1/x")];
    let (code, _, err) = run(&["audit", "verify", "--postgres-env", PG_VAR], dir.path(), &bad);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("hunter2") && err.contains("127.0.0.1:1"), "{err}");
    let (code, _, err) = run(&["audit", "verify", "--config", "zta.yaml"], dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(PG_VAR), "an unset url_env is named: {err}");

    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(
            "UPDATE cli_audit SET record = replace(record, '\"effect\":\"', '\"effect\": \"') WHERE seq = 3",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    });
    let (code, _, err) =
        run(&["audit", "verify", "--postgres-env", PG_VAR, "--table", "cli_audit"], dir.path(), &env);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("writer `pg-1`, seq 3"), "{err}");
    rt.block_on(drop_database(&name));
}

/// `audit verify --config` verifies a `type: nats` sink's stream too (the NATS of
/// `ZTA_TEST_NATS_URL`, default `nats://127.0.0.1:4222`, a stream of the test's own), while
/// query reads the first sink it can query.
#[test]
fn config_verify_covers_a_nats_stream() {
    let url = std::env::var("ZTA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let name = format!("ZTA_TEST_CLI_{}", uuid::Uuid::new_v4().simple());
    let _cleanup = DeleteStream { url: url.clone(), name: name.clone() };
    let dir = tempfile::tempdir().unwrap();
    deployment_with(
        dir.path(),
        &format!(
            "  - type: nats\n    url: {url}\n    stream: {name}\n    subject_prefix: zta_test.{name}\n  \
             - type: jsonl\n    dir: audit\n"
        ),
    );
    decide(dir.path(), &[]);
    let (code, out, err) = run(&["audit", "verify", "--config", "zta.yaml"], dir.path(), &[]);
    assert_eq!(code, 4, "the log's tail is unprotected: {out}{err}");
    assert!(
        out.contains(&format!("NATS stream `{name}`: intact: 3 records from 3 writers")),
        "one writer per process: {out}"
    );
    let (code, out, _) =
        run(&["audit", "query", "--config", "zta.yaml", "--format", "json"], dir.path(), &[]);
    assert_eq!((code, out.lines().count()), (0, 3), "the log answers: {out}");
}

/// Deletes the test's stream when the test ends, passed or not.
struct DeleteStream {
    url: String,
    name: String,
}

impl Drop for DeleteStream {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            if let Ok(client) = async_nats::connect(self.url.as_str()).await {
                let _ = async_nats::jetstream::new(client).delete_stream(&self.name).await;
            }
        });
    }
}
