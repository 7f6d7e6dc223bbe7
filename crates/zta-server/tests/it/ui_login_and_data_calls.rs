//! `/ui` without a browser: the login form, an operator's login setting an `HttpOnly`,
//! `SameSite=Strict` session cookie, the page under a hash-only Content-Security-Policy, data
//! calls that need both the cookie and the page's header, a non-operator refused (at login and
//! with a cookie of its own session), `Secure` behind TLS, logging out revoking the session,
//! and the page's reinstate call lifting a suspension. (The page's script in a real browser:
//! zta-cli's `ui_in_a_headless_browser`.)

use serde_json::{Value, json};
use zta::AgentId;

use crate::{
    common::Service,
    operators_read_the_audit_log::{tool_call, with_operator},
};

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Logs in at `/ui/login` with `credential` (form field): the status and the cookie set.
async fn login(s: &Service, credential: &str) -> (u16, Option<String>, String) {
    let body = format!("credential={}", encode(credential));
    let response = client()
        .post(format!("{}/ui/login", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    (status, cookie, response.text().await.unwrap())
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn get(
    s: &Service,
    path: &str,
    cookie: Option<&str>,
    page_header: bool,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = client().get(format!("{}{path}", s.url));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if page_header {
        request = request.header("x-zta-ui", "1");
    }
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    (response.status().as_u16(), headers, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_logs_in_and_the_page_reads_with_its_cookie() {
    let s = Service::start(with_operator()).await;
    let writer = s.token("writer_bot").await;
    s.post("/access/v1/evaluation", None, &tool_call(&writer, "shell")).await;

    let (status, headers, form) = get(&s, "/ui", None, false).await;
    assert_eq!(status, 200);
    assert!(form.contains("action=\"/ui/login\""), "{form}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    let (status, _, page) = login(&s, &s.assertion_json("research_bot").to_string()).await;
    assert_eq!(status, 403, "not an operator");
    assert!(page.contains("only operators"), "{page}");
    let (status, _, _) = login(&s, "{\"bearer\": \"forged\"}").await;
    assert_eq!(status, 401);

    let (status, cookie, _) = login(&s, &s.assertion_json("ops_bot").to_string()).await;
    assert_eq!(status, 303);
    let cookie = cookie.unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();

    let (status, _, page) = get(&s, "/ui", Some(&pair), false).await;
    assert_eq!(status, 200);
    assert!(page.contains("operator: ops_bot") && page.contains("<script>"), "{page}");

    let (status, _, _) = get(&s, "/ui/api/audit", Some(&pair), false).await;
    assert_eq!(status, 403, "a data call without the page's header");
    let (status, _, _) = get(&s, "/ui/api/audit", None, true).await;
    assert_eq!(status, 401, "a data call without the cookie");
    s.guard.audit_sink().flush().await.unwrap();
    let (status, _, body) = get(&s, "/ui/api/audit?effect=deny&event=authorization", Some(&pair), true).await;
    assert_eq!(status, 200, "{body}");
    let found: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(found["records"][0]["action"]["name"], "shell", "{found}");

    // A session token the operator already holds works as well.
    let token = s.token("ops_bot").await;
    let (status, cookie, _) = login(&s, &token).await;
    assert_eq!(status, 303);
    assert!(cookie.unwrap().starts_with(&format!("zta_ui={token};")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lists_a_suspension_and_its_reinstate_call_lifts_it() {
    let s = Service::start(with_operator()).await;
    let ops = s.token("ops_bot").await;
    let (status, _) =
        s.post("/zta/v1/agents/writer_bot/suspend", Some(&ops), &json!({"reason": "probing tools"})).await;
    assert_eq!(status, 200);
    let (_, cookie, _) = login(&s, &s.assertion_json("ops_bot").to_string()).await;
    let pair = cookie.unwrap().split(';').next().unwrap().to_owned();
    s.guard.audit_sink().flush().await.unwrap();

    let (status, _, body) = get(&s, "/ui/api/alerts", Some(&pair), true).await;
    assert_eq!(status, 200, "{body}");
    let alerts: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(alerts["suspended"][0]["agent_id"], "writer_bot", "{alerts}");
    assert_eq!(alerts["suspended"][0]["reason"], "probing tools");

    let reinstate = |header: bool| {
        let mut request =
            client().post(format!("{}/ui/api/agents/writer_bot/reinstate", s.url)).header("cookie", &pair);
        if header {
            request = request.header("x-zta-ui", "1");
        }
        request.json(&json!({"reason": "checked"})).send()
    };
    assert_eq!(reinstate(false).await.unwrap().status().as_u16(), 403, "without the page's header");
    assert!(s.guard.is_suspended(&AgentId::new("writer_bot").unwrap()).await.unwrap());
    assert_eq!(reinstate(true).await.unwrap().status().as_u16(), 200);
    assert!(!s.guard.is_suspended(&AgentId::new("writer_bot").unwrap()).await.unwrap());
    let records = s.records().await;
    let last = records.iter().rev().find(|r| r["event"] == "reinstatement").unwrap();
    assert_eq!(last["detail"]["by"], "agent:ops_bot", "{last}");

    let (_, _, body) = get(&s, "/ui/api/alerts", Some(&pair), true).await;
    let alerts: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(alerts["suspended"], json!([]), "{alerts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_operator_s_live_session_reads_and_logging_out_ends_it() {
    let mut config = with_operator();
    config.public_url = Some("https://pdp.example".to_owned());
    let s = Service::start(config).await;

    // Behind TLS (here: a public https URL) the cookie is Secure.
    let (status, cookie, _) = login(&s, &s.assertion_json("ops_bot").to_string()).await;
    assert_eq!(status, 303);
    let cookie = cookie.unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();

    // A cookie holding a session of an agent that is not an operator reads nothing.
    let research = s.token("research_bot").await;
    let (status, _, _) = get(&s, "/ui/api/audit", Some(&format!("zta_ui={research}")), true).await;
    assert_eq!(status, 403);
    let (status, _, page) = get(&s, "/ui", Some(&format!("zta_ui={research}")), false).await;
    assert_eq!(status, 200);
    assert!(page.contains("action=\"/ui/login\""), "the login form, not the page");

    // Logging out revokes the session's token: the old cookie reads nothing any more.
    assert_eq!(get(&s, "/ui/api/alerts", Some(&pair), true).await.0, 200);
    let response =
        client().post(format!("{}/ui/logout", s.url)).header("cookie", &pair).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let cleared = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cleared.starts_with("zta_ui=;") && cleared.contains("Max-Age=0"), "{cleared}");
    let (status, _, _) = get(&s, "/ui/api/alerts", Some(&pair), true).await;
    assert_eq!(status, 401, "the token is revoked");
}
