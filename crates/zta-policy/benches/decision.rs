//! Decision latency of the native engine on agent policy sets of 21 and 2,001 rules, and compile
//! time of 2,001 rules. The side-by-side comparison with cedar-policy and agent-governance is
//! the separate crates in `benches/compare` (see their Cargo.toml for why), built from the same
//! policy sets and requests (`compare/common.rs`).
//!
//! The set: agent `agent_i` may call two tools `tool_i_a`, `tool_i_b` (one allow rule per
//! agent), and nobody may send a system message (one deny). The request: an agent in the
//! middle of the set calls one of its tools (allowed). Requests are built outside the timed
//! loop.
//!
//! Run: `cargo bench -p zta-policy --bench decision`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

#[path = "compare/common.rs"]
mod common;

use std::hint::black_box;

use common::{SIZES, native_json, native_request, native_yaml, subject};
use criterion::{Criterion, criterion_group, criterion_main};
use zta_policy::{Format, PolicySet, Source};

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
}

criterion_group!(benches, bench_decisions, bench_compile);
criterion_main!(benches);
