//! Decision latency of the native engine on agent policy sets of 21 and 2,001 rules, and compile
//! time of 2,001 rules; the same with attribute references against the same set with literals. The side-by-side comparison with cedar-policy and agent-governance is
//! the separate crates in `benches/compare` (see their Cargo.toml for why), built from the same
//! policy sets and requests (`compare/common.rs`).
//!
//! The set: agent `agent_i` may call two tools `tool_i_a`, `tool_i_b` (one allow rule per
//! agent), and nobody may send a system message (one deny). The request: an agent in the
//! middle of the set calls one of its tools (allowed). Requests are built outside the timed
//! loop.
//!
//! The reference sets (`references_*`): each agent's rule also requires the resource to be owned
//! by the agent and in its tenant, once as references (`resource.owner: {eq: {attr: agent_id}}`,
//! `resource.tenant: {eq: {attr: principal.tenant}}`) and once as the literals those references
//! resolve to for that agent (`ref_literals`, the reference of the group).
//!
//! Run: `cargo bench -p zta-policy --bench decision`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

#[path = "compare/common.rs"]
mod common;

use std::hint::black_box;

use common::{SIZES, native_json, native_request, native_yaml, subject};
use criterion::{Criterion, criterion_group, criterion_main};
use time::OffsetDateTime;
use zta_core::{Action, AgentId, AuthMethod, AuthzRequest, Principal, Request, Resource};
use zta_policy::{Format, PolicySet, Source};

/// The agent set with an ownership and a tenant condition per agent: references, or literals.
fn owned_yaml(agents: usize, references: bool) -> String {
    let mut s = String::from(
        "policies:\n  - name: deny_system_messages\n    effect: deny\n    priority: 100\n    conditions: {action_type: send_message, message.type: system}\n",
    );
    for i in 0..agents {
        let (owner, tenant) = if references {
            ("{eq: {attr: agent_id}}".to_owned(), "{eq: {attr: principal.tenant}}")
        } else {
            (format!("agent_{i}"), "acme")
        };
        s.push_str(&format!(
            "  - name: agent_{i}_tools\n    effect: allow\n    priority: 10\n    conditions: {{agent_id: agent_{i}, action_type: call_tool, tool_name: {{in: [tool_{i}_a, tool_{i}_b]}}, resource.owner: {owner}, resource.tenant: {tenant}}}\n"
        ));
    }
    s
}

fn owned_request(agent: usize) -> AuthzRequest {
    let now = OffsetDateTime::now_utc();
    let p = Principal::new(
        AgentId::new(format!("agent_{agent}")).unwrap(),
        "bench",
        AuthMethod::AgentKey,
        now,
        now + time::Duration::minutes(5),
    )
    .with_tenant("acme");
    let doc = Resource::new("document", "d1")
        .with_attribute("owner", format!("agent_{agent}"))
        .with_attribute("tenant", "acme");
    let request = Request::new(Action::tool_call(format!("tool_{agent}_b"))).with_resource(doc);
    AuthzRequest::new(p, request, None).unwrap()
}

fn bench_references(c: &mut Criterion) {
    for (rules, agents) in SIZES {
        let agent = subject(agents);
        let req = owned_request(agent);
        let mut g = c.benchmark_group(format!("references_{rules}_rules"));
        for (id, references) in [("ref_literals", false), ("references", true)] {
            let set = PolicySet::from_yaml(&owned_yaml(agents, references)).unwrap();
            assert!(set.decide(&req).is_allowed());
            g.bench_function(id, |b| b.iter(|| black_box(set.decide(black_box(&req)))));
        }
        g.finish();
    }
}

fn bench_decisions(c: &mut Criterion) {
    for (rules, agents) in SIZES {
        let agent = subject(agents);
        let mut g = c.benchmark_group(format!("decide_{rules}_rules"));

        let native = PolicySet::from_yaml(&native_yaml(agents)).unwrap();
        let req = native_request(agent);
        assert!(native.decide(&req).is_allowed());
        g.bench_function("zta", |b| b.iter(|| black_box(native.decide(black_box(&req)))));

        g.finish();
    }
}

fn bench_compile(c: &mut Criterion) {
    // The same 2,001 rules from YAML and from JSON text: the difference is YAML parsing.
    let yaml = native_yaml(2000);
    let json = native_json(2000);
    let from_yaml =
        PolicySet::from_sources(&[Source { origin: "bench.yaml", text: &yaml, format: Format::Yaml }]);
    let from_json =
        PolicySet::from_sources(&[Source { origin: "bench.json", text: &json, format: Format::Json }]);
    assert_eq!(from_yaml.unwrap().digest(), from_json.unwrap().digest(), "the two sources differ");
    let mut g = c.benchmark_group("compile_2001_rules");
    g.sample_size(20);
    for (id, origin, text, format) in
        [("zta", "bench.yaml", &yaml, Format::Yaml), ("zta_from_json", "bench.json", &json, Format::Json)]
    {
        g.bench_function(id, |b| {
            b.iter(|| PolicySet::from_sources(&[Source { origin, text: black_box(text), format }]).unwrap())
        });
    }
    g.finish();
    let mut g = c.benchmark_group("compile_2001_rules_owned");
    g.sample_size(20);
    for (id, references) in [("ref_literals", false), ("references", true)] {
        let text = owned_yaml(2000, references);
        g.bench_function(id, |b| {
            b.iter(|| {
                PolicySet::from_sources(&[Source {
                    origin: "bench.yaml",
                    text: black_box(&text),
                    format: Format::Yaml,
                }])
                .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_decisions, bench_references, bench_compile);
criterion_main!(benches);
