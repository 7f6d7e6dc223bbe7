//! `zta audit verify` of a JSON Lines log against the store its sink anchors checkpoints in:
//! from the config's `anchor:`, or from flags (`--anchor URL` or `--anchor-env VAR`, with
//! `--log-id`, `--anchor-table`, `--anchor-stream`). An intact log passes; a log put back to
//! an older copy fails and says it was cut; a wrong log id vouches for nothing; and every
//! misuse of the flags is a usage error (exit 2) that says what to give instead.
//!
//! Needs the PostgreSQL of `ZTA_TEST_POSTGRES_URL` (a fresh table in it) and the NATS of
//! `ZTA_TEST_NATS_URL` (default `nats://127.0.0.1:4222`, a fresh stream).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use crate::audit_sql_stores_query_tail_and_verify::{deployment_with, run};

/// The variable that hands `zta` the anchor's PostgreSQL URL.
const ANCHOR_VAR: &str = "ZTA_CLI_TEST_ANCHOR_PG_URL";

fn postgres_url() -> String {
    std::env::var("ZTA_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
        panic!(
            "this test needs PostgreSQL: set ZTA_TEST_POSTGRES_URL, e.g. \
             postgres://postgres@127.0.0.1:5432/test (`cargo xtask test` sets it)"
        )
    })
}

/// A checkpoint key in `dir/ck`.
fn checkpoint_key(dir: &Path) {
    let (private, public) = zta::audit::jsonl::generate_checkpoint_key().unwrap();
    std::fs::create_dir_all(dir.join("ck")).unwrap();
    std::fs::write(dir.join("ck/audit-checkpoint.pem"), private.as_bytes()).unwrap();
    std::fs::write(dir.join("ck/audit-checkpoint.pub.pem"), public).unwrap();
}

/// `zta authorize` of `request` (each run opens the log, appends, publishes and closes).
fn decide(dir: &Path, env: &[(&str, &str)], request: &str) {
    let args =
        ["authorize", "--config", "zta.yaml", "--credential-file", "writer.json", "--request", request];
    let (code, out, err) = run(&args, dir, env);
    assert!(code == 0 || code == 3, "{out}{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_postgres_anchor_passes_an_intact_log_and_names_a_cut_one() {
    let url = postgres_url();
    let table = format!("zta_cli_anchor_{}", uuid::Uuid::new_v4().simple());
    let env = [(ANCHOR_VAR, url.as_str())];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    deployment_with(
        dir,
        &format!(
            "  type: jsonl\n  dir: audit\n  flush_interval: 0s\n  checkpoint_key_file: ck/audit-checkpoint.pem\n  \
             anchor:\n    log_id: cli-1\n    interval: 0s\n    postgres: {{url_env: {ANCHOR_VAR}, table: {table}}}\n"
        ),
    );
    checkpoint_key(dir);
    decide(dir, &env, "write.json");
    copy_dir(&dir.join("audit"), &dir.join("older"));
    decide(dir, &env, "shell.json");
    decide(dir, &env, "write.json");

    // From the config: its log, key and anchor.
    let (code, out, err) = run(&["audit", "verify", "--config", "zta.yaml"], dir, &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("intact") && out.contains("matches the anchor's newest checkpoint"), "{out}");
    // From flags.
    let flags = [
        "audit",
        "verify",
        "audit",
        "--anchor-env",
        ANCHOR_VAR,
        "--anchor-table",
        &table,
        "--log-id",
        "cli-1",
        "--public-key",
        "ck/audit-checkpoint.pub.pem",
    ];
    let (code, out, err) = run(&flags, dir, &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("PostgreSQL table `{table}`")), "{out}");

    // Another log id has nothing in the store: refused, not "ok".
    let mut other = flags;
    other[8] = "cli-2";
    let (code, _, err) = run(&other, dir, &env);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("holds no checkpoint of this log"), "{err}");

    // The older copy put back: its own signature verifies, the anchor says it was cut.
    std::fs::remove_dir_all(dir.join("audit")).unwrap();
    copy_dir(&dir.join("older"), &dir.join("audit"));
    let (code, _, _) =
        run(&["audit", "verify", "audit", "--public-key", "ck/audit-checkpoint.pub.pem"], dir, &[]);
    assert_eq!(code, 0, "without the anchor the copy looks intact");
    let (code, out, err) = run(&flags, dir, &env);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("FAILED") && err.contains("rolled back or cut"), "{err}");
    assert!(err.contains("records were cut from the end") && err.contains("log `cli-1`"), "{err}");
    let (code, _, err) = run(&["audit", "verify", "--config", "zta.yaml"], dir, &env);
    assert_eq!(code, 1, "{err}");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(&format!("DROP TABLE {table}")).execute(&pool).await.unwrap();
    });
}

