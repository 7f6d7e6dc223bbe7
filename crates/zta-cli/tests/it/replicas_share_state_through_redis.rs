//! Three `zta serve` processes on loopback sharing one Redis act as one service: a refresh
//! token used at one and replayed at another ends the session family everywhere, a single-use
//! assertion used at one is refused at the others, an agent an operator suspends at one is
//! denied at every replica, wrong secrets spread over the replicas lock the account, a policy change reaches all
//! three, and with Redis down every replica denies ("state store unavailable") and recovers when
//! it is back, without granting a single-use claim twice across the outage.
//!
//! The Redis is the test's own (`redis-server` on a free port, an append-only file synced on
//! every write), so that it can be stopped without disturbing other tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::common::{post, post_as, spawn_server, zta};

const SECRET: &str = "correct horse battery staple";

/// A child process killed when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private Redis on `port`, persisting every write to `dir` before it answers.
fn start_redis(port: u16, dir: &Path) -> Killed {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("this test runs its own `redis-server` (Debian: apt-get install redis-server): {e}")
        });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !redis_answers(port) {
        assert!(Instant::now() < deadline, "redis-server on port {port} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Killed(child)
}

fn redis_answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let mut answer = [0u8; 5];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Asks `replica` whether the agent `credential` proves may call `tool`: (allowed, reason).
fn decide(replica: &str, credential: &Value, tool: &str) -> (bool, String) {
    let body = json!({
        "subject": {"type": "agent", "properties": {"credential": credential}},
        "action": {"name": "call_tool"},
        "resource": {"type": "tool", "id": tool},
    });
    let (status, answer) = post(replica, "/access/v1/evaluation", &body);
    assert_eq!(status, 200, "{answer}");
    let reason = answer["context"]["reason"].as_str().unwrap_or_default().to_owned();
    (answer["decision"] == json!(true), reason)
}

/// Polls `replica` until `what` holds for its answer, for at most 30 s.
fn eventually(
    replica: &str,
    credential: &Value,
    tool: &str,
    what: impl Fn(bool, &str) -> bool,
) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (allowed, reason) = decide(replica, credential, tool);
        if what(allowed, &reason) {
            return (allowed, reason);
        }
        assert!(Instant::now() < deadline, "{replica} still answers ({allowed}, {reason:?}) for {tool}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assertion(dir: &Path) -> Value {
    let (code, out, err) = zta(
        &[
            "credential",
            "assertion",
            "--key",
            "keys/research_bot.pem",
            "--agent",
            "research_bot",
            "--config",
            "a.yaml",
        ],
        dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn three_replicas_on_one_redis_act_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let redis_port = free_port();
    let redis_dir = dir.join("redis");
    std::fs::create_dir(&redis_dir).unwrap();
    let redis = start_redis(redis_port, &redis_dir);

    let (code, out, err) = zta(&["keygen", "--out", "keys", "--agent", "research_bot"], dir);
    assert_eq!(code, 0, "{out}{err}");
    let hash = zta::identity::static_agents::hash_secret(SECRET).unwrap();
    std::fs::write(dir.join("crew.yaml"), include_str!("../../../../examples/policies/crew.yaml")).unwrap();
    // One config per replica: the same identities, keys, policy and Redis; its own audit log.
    for replica in ["a", "b", "c"] {
        let config = format!(
            "identity:
  - type: static
    audience: https://zta.test
    agents:
      - {{id: research_bot, segment: research, public_key_file: keys/research_bot.pub.pem}}
      - {{id: writer_bot, segment: writing, secret_hash: '{hash}'}}
      - {{id: analysis_bot, segment: analysis, secret_hash: '{hash}'}}
      - {{id: locked_bot, segment: writing, secret_hash: '{hash}'}}
      - {{id: ops_bot, secret_hash: '{hash}'}}
    lockout: {{max_failures: 5, window: 5m}}
tokens:
  issuer: https://zta.test
  audience: zta
  signing_key_file: keys/zta-signing.pem
policy:
  type: native
  files: [crew.yaml]
  watch: true
state:
  type: redis
  url: redis://127.0.0.1:{redis_port}/
  timeout: 300ms
audit:
  type: jsonl
  dir: audit-{replica}
server:
  operators: [ops_bot]
"
        );
        std::fs::write(dir.join(format!("{replica}.yaml")), config).unwrap();
    }
    let replicas: Vec<(Killed, String)> = ["a", "b", "c"]
        .iter()
        .map(|r| {
            let (child, addr, _) =
                spawn_server(&["serve", "--config", &format!("{r}.yaml"), "--listen", "127.0.0.1:0"], dir);
            (Killed(child), addr)
        })
        .collect();
    let [a, b, c] = [&replicas[0].1, &replicas[1].1, &replicas[2].1];
    let secret = |agent: &str| json!({"username": agent, "password": SECRET});

    // A single-use assertion: used at A, refused at B and C.
    let first = assertion(dir);
    assert_eq!(decide(a, &first, "web_search"), (true, String::new()));
    for replica in [b, c] {
        let (allowed, reason) = decide(replica, &first, "web_search");
        assert!(!allowed, "a replayed assertion was accepted at {replica}");
        assert_eq!(reason, "credential already used");
    }

    // A session pair from A, refreshed at A; the old refresh token replayed at B ends the family:
    // the new pair is refused at C, its refresh token and its access token alike.
    let login = |replica: &str, agent: &str| {
        let (status, pair) = post(replica, "/zta/v1/login", &secret(agent));
        assert_eq!(status, 200, "{pair}");
        pair
    };
    let refresh = |replica: &str, pair: &Value| {
        post(replica, "/zta/v1/refresh", &json!({"refresh_token": pair["refresh_token"]}))
    };
    let first_pair = login(a, "writer_bot");
    let (status, second_pair) = refresh(a, &first_pair);
    assert_eq!(status, 200, "{second_pair}");
    let bearer = |pair: &Value| json!({"bearer": pair["access_token"]});
    assert!(decide(c, &bearer(&second_pair), "write_document").0);
    assert_eq!(refresh(b, &first_pair).0, 401, "a replayed refresh token was accepted at B");
    assert_eq!(refresh(c, &second_pair).0, 401, "the family outlived the replay at C");
    let (allowed, reason) = decide(c, &bearer(&second_pair), "write_document");
    assert!(!allowed, "the family's access token still works at C ({reason})");

    // Suspended by an operator at A, denied everywhere on the next request.
    for replica in [a, b, c] {
        assert!(decide(replica, &secret("analysis_bot"), "query_dataset").0);
    }
    let operator = login(a, "ops_bot");
    let (status, answer) = post_as(
        a,
        "/zta/v1/agents/analysis_bot/suspend",
        operator["access_token"].as_str(),
        &json!({"reason": "replica test"}),
    );
    assert!((200..300).contains(&status), "{status} {answer}");
    for replica in [a, b, c] {
        assert_eq!(
            decide(replica, &secret("analysis_bot"), "query_dataset"),
            (false, "agent suspended".to_owned())
        );
    }

    // Five wrong secrets over three replicas lock the account; the right one is refused then.
    let wrong = json!({"username": "locked_bot", "password": "wrong"});
    for replica in [a, b, c, a, b] {
        assert!(!decide(replica, &wrong, "write_document").0);
    }
    let (allowed, reason) = decide(c, &secret("locked_bot"), "write_document");
    assert!(!allowed, "the locked account logged in at C ({reason})");

    // A policy change reaches all three: writers may no longer write documents.
    for replica in [a, b, c] {
        assert!(decide(replica, &secret("writer_bot"), "write_document").0);
    }
    let policy = std::fs::read_to_string(dir.join("crew.yaml")).unwrap();
    let changed = policy.replace("tool_name: write_document", "tool_name: publish_document");
    assert_ne!(policy, changed);
    std::fs::write(dir.join("crew.yaml"), changed).unwrap();
    for replica in [a, b, c] {
        eventually(replica, &secret("writer_bot"), "write_document", |allowed, _| !allowed);
        assert!(decide(replica, &secret("writer_bot"), "publish_document").0);
    }

    // Redis down: every replica denies, saying why.
    let second = assertion(dir);
    assert!(decide(b, &second, "web_search").0);
    let session = bearer(&login(b, "writer_bot"));
    assert!(decide(a, &session, "publish_document").0);
    drop(redis);
    for replica in [a, b, c] {
        let (allowed, reason) = decide(replica, &session, "publish_document");
        assert!(!allowed, "{replica} allowed a session token without its state store");
        assert_eq!(reason, "state store unavailable", "{replica}");
        let (allowed, _) = decide(replica, &secret("writer_bot"), "publish_document");
        assert!(!allowed, "{replica} allowed a secret without its state store (no lockout count)");
        let (allowed, _) = decide(replica, &second, "web_search");
        assert!(!allowed, "{replica} took a single-use assertion without its state store");
    }

    // Redis back (the same data): every replica recovers on its own, and the assertions used
    // before the outage stay used.
    let _redis = start_redis(redis_port, &redis_dir);
    for replica in [a, b, c] {
        eventually(replica, &session, "publish_document", |allowed, _| allowed);
        assert!(decide(replica, &secret("writer_bot"), "publish_document").0);
        for used in [&first, &second] {
            assert_eq!(decide(replica, used, "web_search"), (false, "credential already used".to_owned()));
        }
    }
    let third = assertion(dir);
    assert!(decide(c, &third, "web_search").0);
    assert!(!decide(a, &third, "web_search").0);
}
