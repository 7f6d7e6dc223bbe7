//! `/ui`: the operators' page. A live table of decisions (filtered by agent, effect and reason),
//! a graph of who talks to whom (agents grouped by segment, allowed and denied interactions as
//! green and red edges, tools beside them), and the alerts and suspensions with a button that
//! reinstates a suspended agent.
//!
//! The page is server-rendered HTML and one inline script, under a Content-Security-Policy that
//! allows that script and style by their hashes and nothing else (no other script, no inline
//! handlers, no other origin). Everything taken from audit records is put into the page as
//! text (`textContent`, `setAttribute`), never as markup.
//!
//! Logging in: an operator posts its primary credential (its JSON shape, as `POST /zta/v1/login`
//! takes it) or a session token it already holds. The guard verifies it (a primary credential
//! is exchanged for a session, audited as a login); a caller that is not in
//! [`ServerConfig::operators`](crate::ServerConfig::operators) is refused. The session token goes
//! into a cookie the page's script cannot read (`HttpOnly`, `SameSite=Strict`, `Path=/ui`,
//! `Secure` over HTTPS) and lasts as long as the token. Every data call of the page carries it
//! and is checked like the API's bearer credential (verified, not revoked, agent not
//! suspended, an operator), and must carry the `x-zta-ui` header, which a cross-site form
//! cannot send. Logging out revokes the token.
//!
//! | call | what |
//! |---|---|
//! | `GET /ui` | the page, or the login form without a valid session |
//! | `POST /ui/login` | form field `credential`: a session cookie, then back to `/ui` |
//! | `POST /ui/logout` | the session's token revoked, the cookie cleared |
//! | `GET /ui/api/audit?...` | `GET /zta/v1/audit`'s answer, plus `segments` (agent -> segment) |
//! | `GET /ui/api/alerts` | `{"suspended": [...], "events": [...]}`: who is suspended now, recent alerts, suspensions and reinstatements |
//! | `POST /ui/api/agents/{id}/reinstate` | `POST /zta/v1/agents/{id}/reinstate` as the session's operator |

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, LazyLock},
};

use axum::{
    Form, Json, Router,
    body::Bytes,
    extract::{
        Path, Query, State,
        rejection::{FormRejection, QueryRejection},
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zta_core::{
    Actor, AgentId, AuditEvent, AuditQuery, AuditRecord, Credential, Principal,
    secrecy::{ExposeSecret, SecretString},
};

use crate::{
    Shared,
    audit::{self, Params},
    native,
};

/// The session cookie's name.
const COOKIE: &str = "zta_ui";
/// The header every data call of the page sends (a cross-site form cannot).
const UI_HEADER: &str = "x-zta-ui";
/// Recent alerts, suspensions and reinstatements the panel shows, of each kind.
const RECENT_EVENTS: usize = 20;
/// Suspension records looked through for who is suspended now.
const SUSPENSIONS_SEEN: usize = 500;

const SCRIPT: &str = include_str!("ui/page.js");
const STYLE: &str = include_str!("ui/page.css");

/// The policy of every `/ui` response: the page's own script and style (by hash), calls to its
/// own origin, forms to its own origin, no framing.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = |text: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()));
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; \
         img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        hash(SCRIPT),
        hash(STYLE)
    )
});

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/ui", get(page))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/api/audit", get(api_audit))
        .route("/ui/api/alerts", get(api_alerts))
        .route("/ui/api/agents/{agent}/reinstate", post(api_reinstate))
}

/// `text` safe inside HTML text and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An HTML answer with the page's security headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    secure(headers);
    response
}

/// The headers every `/ui` answer carries.
fn secure(headers: &mut HeaderMap) {
    if let Ok(csp) = HeaderValue::from_str(&CSP) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The session token of the request's cookie, if it has one.
fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('=').map(str::to_owned))
        .filter(|token| !token.is_empty())
}

/// Headers carrying the session's token as the API's `Authorization: Bearer`.
fn as_bearer(headers: &HeaderMap) -> HeaderMap {
    let mut bearer = HeaderMap::new();
    if let Some(value) =
        session_token(headers).and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok())
    {
        bearer.insert(header::AUTHORIZATION, value);
    }
    bearer
}

/// The operator of the session, checked like the API's bearer credential (a refusal is audited
/// and is the answer); a data call without the page's header is `403`.
async fn session(shared: &Shared, headers: &HeaderMap, api: bool) -> Result<Arc<Principal>, Response> {
    if api && !headers.contains_key(UI_HEADER) {
        return Err(native::error(StatusCode::FORBIDDEN, "not a call of the /ui page", None));
    }
    native::operator_only(shared, &as_bearer(headers), AuditEvent::Admin).await
}

/// `GET /ui`: the page for a valid session, else the login form.
async fn page(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if session_token(&headers).is_none() {
        return html(StatusCode::OK, login_page(None));
    }
    match session(&shared, &headers, false).await {
        Ok(operator) => html(StatusCode::OK, dashboard(operator.agent_id.as_str())),
        Err(_) => html(StatusCode::OK, login_page(Some("your session has ended: log in again"))),
    }
}

