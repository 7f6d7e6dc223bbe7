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
