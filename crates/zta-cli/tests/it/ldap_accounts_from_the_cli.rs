//! `zta check` and `zta authorize` with the `type: ldap` identity of examples/ldap-agents,
//! against the local test directory (`cargo xtask services`): a directory account's password
//! in a credential file is bound at the directory, its groups decide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;

use crate::common::zta;

const CONFIG: &str = include_str!("../../../../examples/ldap-agents/zta.yaml");
const POLICY: &str = include_str!("../../../../examples/policies/crew.yaml");

fn ldap_dir() -> PathBuf {
    let dir = std::env::var_os("ZTA_TEST_LDAP_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/zta-services/ldap"),
        PathBuf::from,
    );
    assert!(
        dir.join("ca.pem").exists(),
        "no LDAP test directory at {}; run `cargo xtask services`",
        dir.display()
    );
    dir
}

#[test]
fn directory_passwords_are_checked_and_authorized_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    assert_eq!(zta(&["keygen", "--out", "keys"], path).0, 0);
    std::fs::write(path.join("crew.yaml"), POLICY).unwrap();
    std::fs::copy(ldap_dir().join("ca.pem"), path.join("ldap-ca.pem")).unwrap();
    std::fs::write(path.join("zta.yaml"), CONFIG.replace("../policies/crew.yaml", "crew.yaml")).unwrap();

    // Without the service account's password the config is refused, naming what is missing.
    let (code, out, err) = zta(&["check", "--config", "zta.yaml"], path);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("ldap-bind.secret"), "{err}");
    std::fs::write(path.join("ldap-bind.secret"), "gateway-test-secret\n").unwrap();
    let (code, out, err) = zta(&["check", "--config", "zta.yaml"], path);
    assert_eq!(code, 0, "{out}{err}");

    let write = |name: &str, text: &str| std::fs::write(path.join(name), text).unwrap();
    write("research.json", r#"{"username": "research_bot", "password": "research-secret"}"#);
    write("guess.json", r#"{"username": "research_bot", "password": "guess"}"#);
    write("injected.json", r#"{"username": "*)(uid=*", "password": "research-secret"}"#);
    write("search.json", r#"{"action": {"kind": "tool_call", "name": "web_search"}}"#);
    write("python.json", r#"{"action": {"kind": "tool_call", "name": "run_python"}}"#);
    let authorize = |credential: &str, request: &str| {
        zta(
            &["authorize", "--config", "zta.yaml", "--credential-file", credential, "--request", request],
            path,
        )
    };
    let (code, out, err) = authorize("research.json", "search.json");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("research_bot"), "{out}");
    let (code, out, err) = authorize("research.json", "python.json");
    assert_eq!(code, 3, "{out}{err}");
    for refused in ["guess.json", "injected.json"] {
        let (code, out, err) = authorize(refused, "search.json");
        assert_eq!(code, 3, "{refused}: {out}{err}");
        assert!(out.contains("unauthenticated") || out.contains("invalid credential"), "{refused}: {out}");
        assert!(!out.contains("research-secret"), "{out}");
    }
}
