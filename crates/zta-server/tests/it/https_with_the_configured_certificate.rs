//! `server.tls`: the service speaks HTTPS with the configured certificate (made here by the
//! `openssl` command: a test CA and a certificate for 127.0.0.1 it signed); a client that
//! trusts the CA is answered, one that does not is refused, plain HTTP gets no answer, and
//! unusable files are errors that name the file.

use std::path::Path;

use serde_json::json;
use zta_server::{ServerConfig, TlsConfig};

use crate::common::{Service, answer};

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("this test makes its certificates with the `openssl` command: {e}"));
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1 it signed (`cert.pem`, `key.pem`).
pub(crate) fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"],
            &ec[..],
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=zta test CA"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[&["req"], &ec[..], &["-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]]
            .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-extfile",
            "server.ext",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_speaks_https_with_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let mut config = ServerConfig::default();
    config.tls = Some(TlsConfig::new(dir.path().join("cert.pem"), dir.path().join("key.pem")));
    let s = Service::start(config).await;
    assert!(s.url.starts_with("https://"), "{}", s.url);

    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("ca.pem")).unwrap()).unwrap();
    let trusting = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    let body = json!({
        "subject": {"type": "agent", "properties": {"credential": s.assertion_json("research_bot")}},
        "action": {"name": "call_tool"},
        "resource": {"type": "tool", "id": "web_search"},
    });
    let (status, decided) =
        answer(trusting.post(format!("{}/access/v1/evaluation", s.url)).json(&body).send().await.unwrap())
            .await;
    assert_eq!((status, &decided["decision"]), (200, &json!(true)), "{decided}");
    let metadata = trusting.get(format!("{}/.well-known/authzen-configuration", s.url)).send().await.unwrap();
    let metadata: serde_json::Value = metadata.json().await.unwrap();
    assert!(metadata["access_evaluation_endpoint"].as_str().unwrap().starts_with("https://"), "{metadata}");

    // A client that does not trust the CA refuses the service; plain HTTP gets no answer.
    let untrusting = reqwest::Client::builder().tls_certs_only([]).build().unwrap();
    assert!(untrusting.get(format!("{}/healthz", s.url)).send().await.is_err());
    let plain = s.url.replacen("https://", "http://", 1);
    assert!(reqwest::get(format!("{plain}/healthz")).await.is_err());

    s.stop().await.unwrap();
}

#[test]
fn unusable_tls_files_are_errors_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let path = |name: &str| dir.path().join(name);
    let missing = TlsConfig::new(path("nowhere.pem"), path("key.pem")).load().unwrap_err();
    assert!(missing.to_string().contains("nowhere.pem"), "{missing}");
    let not_a_key = TlsConfig::new(path("cert.pem"), path("cert.pem")).load().unwrap_err();
    assert!(not_a_key.to_string().contains("cert.pem: not a PEM private key"), "{not_a_key}");
    let wrong_key = TlsConfig::new(path("cert.pem"), path("ca.key")).load().unwrap_err();
    assert!(wrong_key.to_string().contains("does not go with the certificate"), "{wrong_key}");
    assert!(TlsConfig::new(path("cert.pem"), path("key.pem")).load().is_ok());
}
