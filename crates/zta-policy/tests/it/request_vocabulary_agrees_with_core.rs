//! One request vocabulary: every reserved attribute zta-core defines is a path a policy may name,
//! and a compiled policy condition reads the same value from a request as
//! `AuthzRequest::attribute` does (present or absent), as do resource and context paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use serde_json::{Value, json};
use zta_core::{Action, AttrValue, Attribute, AuthzRequest, Resource};

/// Paths beyond the reserved ones: a resource attribute and context paths.
const OTHER_PATHS: [&str; 3] = ["resource.owner", "message.type", "message.missing"];

fn paths() -> Vec<&'static str> {
    Attribute::ALL.iter().map(|a| a.name()).chain(OTHER_PATHS).collect()
}

/// One rule per path, each with one `exists` condition on it.
fn policy() -> String {
    let mut yaml = String::from("policies:\n");
    for (i, path) in paths().iter().enumerate() {
        yaml.push_str(&format!(
            "  - {{name: r{i}, effect: allow, conditions: {{{path}: {{exists: true}}}}}}\n"
        ));
    }
    yaml
}

fn json(v: Option<AttrValue<'_>>) -> Option<Value> {
    v.map(|v| match v {
        AttrValue::Str(s) => Value::from(s),
        AttrValue::List(l) => Value::from(l.to_vec()),
        AttrValue::Json(j) => j.clone(),
    })
}

/// A request where every reserved attribute has a value.
fn full() -> AuthzRequest {
    let mut r = req("research_bot", Action::tool_call("web_search"))
        .roles(&["researcher"])
        .segment("research")
        .target("writer", Some("writing"))
        .resource(Resource::new("dataset", "d1").with_attribute("owner", "ana"))
        .ctx("message", json!({"type": "chat"}));
    r.principal = r
        .principal
        .with_subject("spiffe://research_bot")
        .with_tenant("acme")
        .with_groups(["lab"])
        .with_delegation(["lead_bot"]);
    r.build()
}

/// A request where every optional attribute is absent.
fn sparse() -> AuthzRequest {
    req("writer", Action::message("chat")).build()
}

fn custom() -> AuthzRequest {
    req("writer", Action::custom("create_agent").unwrap()).target("other", None).build()
}

#[test]
fn every_core_attribute_reads_the_same_through_a_compiled_condition() {
    let policy = load(&policy());
    for (label, request) in [("full", full()), ("sparse", sparse()), ("custom", custom())] {
        let explanation = policy.explain(&request);
        for (i, path) in paths().into_iter().enumerate() {
            let name = format!("r{i}");
            let rule = explanation.rules.iter().find(|r| r.name == name).unwrap();
            let [cond] = rule.conditions.as_slice() else { panic!("{label} {path}: one condition") };
            assert_eq!(cond.path, path);
            let expected = json(request.attribute(path));
            assert_eq!(cond.actual, expected, "{label}: `{path}`");
            assert_eq!(cond.held, expected.is_some(), "{label}: `{path}`");
        }
    }
}

#[test]
fn the_full_sample_gives_every_reserved_attribute_a_value() {
    // So the walk above compares values, not only absences.
    let request = full();
    for attribute in Attribute::ALL {
        assert!(request.attribute(attribute.name()).is_some(), "{attribute:?}");
        assert_eq!(request.attribute(attribute.name()), request.reserved(attribute), "{attribute:?}");
    }
}
