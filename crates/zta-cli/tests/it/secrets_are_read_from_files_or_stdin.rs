//! Tokens and credentials never travel as arguments (shell history, `/proc/*/cmdline`): `zta
//! token inspect` refuses the token as an argument and reads it from `--token-file` or standard
//! input; credential files can be standard input too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::path::Path;

use common::{SECRET, deployment, zta, zta_stdin};

fn password_credential() -> String {
    serde_json::json!({ "username": "writer_bot", "password": SECRET }).to_string()
}

/// Logs in with a credential file and returns the access token.
fn access_token(dir: &Path) -> String {
    std::fs::write(dir.join("writer.json"), password_credential()).unwrap();
    let (code, out, err) =
        zta(&["token", "issue", "--config", "zta.yaml", "--credential-file", "writer.json"], dir);
    assert_eq!(code, 0, "{out}{err}");
    let tokens: serde_json::Value = serde_json::from_str(&out).unwrap();
    tokens["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn token_inspect_refuses_the_token_as_an_argument() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    let token = access_token(dir.path());

    // The old form: the token itself on the command line is a usage error, and nothing is shown.
    let (code, out, err) = zta(&["token", "inspect", &token, "--config", "zta.yaml"], dir.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("unexpected argument"), "{err}");
    assert!(out.is_empty(), "{out}");
    let (code, _, err) = zta(&["token", "inspect", "--token", &token], dir.path());
    assert_eq!(code, 2, "{err}");
}

#[test]
fn token_inspect_reads_the_token_from_a_file_or_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    let token = access_token(dir.path());
    std::fs::write(dir.path().join("access.jwt"), format!("{token}\n")).unwrap();

    let (code, out, err) =
        zta(&["token", "inspect", "--token-file", "access.jwt", "--config", "zta.yaml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["verified"], true);
    assert_eq!(shown["claims"]["sub"], "writer_bot");

    let (code, out, err) =
        zta_stdin(&["token", "inspect", "--token-file", "-", "--config", "zta.yaml"], dir.path(), &token);
    assert_eq!(code, 0, "{out}{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["verified"], true);
    assert_eq!(shown["claims"]["sub"], "writer_bot");

    // Without --config it only decodes.
    let (code, out, err) = zta_stdin(&["token", "inspect", "--token-file", "-"], dir.path(), &token);
    assert_eq!(code, 0, "{out}{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["verified"], false);
    assert_eq!(shown["header"]["typ"], "zta-at+jwt");

    let (code, _, err) = zta(&["token", "inspect", "--token-file", "missing.jwt"], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot read `missing.jwt`"), "{err}");
}

#[test]
fn authorize_reads_the_credential_from_standard_input_or_the_token_issue_output() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path());
    let (code, out, err) = zta_stdin(
        &["authorize", "--config", "zta.yaml", "--credential-file", "-", "--request", "write.json"],
        dir.path(),
        &password_credential(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let decision: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decision["effect"], "allow");
    assert_eq!(decision["agent_id"], "writer_bot");

    // What `zta token issue` prints is a credential file: its access token is the bearer.
    let (code, issued, err) = zta_stdin(
        &["token", "issue", "--config", "zta.yaml", "--credential-file", "-"],
        dir.path(),
        &password_credential(),
    );
    assert_eq!(code, 0, "{issued}{err}");
    std::fs::write(dir.path().join("tokens.json"), &issued).unwrap();
    let (code, out, err) = zta(
        &["authorize", "--config", "zta.yaml", "--credential-file", "tokens.json", "--request", "write.json"],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let decision: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decision["effect"], "allow");
}
