//! Every alert is POSTed to the webhook with an HMAC-SHA256 signature of its body that the
//! receiver can check with the shared key; a failed delivery is retried until it is taken;
//! after the last retry it is given up and counted. Bad webhook settings do not load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
use crate::common::*;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use serde_json::{Value, json};
use zta_core::MemoryStateStore;
use zta_monitor::{Monitor, MonitorConfig};

const KEY: &str = "a-shared-key-of-32-bytes-for-tests";

/// A receiver that fails the first `fail` deliveries with 500, then takes them.
#[derive(Default)]
struct Receiver {
    fail: usize,
    attempts: AtomicUsize,
    taken: Mutex<Vec<(Option<String>, Bytes)>>,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if r.attempts.fetch_add(1, Ordering::SeqCst) < r.fail {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let signature = headers.get("x-zta-signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
    r.taken.lock().unwrap().push((signature, body));
    StatusCode::NO_CONTENT
}

async fn listen(fail: usize) -> (String, Arc<Receiver>) {
    let receiver = Arc::new(Receiver { fail, ..Receiver::default() });
    let app = Router::new().route("/alerts", post(receive)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

fn config(url: &str, retries: u32, dir: &std::path::Path) -> serde_json::Value {
    let key_file = dir.join("webhook.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    json!({
        "detectors": [{"name": "probe", "detect": "denials", "window": "1m", "threshold": 2}],
        "webhook": {"url": url, "secret_file": key_file, "retries": retries, "backoff": "10ms"},
    })
}

/// Polls until `done` holds, for at most ten seconds.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the webhook did not get there within ten seconds");
}

#[tokio::test]
async fn a_signed_alert_is_delivered_after_two_failures() {
    let (url, receiver) = listen(2).await;
    let dir = tempfile::tempdir().unwrap();
    let s = setup(config(&url, 5, dir.path()));
    feed(&s, denial("research_bot", "shell"), 2).await;
    until(|| !receiver.taken.lock().unwrap().is_empty()).await;

    let (signature, body) = receiver.taken.lock().unwrap()[0].clone();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, KEY.as_bytes());
    let expected = format!("sha256={}", hex::encode(aws_lc_rs::hmac::sign(&key, &body)));
    assert_eq!(signature.as_deref(), Some(expected.as_str()), "the signature does not check out");
    let alert: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(alert["event"], "alert");
    assert_eq!(alert["agent_id"], "research_bot");
    assert_eq!(alert["detail"]["detector"], "probe");
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 3, "not retried until taken");
    let stats = s.sink.monitor().webhook_stats().unwrap();
    assert_eq!((stats.delivered(), stats.retried(), stats.failed()), (1, 2, 0));
}

#[tokio::test]
async fn an_alert_is_given_up_after_the_last_retry() {
    let (url, receiver) = listen(usize::MAX).await;
    let dir = tempfile::tempdir().unwrap();
    let s = setup(config(&url, 2, dir.path()));
    feed(&s, denial("research_bot", "shell"), 2).await;
    let monitor = s.sink.monitor().clone();
    until(|| monitor.webhook_stats().unwrap().failed() == 1).await;
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 3, "one attempt and two retries");
    assert!(receiver.taken.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bad_webhook_settings_do_not_load() {
    let state = Arc::new(MemoryStateStore::new());
    let sink = Arc::new(Kept::default());
    let cases = [
        (json!({"url": "http://alerts.example/hook", "secret_env": "PATH"}), "must be `https://`"),
        (json!({"url": "https://alerts.example/hook"}), "exactly one of `secret_env` and `secret_file`"),
        (
            json!({"url": "https://alerts.example/hook", "secret_env": "ZTA_TEST_UNSET_VARIABLE"}),
            "is not set",
        ),
    ];
    for (webhook, expected) in cases {
        let config: MonitorConfig = serde_json::from_value(json!({"webhook": webhook})).unwrap();
        let e = Monitor::new(config, state.clone(), sink.clone()).unwrap_err();
        assert!(e.to_string().contains(expected), "{e}");
    }
}
