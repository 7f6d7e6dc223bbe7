//! A signed checkpoint verifies with its key, and not with another key or after an edit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::fs;

use aws_lc_rs::{
    encoding::AsDer,
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair},
};
use base64::Engine as _;
use common::{config, write_records};
use zta_audit_jsonl::{CheckpointProblem, Error, JsonlSink, SignatureStatus, VerifyError, verify};

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let body: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", body.join("\n"))
}

/// A new key: (PKCS#8 PEM, raw public key, SubjectPublicKeyInfo PEM).
fn keypair() -> (String, Vec<u8>, String) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let spki = pair.public_key().as_der().unwrap();
    (
        pem("PRIVATE KEY", pkcs8.as_ref()),
        pair.public_key().as_ref().to_vec(),
        pem("PUBLIC KEY", spki.as_ref()),
    )
}

fn checkpoint_err(r: Result<zta_audit_jsonl::VerifyReport, VerifyError>) -> CheckpointProblem {
    match r {
        Err(VerifyError::Checkpoint { problem, .. }) => problem,
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}

#[tokio::test]
async fn signed_checkpoints() {
    let keys = tempfile::tempdir().unwrap();
    let (private_pem, public_raw, public_pem) = keypair();
    let key_file = keys.path().join("checkpoint.pem");
    fs::write(&key_file, &private_pem).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.checkpoint_key_file = Some(key_file);
    write_records(c, 0, 25).await;

    // The right key, in every accepted form.
    for key in [&public_raw[..], public_pem.as_bytes(), private_pem.as_bytes()] {
        let report = verify(dir.path(), Some(key)).unwrap();
        assert!(matches!(report.signature, SignatureStatus::Verified { .. }), "{report:?}");
        assert_eq!(report.checkpoint_seq, 25);
    }
    // No key: reported as signed but unchecked.
    assert!(matches!(verify(dir.path(), None).unwrap().signature, SignatureStatus::NotChecked { .. }));

    // Another key.
    let (_, other_raw, _) = keypair();
    assert!(matches!(
        checkpoint_err(verify(dir.path(), Some(&other_raw))),
        CheckpointProblem::WrongKey { .. }
    ));

    // An edited checkpoint (its time moved) no longer verifies.
    let cp_path = dir.path().join("checkpoint.json");
    let original = fs::read_to_string(&cp_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    v["time"] = "2000-01-01T00:00:00Z".into();
    fs::write(&cp_path, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(checkpoint_err(verify(dir.path(), Some(&public_raw))), CheckpointProblem::BadSignature);
    let err = verify(dir.path(), Some(&public_raw)).unwrap_err().to_string();
    assert!(err.contains("signature that does not verify"), "{err}");

    // A stripped signature is refused when a key is given.
    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("signature");
    obj.remove("key_id");
    fs::write(&cp_path, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(checkpoint_err(verify(dir.path(), Some(&public_raw))), CheckpointProblem::Unsigned);

    // The original verifies again.
    fs::write(&cp_path, &original).unwrap();
    verify(dir.path(), Some(&public_raw)).unwrap();

    // A bad key is a clear error.
    assert!(matches!(verify(dir.path(), Some(b"not a key")), Err(VerifyError::BadKey(_))));
}

#[test]
fn an_unusable_key_file_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("k.pem");
    fs::write(&key_file, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    let mut c = config(&dir.path().join("log"));
    c.checkpoint_key_file = Some(key_file);
    let err = JsonlSink::open(c).unwrap_err();
    assert!(matches!(err, Error::Key { .. }), "{err}");
}