#[test]
fn a_nats_anchor_is_read_by_url_and_stream() {
    let url = std::env::var("ZTA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let id = uuid::Uuid::new_v4().simple().to_string();
    let stream = format!("ZTA_CLI_ANCHOR_{id}");
    let prefix = format!("zta_cli_anchor.{id}");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    deployment_with(
        dir,
        &format!(
            "  type: jsonl\n  dir: audit\n  flush_interval: 0s\n  checkpoint_key_file: ck/audit-checkpoint.pem\n  \
             anchor:\n    log_id: cli-n\n    interval: 0s\n    nats: {{url: \"{url}\", stream: {stream}, subject_prefix: {prefix}}}\n"
        ),
    );
    checkpoint_key(dir);
    decide(dir, &[], "write.json");
    decide(dir, &[], "shell.json");
    let flags = [
        "audit",
        "verify",
        "audit",
        "--anchor",
        &url,
        "--anchor-stream",
        &stream,
        "--anchor-subject-prefix",
        &prefix,
        "--log-id",
        "cli-n",
        "--public-key",
        "ck/audit-checkpoint.pub.pem",
    ];
    let (code, out, err) = run(&flags, dir, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("NATS stream `{stream}`")) && out.contains("intact"), "{out}");
    let (code, out, err) = run(&["audit", "verify", "--config", "zta.yaml"], dir, &[]);
    assert_eq!(code, 0, "{out}{err}");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let context = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
        context.delete_stream(&stream).await.unwrap();
    });
}

/// Flags, environment, and what the error says.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn anchor_flags_that_do_not_fit_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("audit")).unwrap();
    let cases: &[Case<'_>] = &[
        (&["--anchor", "postgres://zta:hunter2@127.0.0.1/zta", "--log-id", "a"], &[], "holds a password"),
        (&["--anchor-env", "ZTA_CLI_TEST_SURELY_UNSET", "--log-id", "a"], &[], "is not set"),
        (
            &["--anchor-env", "ZTA_CLI_TEST_ANCHOR_NOT_A_URL", "--log-id", "a"],
            &[("ZTA_CLI_TEST_ANCHOR_NOT_A_URL", "/tmp/x")],
            "no postgres:// or nats:// URL",
        ),
        (&["--anchor", "postgres://zta@127.0.0.1:1/zta"], &[], "give --log-id"),
        (&["--anchor", "postgres://zta@127.0.0.1:1/zta", "--log-id", "a"], &[], "public key"),
        (&["--anchor", "anchor.jsonl", "--log-id", "a"], &[], "go with an anchor store"),
        (&["--anchor-table", "t"], &[], "go with an anchor store"),
        (
            &["--anchor", "nats://127.0.0.1:1", "--anchor-table", "t", "--log-id", "a"],
            &[],
            "names a PostgreSQL table",
        ),
        (
            &["--anchor", "postgres://zta@127.0.0.1:1/zta", "--anchor-stream", "S", "--log-id", "a"],
            &[],
            "name a NATS stream",
        ),
        (
            &["--anchor", "postgres://zta@127.0.0.1:1/zta", "--anchor-table", "Bad-Name", "--log-id", "a"],
            &[],
            "table `Bad-Name`",
        ),
        (&["--anchor", "x", "--anchor-env", "Y"], &[], "cannot be used with"),
    ];
    // The anchor flags check a JSON Lines log: not a NATS audit stream, nor a SQL store.
    let (code, _, err) = run(&["audit", "verify", "--nats", "nats://127.0.0.1:1", "--log-id", "a"], dir, &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["audit", "verify", "--sqlite", "a.db", "--anchor", "anchor.jsonl"], dir, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--anchor checks a JSON Lines log"), "{err}");
    for (flags, env, says) in cases {
        let mut args = vec!["audit", "verify", "audit"];
        args.extend_from_slice(flags);
        let (code, out, err) = run(&args, dir, env);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?} should say `{says}`: {err}");
        assert!(!err.contains("hunter2"), "the password is never printed: {err}");
    }
    // With a key and an unreachable store, the anchor cannot be read: verification fails
    // (exit 1) and says so.
    let (_, public) = zta::audit::jsonl::generate_checkpoint_key().unwrap();
    std::fs::write(dir.join("k.pem"), public).unwrap();
    let args = [
        "audit",
        "verify",
        "audit",
        "--anchor",
        "postgres://zta@127.0.0.1:1/zta",
        "--log-id",
        "a",
        "--public-key",
        "k.pem",
    ];
    let (code, out, err) = run(&args, dir, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("cannot be read"), "{err}");
}
