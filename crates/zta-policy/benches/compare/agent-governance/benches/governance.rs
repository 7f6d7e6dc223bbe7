//! Decision latency: zta-policy against agent-governance 3.2 (first-match, exact-match
//! capability rules) on equivalent agent policy sets.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../../common.rs"]
mod common;

use std::{collections::HashMap, hint::black_box};

use common::*;
use criterion::{Criterion, criterion_group, criterion_main};
use zta_policy::PolicySet;

fn bench(c: &mut Criterion) {
    for (rules, agents) in SIZES {
        let agent = subject(agents);
        let mut g = c.benchmark_group(format!("vs_agent_governance_{rules}_rules"));
        let native = PolicySet::from_yaml(&native_yaml(agents)).unwrap();
        let req = native_request(agent);
        assert!(native.decide(&req).is_allowed());
        g.bench_function("ref_zta", |b| b.iter(|| black_box(native.decide(black_box(&req)))));

        let gov = agent_governance::PolicyEngine::new();
        gov.load_from_yaml(&governance_yaml(agents)).unwrap();
        let action = format!("call_tool.tool_{agent}_b");
        let ctx: HashMap<String, serde_yaml::Value> =
            [("agent_id".to_owned(), serde_yaml::Value::from(format!("agent_{agent}")))]
                .into_iter()
                .collect();
        assert!(gov.evaluate(&action, Some(&ctx)).is_allowed());
        assert!(!gov.evaluate("send_message.system", Some(&ctx)).is_allowed());
        g.bench_function("agent_governance", |b| {
            b.iter(|| black_box(gov.evaluate(black_box(&action), Some(black_box(&ctx)))))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
