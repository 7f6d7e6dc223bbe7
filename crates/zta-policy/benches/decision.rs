//! Decision latency of the native engine on agent policy sets of 21 and 2,001 rules, and compile
//! time of 2,001 rules. The side-by-side comparison with cedar-policy and agent-governance is
//! the separate crate in `benches/compare` (see its Cargo.toml for why).
//!
//! The set: agent `agent_i` may call two tools `tool_i_a`, `tool_i_b` (one allow rule per
//! agent), and nobody may send a system message (one deny). The request: an agent in the
//! middle of the set calls one of its tools (allowed). Requests are built outside the timed
//! loop.
//!
//! Run: `cargo bench -p zta-policy --bench decision`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use time::OffsetDateTime;
use zta_core::{Action, AgentId, AuthMethod, AuthzRequest, Principal, Request};
use zta_policy::{Format, PolicySet, Source};

fn native_yaml(agents: usize) -> String {
    let mut s = String::from(
        "policies:\n  - name: deny_system_messages\n    effect: deny\n    priority: 100\n    conditions: {action_type: send_message, message.type: system}\n",
    );
    for i in 0..agents {
        s.push_str(&format!(
            "  - name: agent_{i}_tools\n    effect: allow\n    priority: 10\n    conditions: {{agent_id: agent_{i}, action_type: call_tool, tool_name: {{in: [tool_{i}_a, tool_{i}_b]}}}}\n"
        ));
    }
    s
}

fn native_request(agent: usize) -> AuthzRequest {
    let now = OffsetDateTime::now_utc();
    let p = Principal::new(
        AgentId::new(format!("agent_{agent}")).unwrap(),
        "bench",
        AuthMethod::AgentKey,
        now,
        now + time::Duration::minutes(5),
    );
    AuthzRequest::new(p, Request::new(Action::tool_call(format!("tool_{agent}_b"))), None).unwrap()
}

fn bench_decisions(c: &mut Criterion) {
    for (rules, agents) in [(21usize, 20usize), (2001, 2000)] {
        let agent = agents * 2 / 3;
        let mut g = c.benchmark_group(format!("decide_{rules}_rules"));

        let native = PolicySet::from_yaml(&native_yaml(agents)).unwrap();
        let req = native_request(agent);
        assert!(native.decide(&req).is_allowed());
        g.bench_function("zta", |b| b.iter(|| black_box(native.decide(black_box(&req)))));

        g.finish();
    }
}

fn bench_compile(c: &mut Criterion) {
    let text = native_yaml(2000);
    let mut g = c.benchmark_group("compile_2001_rules");
    g.sample_size(20);
    g.bench_function("zta", |b| {
        b.iter(|| {
            PolicySet::from_sources(&[Source {
                origin: "bench.yaml",
                text: black_box(&text),
                format: Format::Yaml,
            }])
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_decisions, bench_compile);
criterion_main!(benches);
