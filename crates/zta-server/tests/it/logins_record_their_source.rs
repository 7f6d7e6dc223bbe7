//! A login over `zta serve` records the TCP peer it came from as `detail.source`, refused or
//! not, so the monitor can count failed logins by address across agent names.

use crate::common::Service;
use zta_server::ServerConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_successful_logins_carry_the_peer_address() {
    let s = Service::start(ServerConfig::default()).await;
    let (status, answer) = s.post("/zta/v1/login", None, &serde_json::json!({"assertion": "x"})).await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = s.post("/zta/v1/login", None, &s.assertion_json("research_bot")).await;
    assert_eq!(status, 200, "{answer}");

    let records = s.records().await;
    let logins: Vec<_> = records.iter().filter(|r| r["event"] == "login").collect();
    assert_eq!(logins.len(), 2, "{records:?}");
    assert_eq!(logins[0]["effect"], "deny");
    assert_eq!(logins[0]["detail"]["source"], "127.0.0.1");
    assert_eq!(logins[1]["effect"], "allow");
    assert_eq!(logins[1]["detail"]["source"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_a_failed_login_carries_the_peer_address() {
    let dir = tempfile::tempdir().unwrap();
    crate::https_with_the_configured_certificate::certificates(dir.path());
    let mut config = ServerConfig::default();
    config.tls = Some(zta_server::TlsConfig::new(dir.path().join("cert.pem"), dir.path().join("key.pem")));
    let s = Service::start(config).await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    let refused = client
        .post(format!("{}/zta/v1/login", s.url))
        .json(&serde_json::json!({"assertion": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let records = s.records().await;
    let login = records.iter().find(|r| r["event"] == "login").unwrap();
    assert_eq!(login["effect"], "deny");
    assert_eq!(login["detail"]["source"], "127.0.0.1");
}
