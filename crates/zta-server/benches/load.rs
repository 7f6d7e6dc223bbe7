//! Load: AuthZEN evaluations per second through `zta serve` with 64 connections and a warm
//! session token, next to a trivial axum endpoint in the same run, measured by `wrk`.
//!
//!     cargo bench -p zta-server --bench load [-- SECONDS]
//!
//! Three servers on loopback in this process: `trivial` (an axum route that reads the same JSON
//! body and answers a fixed decision), `zta memory` (the guard: static identities, a session
//! token verified on every request, native policy, a JSON Lines audit record per decision, the
//! state in memory) and `zta redis` (the same with the state store on the Redis of
//! `ZTA_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/`). `wrk -t2 -c64 --latency` drives each
//! in turn (default 10 s each, after 2 s of warm-up); the table gives requests/s, the median and
//! p99 latency, and the share of the trivial endpoint's throughput. Needs `wrk` (Debian: `apt-get
//! install wrk`). Not a criterion bench: criterion's arguments are ignored.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::{net::SocketAddr, process::Command, sync::Arc, time::Duration};

use axum::{Json, Router, body::Bytes, routing::post};
use serde_json::{Value, json};
use zta::{
    AgentId, Guard, MemoryStateStore, StateStore,
    audit::jsonl::{JsonlConfig, JsonlSink},
    identity::static_agents::{AgentEntry, AgentKey, StaticConfig, StaticProvider},
    policy::PolicySet,
    secrecy::ExposeSecret,
    state::redis::{RedisConfig, RedisStateStore},
    token::{Algorithm, SigningKey, TokenConfig, TokenService},
};
use zta_server::ServerConfig;

/// The `zta` binary's allocator, so that this measures what `zta serve` runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const POLICY: &str = "
policies:
  - {name: search, effect: allow, conditions: {action_type: call_tool, tool_name: web_search}}
";

fn main() {
    let seconds: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    if Command::new("wrk").arg("--version").output().is_err() {
        panic!("the load bench drives the servers with `wrk` (Debian: apt-get install wrk)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis_url =
        std::env::var("ZTA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let redis: Arc<dyn StateStore> = {
        let prefix = format!("zta-bench:load:{}:", std::process::id());
        let config =
            RedisConfig::new(&redis_url).with_key_prefix(prefix).with_timeout(Duration::from_secs(2));
        // The store's connection manager starts on the runtime it is built in.
        let _entered = runtime.enter();
        Arc::new(RedisStateStore::new(config).unwrap())
    };
    let targets = runtime.block_on(async {
        let trivial = serve(Router::new().route(
            "/access/v1/evaluation",
            post(|body: Bytes| async move {
                let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let decided = request.get("action").is_some();
                Json(json!({"decision": decided, "context": {"id": "0"}}))
            }),
        ))
        .await;
        let (memory, token) = zta(dir.path().join("audit-memory"), Arc::new(MemoryStateStore::new())).await;
        let (redis, redis_token) = zta(dir.path().join("audit-redis"), redis).await;
        let body = |token: &str| {
            json!({
                "subject": {"type": "agent", "properties": {"credential": {"bearer": token}}},
                "action": {"name": "call_tool"},
                "resource": {"type": "tool", "id": "web_search"},
            })
        };
        [
            ("trivial", trivial, body(&token)),
            ("zta memory", memory, body(&token)),
            ("zta redis", redis, body(&redis_token)),
        ]
    });
    let mut rows = Vec::new();
    for (name, addr, body) in &targets {
        // Every server answers this body with a permit before it is measured.
        let answer = runtime.block_on(async {
            let response = reqwest::Client::new()
                .post(format!("http://{addr}/access/v1/evaluation"))
                .json(body)
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()
        });
        assert_eq!(answer["decision"], json!(true), "{name}: {answer}");
        let script = dir.path().join(format!("{}.lua", name.replace(' ', "-")));
        let lua = format!(
            "wrk.method = \"POST\"\nwrk.headers[\"content-type\"] = \"application/json\"\nwrk.body = {}\n",
            Value::String(body.to_string())
        );
        std::fs::write(&script, lua).unwrap();
        let url = format!("http://{addr}/access/v1/evaluation");
        wrk(&script, &url, 2); // warm-up: connections, caches
        rows.push((name, wrk(&script, &url, seconds)));
    }
    let trivial = rows[0].1.requests_per_second;
    println!("\n| server | requests/s | p50 | p99 | of trivial |");
    println!("|---|---|---|---|---|");
    for (name, run) in &rows {
        println!(
            "| {name} | {:.0} | {} | {} | {:.0}% |",
            run.requests_per_second,
            run.p50,
            run.p99,
            100.0 * run.requests_per_second / trivial
        );
    }
}

struct Run {
    requests_per_second: f64,
    p50: String,
    p99: String,
}

/// Runs wrk for `seconds` against `url` with `script`; refuses a run with errors or non-2xx answers.
fn wrk(script: &std::path::Path, url: &str, seconds: u64) -> Run {
    let out = Command::new("wrk")
        .args(["-t2", "-c64", "--latency", "-d"])
        .arg(format!("{seconds}s"))
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("Non-2xx") && !text.contains("Socket errors"), "wrk saw errors:\n{text}");
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
            .unwrap_or_else(|| panic!("no `{prefix}` in wrk's output:\n{text}"))
    };
    Run { requests_per_second: field("Requests/sec:").parse().unwrap(), p50: field("50%"), p99: field("99%") }
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// `zta serve`'s router around a guard on `state`, auditing to `audit`; its address and a
/// session access token of `research_bot`.
async fn zta(audit: std::path::PathBuf, state: Arc<dyn StateStore>) -> (SocketAddr, String) {
    let key = AgentKey::generate().unwrap();
    let id = AgentId::new("research_bot").unwrap();
    let agents =
        StaticConfig::new("aud").with_agent(AgentEntry::from_public_key(id.clone(), key.public_key_pem()));
    let tokens = TokenService::new(
        TokenConfig::new("https://zta.bench", "zta"),
        SigningKey::generate(Algorithm::EdDSA).unwrap(),
        state.clone(),
    )
    .unwrap();
    let sink = Arc::new(JsonlSink::open(JsonlConfig::new(&audit)).unwrap());
    let guard: Guard = Guard::builder(Arc::new(PolicySet::from_yaml(POLICY).unwrap()), sink)
        .identity_provider(Arc::new(StaticProvider::new(agents, state.clone()).unwrap()))
        .token_authority(Arc::new(tokens))
        .state_store(state)
        .build()
        .unwrap();
    let assertion = key.assertion(&id, "aud", Duration::from_secs(30)).unwrap();
    let token = guard.login(&assertion).await.unwrap().access_token.expose_secret().to_owned();
    (serve(zta_server::router(guard, &ServerConfig::default())).await, token)
}
