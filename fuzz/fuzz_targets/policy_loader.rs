//! Fuzzes the policy loader (YAML, JSON, TOML), the compiler, the analysis, and decisions and
//! explanations on whatever loads. The first byte picks the format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use zta_core::{Action, AgentId, AuthMethod, AuthzRequest, Principal, Request, Resource};
use zta_policy::{Format, PolicySet, Source};

fn requests() -> Vec<AuthzRequest> {
    let now = OffsetDateTime::now_utc();
    let p = |id: &str, seg: &str| {
        Principal::new(AgentId::new(id).unwrap(), "fuzz", AuthMethod::AgentKey, now, now)
            .with_roles(["researcher", "admin"])
            .with_segment(seg)
    };
    let r1 = Request::new(Action::tool_call("web_search"))
        .with_context("message", serde_json::json!({"type": "system", "n": [1, 2.5, "x", null]}))
        .with_context("client_ip", "10.1.2.3")
        .with_resource(Resource::new("dataset", "d").with_attribute("owner", "ana"));
    let r2 = Request::new(Action::message("chat")).with_target(AgentId::new("analyst").unwrap());
    vec![
        AuthzRequest::new(p("research_bot", "research"), r1, None).unwrap(),
        AuthzRequest::new(p("writer", "writing"), r2, Some("analysis".into())).unwrap(),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let format = match selector % 3 {
        0 => Format::Yaml,
        1 => Format::Json,
        _ => Format::Toml,
    };
    let text = String::from_utf8_lossy(rest);
    let source = [Source { origin: "fuzz", text: &text, format }];
    match PolicySet::from_sources(&source) {
        Ok(set) => {
            // Loading is deterministic.
            let again = PolicySet::from_sources(&source).expect("loaded once, must load again");
            assert_eq!(set.digest(), again.digest());
            for r in requests() {
                let d = set.decide(&r);
                assert_eq!(d.effect, d.basis.effect());
                let e = set.explain(&r);
                assert_eq!(e.decision, d);
                let _ = e.to_string();
            }
            for w in set.warnings() {
                let _ = w.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