fn login_page(error: Option<&str>) -> String {
    let error =
        error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    format!(
        "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ZTA: operator login</title>
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<style>{STYLE}</style></head>
<body><main class=\"login\"><h1>ZTA monitor: operator login</h1>{error}
<form method=\"post\" action=\"/ui/login\" id=\"login\">
<label for=\"credential\">Your primary credential as JSON (<code>{{\"username\": ..., \"password\": ...}}</code>,
<code>{{\"assertion\": ...}}</code>, <code>{{\"bearer\": ...}}</code>) or a ZTA session token</label>
<textarea id=\"credential\" name=\"credential\" rows=\"5\" required autocomplete=\"off\" spellcheck=\"false\"></textarea>
<button type=\"submit\" id=\"login-button\">Log in</button>
</form></main></body></html>
"
    )
}

fn dashboard(operator: &str) -> String {
    let operator = escape(operator);
    format!(
        "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ZTA monitor</title>
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<style>{STYLE}</style></head>
<body>
<header><h1>ZTA monitor</h1><span id=\"operator\">operator: {operator}</span>
<form method=\"post\" action=\"/ui/logout\"><button type=\"submit\" id=\"logout\">Log out</button></form></header>
<p id=\"status\" role=\"status\">loading...</p>
<section id=\"alerts-panel\"><h2>Suspended agents</h2>
<table id=\"suspended\"><thead><tr><th>agent</th><th>since</th><th>by</th><th>reason</th><th></th></tr></thead><tbody></tbody></table>
<h2>Alerts, suspensions and reinstatements</h2>
<table id=\"events\"><thead><tr><th>time</th><th>event</th><th>agent</th><th>by</th><th>reason</th></tr></thead><tbody></tbody></table>
</section>
<section id=\"graph-panel\"><h2>Who talks to whom</h2>
<p class=\"legend\"><span class=\"allow\">&#9644; allowed</span> <span class=\"deny\">&#9644; denied</span>; boxes are segments; the latest 1000 decisions</p>
<div class=\"scroll\"><svg id=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"120\" role=\"img\" aria-label=\"who talks to whom\"></svg></div>
</section>
<section id=\"decisions-panel\"><h2>Decisions</h2>
<form id=\"filters\"><label>agent <input name=\"agent\" autocomplete=\"off\"></label>
<label>effect <select name=\"effect\"><option value=\"\">any</option><option value=\"allow\">allow</option><option value=\"deny\">deny</option></select></label>
<label>reason <input name=\"reason\" autocomplete=\"off\"></label><button type=\"submit\">Filter</button></form>
<table id=\"decisions\"><thead><tr><th>time</th><th>event</th><th>agent</th><th>action</th><th>target</th><th>effect</th><th>reason</th></tr></thead><tbody></tbody></table>
</section>
<script>{SCRIPT}</script>
</body></html>
"
    )
}

#[derive(Deserialize)]
struct LoginIn {
    credential: SecretString,
}

/// `POST /ui/login`: a primary credential (JSON) is exchanged for a session; a session token
/// is checked as it is. An operator gets the cookie and goes back to `/ui`.
async fn login(State(shared): State<Arc<Shared>>, form: Result<Form<LoginIn>, FormRejection>) -> Response {
    let refused = |status: StatusCode, message: &str| html(status, login_page(Some(message)));
    let Ok(Form(input)) = form else {
        return refused(StatusCode::BAD_REQUEST, "give your credential");
    };
    let text = input.credential.expose_secret().trim();
    let (token, fresh) = if text.starts_with('{') {
        let Ok(credential) = serde_json::from_str::<Credential>(text) else {
            return refused(StatusCode::BAD_REQUEST, "that is not a credential in its JSON shape");
        };
        match shared.guard.login(&credential).await {
            Ok(tokens) => (tokens.access_token.expose_secret().to_owned(), true),
            Err(denied) => return refused(StatusCode::UNAUTHORIZED, &denied.reason().to_string()),
        }
    } else {
        (text.to_owned(), false)
    };
    let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return refused(StatusCode::BAD_REQUEST, "that is not a session token");
    };
    let mut bearer = HeaderMap::new();
    bearer.insert(header::AUTHORIZATION, value);
    let operator = match native::operator_only(&shared, &bearer, AuditEvent::Login).await {
        Ok(operator) => operator,
        Err(refusal) => {
            if fresh {
                // The session made for someone who may not use the page ends here.
                let by = Actor::Local;
                let _ = shared
                    .guard
                    .revoke_token(&SecretString::from(token), &by, "not an operator of /ui")
                    .await;
            }
            let message = if refusal.status() == StatusCode::FORBIDDEN {
                "only operators (`server.operators`) may use this page"
            } else {
                "that credential does not hold"
            };
            return refused(refusal.status(), message);
        }
    };
    let seconds = (operator.expires_at - OffsetDateTime::now_utc()).whole_seconds().max(0);
    let secure = if shared.https { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={seconds}{secure}");
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui")]).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    secure_headers(&mut response);
    response
}

fn secure_headers(response: &mut Response) {
    secure(response.headers_mut());
}

/// `POST /ui/logout`: revokes the session's token and clears the cookie.
async fn logout(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers)
        && let Ok(operator) = session(&shared, &headers, false).await
    {
        let by = Actor::Agent(operator.agent_id.clone());
        if let Err(denied) =
            shared.guard.revoke_token(&SecretString::from(token), &by, "logged out of /ui").await
        {
            tracing::warn!(reason = %denied.reason(), "could not revoke a /ui session token at logout");
        }
    }
    let secure = if shared.https { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}");
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui")]).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    secure_headers(&mut response);
    response
}

fn json_answer(body: Value) -> Response {
    let mut response = Json(body).into_response();
    secure_headers(&mut response);
    response
}

/// `GET /ui/api/audit`: the audit API's answer for the session's operator, plus the segment of
/// every agent in it (as the identity providers know it).
async fn api_audit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    if let Err(refusal) = session(&shared, &headers, true).await {
        return refusal;
    }
    let Ok(Query(params)) = params else {
        return native::error(StatusCode::BAD_REQUEST, audit::UNKNOWN_PARAMETER, None);
    };
    let (records, more) = match audit::find(&shared, &params).await {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let agents: BTreeSet<&AgentId> =
        records.iter().flat_map(|r| r.agent_id.iter().chain(r.target_agent.iter())).collect();
    let mut segments = BTreeMap::new();
    for agent in agents {
        for provider in &shared.identity_providers {
            if let Some(segment) = provider.segment_of(agent).await {
                segments.insert(agent.as_str().to_owned(), segment);
                break;
            }
        }
    }
    json_answer(json!({ "records": records, "more": more, "segments": segments }))
}

/// `GET /ui/api/alerts`: who is suspended now (with the latest suspension of each), and the
/// latest alerts, suspensions and reinstatements, newest first.
async fn api_alerts(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(refusal) = session(&shared, &headers, true).await {
        return refusal;
    }
    let Some(source) = &shared.audit_source else {
        return native::error(StatusCode::NOT_FOUND, "this service has no audit store to read", None);
    };
    let of = |event: AuditEvent, limit: usize| {
        let mut query = AuditQuery::default();
        query.event = Some(event);
        async move { source.query(&query, limit).await }
    };
    let read = async {
        let suspensions = of(AuditEvent::Suspension, SUSPENSIONS_SEEN).await?;
        let reinstatements = of(AuditEvent::Reinstatement, RECENT_EVENTS).await?;
        let alerts = of(AuditEvent::Alert, RECENT_EVENTS).await?;
        Ok::<_, zta_core::AuditReadError>((suspensions, reinstatements, alerts))
    };
    let (suspensions, reinstatements, alerts) = match read.await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "audit query failed");
            return native::error(StatusCode::SERVICE_UNAVAILABLE, "the audit store cannot be read", None);
        }
    };
    // The latest suspension of each agent that the state store says is suspended now.
    let mut latest: BTreeMap<&AgentId, &AuditRecord> = BTreeMap::new();
    for record in suspensions.iter().filter(|r| !refused(r)) {
        if let Some(agent) = &record.agent_id {
            latest.insert(agent, record);
        }
    }
    let mut suspended = Vec::new();
    for (agent, record) in latest {
        match shared.guard.is_suspended(agent).await {
            Ok(true) => suspended.push(json!({
                "agent_id": agent.as_str(),
                "since": record.time.format(&time::format_description::well_known::Rfc3339).ok(),
                "by": record.detail.get("by"),
                "reason": record.reason,
            })),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "state store failed");
                return native::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the state store cannot be read",
                    None,
                );
            }
        }
    }
    let skip = suspensions.len().saturating_sub(RECENT_EVENTS);
    let mut events: Vec<&AuditRecord> =
        suspensions.iter().skip(skip).chain(reinstatements.iter()).chain(alerts.iter()).collect();
    events.sort_by_key(|r| std::cmp::Reverse(r.time));
    json_answer(json!({ "suspended": suspended, "events": events }))
}

/// Whether `record` is the record of a refused call (by someone who may not make it).
fn refused(record: &AuditRecord) -> bool {
    record.reason.as_deref().is_some_and(|r| r.starts_with("refused: "))
}

/// `POST /ui/api/agents/{agent}/reinstate`: the native reinstatement, as the session's
/// operator.
async fn api_reinstate(
    State(shared): State<Arc<Shared>>,
    Path(agent): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !headers.contains_key(UI_HEADER) {
        return native::error(StatusCode::FORBIDDEN, "not a call of the /ui page", None);
    }
    let mut response = native::reinstate_as(shared, agent, as_bearer(&headers), body).await;
    secure_headers(&mut response);
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=b; zta_ui=tok.en; zta_uix=no"));
        assert_eq!(session_token(&headers).as_deref(), Some("tok.en"));
        headers.insert(header::COOKIE, HeaderValue::from_static("zta_uix=no"));
        assert_eq!(session_token(&headers), None);
    }

    #[test]
    fn the_policy_allows_only_the_page_s_own_script() {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()));
        assert!(CSP.contains(&format!("script-src 'sha256-{hash}';")));
        assert!(!CSP.contains("unsafe"));
    }
}
