//! What several facade tests write and read: a fresh token signing key, and the audit
//! records of a JSON Lines log.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;

use zta::{
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey},
};

/// Writes a fresh EdDSA token signing key to `path` (PKCS#8 PEM).
pub(crate) fn write_signing_key(path: &Path) {
    let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
    std::fs::write(path, key.to_pkcs8_pem().expose_secret()).unwrap();
}

/// The records of every `.jsonl` file in the audit directory `dir`, in file order.
pub(crate) fn audit_records(dir: &Path) -> Vec<serde_json::Value> {
    let mut records = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(path).unwrap().lines() {
                records.push(serde_json::from_str::<serde_json::Value>(line).unwrap()["record"].clone());
            }
        }
    }
    records
}
