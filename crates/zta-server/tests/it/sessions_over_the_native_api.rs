//! The native API's session calls over real HTTP: login with a primary credential, refresh
//! (single use: a replay is refused and revokes the family), introspection of a token, and
//! revocation of one token by a caller that proves who it is; each audited, with clear JSON
//! errors.

use serde_json::json;
use zta_server::ServerConfig;

use crate::common::Service;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refresh_introspect_and_revoke() {
    let s = Service::start(ServerConfig::default()).await;
    let (status, session) = s.post("/zta/v1/login", None, &s.assertion_json("research_bot")).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["token_type"], "Bearer");
    assert!(session["expires_in"].as_u64().unwrap() > 0);
    let access = session["access_token"].as_str().unwrap().to_owned();
    let refresh = session["refresh_token"].as_str().unwrap().to_owned();

    let (status, info) = s.post("/zta/v1/introspect", None, &json!({"token": access})).await;
    assert_eq!(status, 200);
    assert_eq!(info["active"], true);
    assert_eq!(info["agent_id"], "research_bot");
    assert_eq!(info["auth_method"], "session_token");
    assert!(info["exp"].as_i64().unwrap() > time::OffsetDateTime::now_utc().unix_timestamp());

    let (status, next) = s.post("/zta/v1/refresh", None, &json!({"refresh_token": refresh})).await;
    assert_eq!(status, 200, "{next}");
    let next_access = next["access_token"].as_str().unwrap().to_owned();
    // A refresh token works once; the replay is refused and ends the family.
    let (status, replay) = s.post("/zta/v1/refresh", None, &json!({"refresh_token": refresh})).await;
    assert_eq!(status, 401, "{replay}");
    assert_eq!(replay["error"], "credential already used");
    assert!(replay["request_id"].is_string());
    let (_, info) = s.post("/zta/v1/introspect", None, &json!({"token": next_access})).await;
    assert_eq!(info, json!({"active": false}), "the family is revoked");

    // A holder revokes its own token, proving who it is; an anonymous caller may not.
    let token = s.token("writer_bot").await;
    let (status, answer) = s.post("/zta/v1/revoke", None, &json!({"token": token})).await;
    assert_eq!(
        (status, &answer["error"]),
        (401, &json!("an `Authorization: Bearer` credential is required"))
    );
    let (status, answer) = s.post("/zta/v1/revoke", Some(&token), &json!({"token": token})).await;
    assert_eq!((status, &answer), (200, &json!({"revoked": true})));
    let (_, info) = s.post("/zta/v1/introspect", None, &json!({"token": token})).await;
    assert_eq!(info, json!({"active": false}));

    let records = s.records().await;
    let events: Vec<(&str, &str)> =
        records.iter().map(|r| (r["event"].as_str().unwrap(), r["effect"].as_str().unwrap())).collect();
    assert_eq!(
        events,
        [
            ("login", "allow"),
            ("token_refresh", "allow"),
            ("token_reuse", "deny"),
            ("login", "allow"),
            ("revocation", "deny"),
            ("revocation", "allow"),
        ]
    );
    assert_eq!(records[5]["reason"], "revoked over zta serve");
    assert_eq!(records[5]["detail"]["by"], "agent:writer_bot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_json_errors() {
    let s = Service::start(ServerConfig::default()).await;
    // A wrong credential is 401, audited.
    let mut forged = s.assertion_json("research_bot");
    forged["assertion"] = format!("{}x", forged["assertion"].as_str().unwrap()).into();
    let (status, answer) = s.post("/zta/v1/login", None, &forged).await;
    assert_eq!((status, &answer["error"]), (401, &json!("invalid credential")));
    assert!(answer["request_id"].is_string());
    // A session token cannot open a session.
    let token = s.token("research_bot").await;
    let (status, _) = s.post("/zta/v1/login", None, &json!({"bearer": token})).await;
    assert_eq!(status, 401);
    // What is not a request at all is 400, and says what is wrong.
    for (path, body) in [
        ("/zta/v1/login", json!({"assertion": "x", "extra": 1})),
        ("/zta/v1/refresh", json!({"token": "x"})),
        ("/zta/v1/revoke", json!({})),
        ("/zta/v1/introspect", json!("x")),
    ] {
        let (status, answer) = s.post(path, None, &body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(answer["error"].as_str().unwrap().starts_with("not "), "{answer}");
    }
    let (status, answer) = s.post("/zta/v1/introspect", None, &json!({"token": "not-a-token"})).await;
    assert_eq!((status, answer), (200, json!({"active": false})));
    // Larger than the body limit is 413.
    let big = json!({"assertion": "x".repeat(70 * 1024)});
    assert_eq!(s.post("/zta/v1/login", None, &big).await.0, 413);
}
