//! `zta credential assertion` signs an assertion with a key from `zta keygen --agent` and
//! `zta credential hash-secret` hashes a secret from standard input: what they print is what
//! `zta token issue` and the config read, and they refuse what the provider would refuse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::path::Path;

use common::{write_config, zta, zta_stdin};

/// A deployment in `dir`: `research_bot` with a key from keygen, `writer_bot` with
/// `secret_hash` (if given), assertions limited to `max_lifetime`.
fn deployment(dir: &Path, secret_hash: Option<&str>, max_lifetime: &str) {
    if !dir.join("keys").exists() {
        let (code, out, err) = zta(&["keygen", "--out", "keys", "--agent", "research_bot"], dir);
        assert_eq!(code, 0, "{out}{err}");
    }
    let writer = secret_hash
        .map(|hash| format!("      - {{id: writer_bot, segment: writing, secret_hash: '{hash}'}}\n"))
        .unwrap_or_default();
    let identity = format!(
        "    assertion: {{max_lifetime: {max_lifetime}}}
    agents:
      - {{id: research_bot, segment: research, public_key_file: keys/research_bot.pub.pem}}
{writer}"
    );
    write_config(dir, &identity, "");
}

/// `zta token issue` with `credential` (a credential file's text) on standard input.
fn login(dir: &Path, credential: &str) -> (i32, String, String) {
    zta_stdin(&["token", "issue", "--config", "zta.yaml", "--credential-file", "-"], dir, credential)
}

fn claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn assertion_from_a_keygen_key_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path(), None, "60s");
    let assertion = |extra: &[&str]| {
        let mut args =
            vec!["credential", "assertion", "--key", "keys/research_bot.pem", "--agent", "research_bot"];
        args.extend_from_slice(extra);
        zta(&args, dir.path())
    };

    // The audience comes from the config; the default lifetime is 60 s.
    let (code, out, err) = assertion(&["--config", "zta.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    let file: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(file.as_object().unwrap().len(), 1, "{out}");
    let jwt = file["assertion"].as_str().unwrap();
    let c = claims(jwt);
    assert_eq!((c["iss"].as_str(), c["sub"].as_str()), (Some("research_bot"), Some("research_bot")));
    assert_eq!(c["aud"], "https://zta.test");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 60);
    let (code, tokens, err) = login(dir.path(), &out);
    assert_eq!(code, 0, "{tokens}{err}");
    assert!(tokens.contains("access_token"), "{tokens}");

    // Without a config the audience is given; a shorter ttl is honoured.
    let (code, out, err) = assertion(&["--audience", "https://zta.test", "--ttl", "30s"]);
    assert_eq!(code, 0, "{out}{err}");
    let jwt: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = claims(jwt["assertion"].as_str().unwrap());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 30);
    let (code, tokens, err) = login(dir.path(), &out);
    assert_eq!(code, 0, "{tokens}{err}");

    // The key can come from standard input.
    let pem = std::fs::read_to_string(dir.path().join("keys/research_bot.pem")).unwrap();
    let (code, out, err) = zta_stdin(
        &["credential", "assertion", "--key", "-", "--agent", "research_bot", "--config", "zta.yaml"],
        dir.path(),
        &pem,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(login(dir.path(), &out).0, 0);
}

#[test]
fn assertion_refuses_what_the_provider_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    deployment(dir.path(), Some(&zta::identity::static_agents::hash_secret("s3cret").unwrap()), "30s");
    let assertion = |extra: &[&str]| {
        let mut args = vec!["credential", "assertion", "--key", "keys/research_bot.pem"];
        args.extend_from_slice(extra);
        zta(&args, dir.path())
    };
    let usage = |extra: &[&str], expected: &str| {
        let (code, out, err) = assertion(extra);
        assert_eq!(code, 2, "{extra:?}: {out}{err}");
        assert!(out.is_empty(), "{extra:?}: {out}");
        assert!(err.contains(expected), "{extra:?}: {err}");
    };
    usage(&["--agent", "research_bot"], "`--audience` is required without `--config`");
    usage(&["--agent", "research_bot", "--config", "zta.yaml", "--ttl", "31s"], "longer than the 30s");
    usage(&["--agent", "research_bot", "--audience", "a", "--ttl", "2h"], "longer than the 1h");
    usage(&["--agent", "research_bot", "--audience", "a", "--ttl", "1500ms"], "whole number of seconds");
    usage(&["--agent", "research_bot", "--audience", "a", "--ttl", "0s"], "at least `1s`");
    usage(&["--agent", "research_bot", "--config", "zta.yaml", "--audience", "https://other"], "differs");
    usage(&["--agent", "analysis_bot", "--config", "zta.yaml"], "no static identity agent `analysis_bot`");
    usage(&["--agent", "writer_bot", "--config", "zta.yaml"], "logs in with a secret");
    usage(&["--agent", "not an id", "--audience", "a"], "agent `not an id`");
    let (code, _, err) = zta(
        &[
            "credential",
            "assertion",
            "--key",
            "keys/research_bot.pub.pem",
            "--agent",
            "research_bot",
            "--audience",
            "a",
        ],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("PRIVATE KEY"), "{err}");

    // Within the config's limit the default follows it (30 s here), and logs in.
    let (code, out, err) = assertion(&["--agent", "research_bot", "--config", "zta.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    let jwt: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = claims(jwt["assertion"].as_str().unwrap());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 30);
    assert_eq!(login(dir.path(), &out).0, 0);
}

#[test]
fn hash_secret_makes_a_config_hash_the_secret_logs_in_with() {
    let dir = tempfile::tempdir().unwrap();
    // One trailing newline (what `echo` and an editor add) is not part of the secret.
    let (code, hash, err) = zta_stdin(&["credential", "hash-secret"], dir.path(), "s3cret\n");
    assert_eq!(code, 0, "{hash}{err}");
    let hash = hash.trim_end();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert!(!hash.contains('\n'));
    deployment(dir.path(), Some(hash), "60s");
    let password = |p: &str| serde_json::json!({"username": "writer_bot", "password": p}).to_string();
    let (code, out, err) = login(dir.path(), &password("s3cret"));
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, _) = login(dir.path(), &password("s3cret\n"));
    assert_eq!(code, 3);

    // Only one newline is dropped: the rest belongs to the secret.
    let (code, hash, err) = zta_stdin(&["credential", "hash-secret"], dir.path(), " two words \n\n");
    assert_eq!(code, 0, "{hash}{err}");
    deployment(dir.path(), Some(hash.trim_end()), "60s");
    assert_eq!(login(dir.path(), &password(" two words \n")).0, 0);
    assert_eq!(login(dir.path(), &password(" two words ")).0, 3);

    for empty in ["", "\n", "\r\n"] {
        let (code, out, err) = zta_stdin(&["credential", "hash-secret"], dir.path(), empty);
        assert_eq!(code, 2, "{empty:?}: {out}{err}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("empty"), "{err}");
    }
    // A secret no login would accept (the guard refuses credentials over 8 KiB) is refused.
    let long = "x".repeat(zta::MAX_CREDENTIAL_LEN + 1);
    let (code, out, err) = zta_stdin(&["credential", "hash-secret"], dir.path(), &long);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("longer than"), "{err}");
    // The secret is never an argument.
    let (code, _, _) = zta(&["credential", "hash-secret", "s3cret"], dir.path());
    assert_eq!(code, 2);
}
