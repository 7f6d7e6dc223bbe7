//! A decision without obligations makes no heap allocation (counted with a counting global
//! allocator), the request schema's check of a conforming request included. Decisions with
//! obligations, or with more than four determining rules, may, and so may refusing a request
//! that does not conform.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::hint::black_box;

use common::*;
use serde_json::json;
use zta_core::{Action, PolicyEngine, Resource};

const POLICY: &str = r#"
schema:
  send_message:
    message.type: {type: string, required: true}
    message.tags: list<string>
  handoff:
    client_ip: string
  "*":
    at: time
    level: number
    resource.owner: string
segments:
  flows: [{from: research, to: analysis, actions: [send_message, handoff]}]
policies:
  - {name: deny_system, effect: deny, priority: 200, conditions: {action_type: send_message, message.type: {regex: "^sys(tem)?$"}}}
  - {name: research_tools, effect: allow, priority: 100, conditions: {principal.segment: research, action_type: call_tool, tool_name: {in: [web_search, fetch_url]}}}
  - {name: agents, effect: allow, priority: 90, conditions: {agent_id: {regex: "^[a-z]+_bot$"}, action_type: {in: [execute_task, send_message]}}}
  - {name: datasets, effect: allow, priority: 80, conditions: {resource.type: dataset, resource.owner: {glob: "a*"}}, when: {any: [{principal.roles: analyst}, {level: {gte: 3}}]}}
  - {name: handoffs, effect: allow, priority: 70, conditions: {action_type: handoff, target.segment: analysis, client_ip: {cidr: 10.0.0.0/8}}}
  - {name: at, effect: deny, priority: 60, conditions: {at: {gt: "2030-01-01T00:00:00Z"}}}
  - {name: default_deny, effect: deny, priority: 0}
"#;

#[test]
fn decisions_without_obligations_do_not_allocate() {
    let p = load(POLICY);
    let requests = [
        req("research_bot", Action::tool_call("web_search")).segment("research").build(),
        req("research_bot", Action::message("system"))
            .ctx("message", json!({"type": "sys", "tags": ["a", "b"]}))
            .build(),
        req("writer_bot", Action::task("t")).build(),
        req("x", Action::tool_call("shell")).build(),
        req("x", Action::task("t"))
            .roles(&["analyst"])
            .resource(Resource::new("dataset", "d").with_attribute("owner", "ana"))
            .build(),
        req("x", Action::handoff("h"))
            .segment("research")
            .target("y", Some("analysis"))
            .ctx("client_ip", "10.1.2.3")
            .build(),
        req("x", Action::handoff("h")).segment("writing").target("y", Some("research")).build(),
        req("x", Action::custom("y").unwrap()).ctx("at", "2031-01-01T00:00:00Z").build(),
    ];
    // Warm up: regex engines fill their per-thread caches on first use.
    let expected: Vec<_> = requests.iter().map(|r| p.decide(r)).collect();
    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            for r in &requests {
                black_box(p.decide(black_box(r)));
                black_box(p.evaluate(black_box(r))).ok();
            }
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    // The decisions were real ones.
    let effects: Vec<bool> = expected.iter().map(|d| d.is_allowed()).collect();
    assert_eq!(effects, [true, false, true, false, true, true, false, false]);
    assert!(p.has_schema());
    assert!(requests.iter().all(|r| p.check_schema(r).is_ok()), "every request conforms");
}

#[test]
fn decisions_with_attribute_references_do_not_allocate() {
    let p = load(
        r#"
policies:
  - {name: own, effect: allow, priority: 10, conditions: {resource.owner: {eq: {attr: agent_id}}}}
  - {name: peers, effect: allow, priority: 10, conditions: {action_type: send_message, target_agent: {in: {attr: principal.groups}}}}
  - {name: tenant, effect: deny, priority: 20, conditions: {resource.type: doc, resource.tenant: {ne: {attr: principal.tenant}}}}
  - {name: window, effect: allow, priority: 5, conditions: {at: {lt: {attr: until}}, level: {gte: {attr: min}}, tags: {contains: {attr: agent_id}}, path: {starts_with: {attr: resource.root}}}}
"#,
    );
    let doc = |owner: &str| {
        Resource::new("doc", "d").with_attribute("owner", owner).with_attribute("tenant", "acme")
    };
    let mut tenant = req("ana", Action::task("t")).resource(doc("ana"));
    tenant.principal = tenant.principal.with_tenant("acme");
    let requests = [
        tenant.build(),
        req("ana", Action::task("t")).resource(doc("bob")).build(),
        req("ana", Action::message("chat")).roles(&[]).target("bob", None).build(),
        req("ana", Action::custom("y").unwrap())
            .resource(Resource::new("dir", "d").with_attribute("root", "/home/ana/"))
            .ctx("at", "2030-01-01T00:00:00Z")
            .ctx("until", "2031-01-01T00:00:00Z")
            .ctx("level", 4)
            .ctx("min", 3.5)
            .ctx("tags", json!(["ana", "bob"]))
            .ctx("path", "/home/ana/notes")
            .build(),
    ];
    let expected: Vec<bool> = requests.iter().map(|r| p.decide(r).is_allowed()).collect();
    assert_eq!(expected, [true, false, false, true]);
    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            for r in &requests {
                black_box(p.decide(black_box(r)));
            }
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn the_counter_does_count() {
    let info = allocation_counter::measure(|| {
        black_box(vec![1u8; 16]);
    });
    assert!(info.count_total > 0);
}
