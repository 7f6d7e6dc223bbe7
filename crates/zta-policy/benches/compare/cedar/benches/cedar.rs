//! Decision latency: zta-policy against cedar-policy 4.14 on equivalent agent policy sets.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../../common.rs"]
mod common;

use std::{hint::black_box, str::FromStr};

use common::*;
use criterion::{Criterion, criterion_group, criterion_main};
use zta_policy::PolicySet;

fn bench(c: &mut Criterion) {
    for (rules, agents) in SIZES {
        let agent = subject(agents);
        let mut g = c.benchmark_group(format!("vs_cedar_{rules}_rules"));
        let native = PolicySet::from_yaml(&native_yaml(agents)).unwrap();
        let req = native_request(agent);
        assert!(native.decide(&req).is_allowed());
        g.bench_function("ref_zta", |b| b.iter(|| black_box(native.decide(black_box(&req)))));

        let policies = cedar_policy::PolicySet::from_str(&cedar_text(agents)).unwrap();
        let request = cedar_policy::Request::new(
            cedar_policy::EntityUid::from_str(&format!("Agent::\"agent_{agent}\"")).unwrap(),
            cedar_policy::EntityUid::from_str("Action::\"call_tool\"").unwrap(),
            cedar_policy::EntityUid::from_str("Tool::\"any\"").unwrap(),
            cedar_policy::Context::from_json_value(
                serde_json::json!({"tool": format!("tool_{agent}_b")}),
                None,
            )
            .unwrap(),
            None,
        )
        .unwrap();
        let entities = cedar_policy::Entities::empty();
        let authorizer = cedar_policy::Authorizer::new();
        assert_eq!(
            authorizer.is_authorized(&request, &policies, &entities).decision(),
            cedar_policy::Decision::Allow
        );
        g.bench_function("cedar", |b| {
            b.iter(|| black_box(authorizer.is_authorized(black_box(&request), &policies, &entities)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
