//! The AuthZEN action search, `POST /access/v1/search/action`: the actions a subject may
//! perform on a resource.
//!
//! The policy engine names the candidates ([`PolicyEngine::permissible`]: the action types
//! some allow rule may permit the subject; the built-in ones when it permits any, or when the
//! engine cannot tell), and each candidate is then decided in full as an evaluation with that
//! action name: one guard check, authenticated, decided and audited on its own (one audit
//! record per decided candidate), so the answer is exact. `call_tool` is a candidate only on
//! a resource of type `tool`, a tool the engine admits; on a resource of type `agent`, only an
//! agent the engine admits as a target is tried.
//!
//! The subject is given as for an evaluation (its credential in
//! `subject.properties.credential`, or named by a trusted enforcement point in `Authorization`),
//! and the errors are the evaluation's: `400` for a body that is not a search (a missing
//! `subject` or `resource`, a bad `page`) and for a single-use credential (a signed assertion
//! proves one check, and a search makes several: log in for a session token), `401` when nobody
//! authenticated, `413` over the body limit. A subject whose credential fails is decided once
//! (the action `search_action`, audited) and has no results.
//!
//! Pages: at most `page.limit` candidates (default and most: `server.max_batch`) are decided
//! per request, in name order; `page.next_token` resumes after them (empty: done), and is
//! refused for another search. A page may hold fewer results than its limit, even none.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use zta_core::{ActionKind, AgentId, Candidates, Credential, Permissible};

use crate::{ActionIn, Parts, ResourceIn, Shared, Subject, bad_request, caller, decide, parse};

/// The action decided (and audited) for a search whose subject does not authenticate.
const SEARCH_ACTION: &str = "search_action";

/// A single-use credential cannot prove the several checks of a search.
const SINGLE_USE: &str = "a search decides each candidate action with the subject's credential, and a signed assertion proves one check only: send a session token (`POST /zta/v1/login`) or another reusable credential";

#[derive(Debug, Deserialize)]
struct Search {
    subject: Option<Subject>,
    resource: Option<ResourceIn>,
    context: Option<Map<String, Value>>,
    #[serde(default)]
    page: Page,
}

#[derive(Debug, Default, Deserialize)]
struct Page {
    token: Option<String>,
    limit: Option<usize>,
}

pub(crate) async fn search_action(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let search: Search = match parse(&body) {
        Ok(search) => search,
        Err(message) => return bad_request(message),
    };
    let (Some(subject), Some(resource)) = (search.subject, search.resource) else {
        return bad_request("`subject` and `resource` are required");
    };
    if matches!(subject.properties.credential, Some(Credential::AgentAssertion(_))) {
        return bad_request(SINGLE_USE);
    }
    let limit = match search.page.limit {
        Some(0) => return bad_request("`page.limit` must be at least 1"),
        Some(limit) => limit.min(shared.max_batch),
        None => shared.max_batch,
    };
    let fingerprint = fingerprint(&body);
    let start = match search.page.token.as_deref() {
        None | Some("") => 0,
        Some(token) => match resume(token, &fingerprint) {
            Some(start) => start,
            None => {
                return bad_request(
                    "`page.token` is not one this search returned: the subject, resource, context and limit must stay those of its first page",
                );
            }
        },
    };
    let caller = caller(&headers);
    let parts = |action: &str| Parts {
        subject: Some(subject.clone()),
        action: Some(ActionIn { name: action.to_owned(), properties: Map::new() }),
        resource: Some(resource.clone()),
        context: search.context.clone(),
    };

    // Whom the checks will act for, to ask the engine for candidates; the checks themselves
    // verify the credential again, and audit.
    let named = subject.id.as_deref().map(AgentId::new).transpose();
    let guard = &shared.guard;
    let principal = match (&subject.properties.credential, named, &caller) {
        (Some(credential), Ok(named), _) => guard.principal_for(credential, named.as_ref(), None).await.ok(),
        (None, Ok(Some(named)), Some(caller)) => {
            guard.principal_for(caller, Some(&named), Some(&shared.trusted_peps)).await.ok()
        }
        _ => None,
    };
    let Some(principal) = principal else {
        // Decided once, so that the guard refuses and audits it: `401` when nobody
        // authenticated, else a denial about the subject, and no results.
        return match decide(&shared, caller.as_ref(), parts(SEARCH_ACTION)).await {
            Ok(answer) => {
                Json(json!({ "page": { "next_token": "" }, "results": [], "context": answer.get("context") }))
                    .into_response()
            }
            Err(refused) => refused.into_response(),
        };
    };
    let permissible = guard.policy_engine().permissible(&principal);
    let all = candidates(permissible.as_ref(), &resource);
    let end = start.saturating_add(limit).min(all.len());
    let mut results = Vec::new();
    for name in all.get(start..end).unwrap_or_default() {
        match decide(&shared, caller.as_ref(), parts(name)).await {
            Ok(answer) if answer.get("decision") == Some(&Value::Bool(true)) => {
                results.push(json!({ "name": name }))
            }
            Ok(_) => {}
            // A caller whose own credential stopped holding: nobody is authenticated now.
            Err(refused) => return refused.into_response(),
        }
    }
    let next_token = if end < all.len() { token(end, &fingerprint) } else { String::new() };
    Json(json!({ "page": { "next_token": next_token, "count": results.len() }, "results": results }))
        .into_response()
}

/// The action names worth deciding for `resource`, sorted: the action types the engine may
/// permit (the built-in ones when it may permit any, or cannot tell), less those the resource
/// rules out.
fn candidates(permissible: Option<&Permissible>, resource: &ResourceIn) -> Vec<String> {
    let built_in = || ActionKind::BUILT_IN.into_iter().filter_map(ActionKind::verb).map(str::to_owned);
    let mut names: Vec<String> = match permissible.map(|p| &p.actions) {
        Some(Candidates::Only(names)) => names.clone(),
        Some(except @ Candidates::AnyExcept(_)) => built_in().filter(|v| except.admits(v)).collect(),
        None => built_in().collect(),
    };
    let tool_call = ActionKind::ToolCall.verb().unwrap_or_default();
    names.retain(|name| match (name == tool_call, resource.kind.as_str()) {
        (true, "tool") => permissible.is_none_or(|p| p.tools.admits(&resource.id)),
        // `call_tool` names its tool by a resource of type `tool`, nothing else.
        (true, _) => false,
        (false, "agent") => permissible.is_none_or(|p| p.targets.admits(&resource.id)),
        (false, _) => true,
    });
    names.sort_unstable();
    names.dedup();
    names
}

/// What a page token is bound to: the request body without `page.token`, and without the
/// subject's credential (a session may be refreshed between pages).
fn fingerprint(body: &Bytes) -> String {
    let mut value: Value = serde_json::from_slice(body).unwrap_or_default();
    if let Some(page) = value.get_mut("page").and_then(Value::as_object_mut) {
        page.remove("token");
    }
    if let Some(properties) = value.pointer_mut("/subject/properties").and_then(Value::as_object_mut) {
        properties.remove("credential");
    }
    let digest = Sha256::digest(value.to_string().as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// The token that resumes at candidate `start` of the search with `fingerprint`.
fn token(start: usize, fingerprint: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{start}.{fingerprint}"))
}

/// Where `token` resumes, if it is one of this search's.
fn resume(token: &str, fingerprint: &str) -> Option<usize> {
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(text).ok()?;
    let (start, bound) = text.split_once('.')?;
    (bound == fingerprint).then(|| start.parse().ok()).flatten()
}
