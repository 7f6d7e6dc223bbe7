//! Every load error names file, line, column and rule, carries a hint, and all errors are
//! reported at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use zta_policy::{Diagnostic, Format, PolicySet, Severity, Source};

fn errors(yaml: &str) -> Vec<Diagnostic> {
    let e = PolicySet::from_sources(&[Source { origin: "p.yaml", text: yaml, format: Format::Yaml }])
        .unwrap_err();
    let d = e.diagnostics().to_vec();
    assert!(!d.is_empty(), "{e}");
    for x in &d {
        assert_eq!(x.severity, Severity::Error);
        assert_eq!(x.file, "p.yaml");
        assert!(x.line > 0 && x.column > 0, "no position: {x}");
        assert!(x.hint.is_some(), "no hint: {x}");
    }
    d
}

fn one(yaml: &str) -> Diagnostic {
    let d = errors(yaml);
    assert_eq!(d.len(), 1, "{d:#?}");
    d.into_iter().next().unwrap()
}

#[test]
fn unknown_operator() {
    let d =
        one("policies:\n  - name: r\n    effect: allow\n    conditions:\n      agent_id: {regx: \"^a\"}\n");
    assert_eq!((d.line, d.column), (5, 18));
    assert_eq!(d.rule.as_deref(), Some("r"));
    assert!(d.message.contains("unknown operator `regx`"), "{d}");
    assert!(d.hint.unwrap().contains("did you mean `regex`"));
    // The original's nested form gets a hint towards the dotted path.
    let d = one(
        "policies:\n  - name: r\n    effect: allow\n    conditions:\n      resource: {type: {in: [read]}}\n",
    );
    assert!(d.hint.unwrap().contains("resource.type"), "nested-map hint");
}

#[test]
fn bad_regex() {
    let d =
        one("policies:\n  - name: r\n    effect: deny\n    conditions: {message.type: {regex: \"^(sys\"}}\n");
    assert_eq!(d.line, 4);
    assert!(d.message.contains("bad regex"), "{d}");
    // Look-around is not linear time: refused.
    let d = one("policies:\n  - name: r\n    effect: deny\n    conditions: {a: {regex: \"(?=x)\"}}\n");
    assert!(d.message.contains("bad regex"), "{d}");
}

#[test]
fn in_with_a_string_operand_is_refused() {
    // The original did a substring test: `{in: "execute_task"}` matched "task".
    let d =
        one("policies:\n  - name: r\n    effect: allow\n    conditions: {action_type: {in: execute_task}}\n");
    assert!(d.message.contains("needs a list"), "{d}");
    assert!(d.hint.unwrap().contains("[execute_task]"));
    one("policies:\n  - name: r\n    effect: allow\n    conditions: {action_type: {not_in: x}}\n");
}

#[test]
fn wrong_operand_types() {
    for cond in [
        "{n: {gt: ten}}",
        "{n: {gt: [1]}}",
        "{n: {exists: yes}}",
        "{n: {regex: 5}}",
        "{n: {cidr: 10.0.0.0/40}}",
        "{n: {starts_with: [a]}}",
        "{n: {contains: [a]}}",
        "{n: {eq: {a: 1}}}",
        "{n: {glob: \"[ab\"}}",
    ] {
        let d = one(&format!("policies:\n  - name: r\n    effect: allow\n    conditions: {cond}\n"));
        assert_eq!(d.line, 4, "{cond}: {d}");
    }
}

#[test]
fn duplicate_names() {
    let d = one("policies:\n  - {name: r, effect: allow}\n  - {name: r, effect: deny}\n");
    assert_eq!(d.line, 3);
    assert!(d.message.contains("duplicate rule name `r`"));
    assert!(d.hint.unwrap().contains("p.yaml:2:"));
}

#[test]
fn empty_operator_map() {
    let d = one("policies:\n  - name: r\n    effect: allow\n    conditions:\n      agent_id: {}\n");
    assert!(d.message.contains("empty operator map"), "{d}");
    assert_eq!(d.line, 5);
}

#[test]
fn unknown_effect_is_refused() {
    let d = one("policies:\n  - {name: r, effect: permit}\n");
    assert!(d.message.contains("unknown effect `permit`"));
    let d = one("policies:\n  - {name: r, effect: Allow}\n");
    assert!(d.hint.unwrap().contains("lowercase"));
    one("policies:\n  - {name: r}\n");
}

#[test]
fn unknown_keys_everywhere() {
    let d = one("policy:\n  - {name: r, effect: allow}\npolicies: []\n");
    assert!(d.message.contains("unknown key `policy`"));
    assert_eq!((d.line, d.column), (1, 1));
    let d = one("policies:\n  - {name: r, effect: allow, condition: {}}\n");
    assert!(d.hint.unwrap().contains("did you mean `conditions`"));
    one("segments: {flow: []}\npolicies: []\n");
    one("segments: {flows: [{from: a, to: b, action: [x]}]}\npolicies: []\n");
    one("policies:\n  - {name: r, effect: allow, obligations: [{name: x, parms: 1}]}\n");
}

#[test]
fn structural_errors() {
    one("policies:\n  - {name: r, effect: deny, obligations: [require_approval]}\n");
    one("policies:\n  - {name: r, effect: allow, priority: high}\n");
    one("policies:\n  - {name: r, effect: allow, priority: 1.5}\n");
    one("policies:\n  - {effect: allow}\n");
    one("policies: {name: r}\n");
    one("policies:\n  - {name: r, effect: allow, when: {any: []}}\n");
    one("policies:\n  - {name: r, effect: allow, when: {all: [{a: 1}], b: 2}}\n");
    one("segments: {names: [a], flows: [{from: a, to: c}]}\npolicies: []\n");
    one("policies:\n  - {name: r, effect: allow, conditions: {a..b: 1}}\n");
    one("policies:\n  - {name: r, effect: allow}\n  - {name: s, effect: allow, effect: deny}\n");
}

#[test]
fn syntax_errors_have_positions() {
    let d = one("policies:\n  - name: r\n    effect: [allow\n");
    assert!(d.message.contains("syntax"), "{d}");
    let e = PolicySet::from_sources(&[Source {
        origin: "p.toml",
        text: "[[policies]]\nname = \n",
        format: Format::Toml,
    }])
    .unwrap_err();
    assert_eq!(e.diagnostics()[0].line, 2, "{e}");
    let e = PolicySet::from_sources(&[Source {
        origin: "p.json",
        text: "{\"policies\": [}",
        format: Format::Json,
    }])
    .unwrap_err();
    assert_eq!(e.diagnostics()[0].line, 1, "{e}");
}

#[test]
fn all_errors_are_collected_not_just_the_first() {
    let d = errors(
        r#"
policies:
  - name: a
    effect: allow
    conditions: {x: {regx: 1}}
  - name: b
    effect: maybe
  - name: c
    effect: allow
    conditions: {y: {in: str}, z: {}}
  - name: a
    effect: deny
"#,
    );
    assert_eq!(d.len(), 5, "{d:#?}");
    let rules: Vec<_> = d.iter().map(|x| x.rule.clone().unwrap()).collect();
    assert_eq!(rules, ["a", "b", "c", "c", "a"]);
    // Display names the file position, the rule and the hint.
    let text = PolicySet::from_yaml("policies:\n  - {name: b, effect: maybe}\n").unwrap_err().to_string();
    assert!(text.contains("<policy>:2:") && text.contains("rule `b`") && text.contains("hint:"), "{text}");
}

#[test]
fn a_file_that_fails_to_load_yields_no_policy_set() {
    let e = load_err(
        "policies:\n  - {name: ok, effect: allow}\n  - {name: bad, effect: allow, conditions: {a: {in: x}}}\n",
    );
    assert_eq!(e.diagnostics().len(), 1);
}

#[test]
fn toml_and_json_errors_have_positions_too() {
    let e = PolicySet::from_sources(&[Source {
        origin: "p.toml",
        text: "[[policies]]\nname = \"r\"\neffect = \"permit\"\n",
        format: Format::Toml,
    }])
    .unwrap_err();
    let d = &e.diagnostics()[0];
    assert_eq!((d.line, d.column), (3, 10), "{d}");
    let e = PolicySet::from_sources(&[Source {
        origin: "p.json",
        text: "{\n  \"policies\": [\n    {\"name\": \"r\", \"effect\": \"allow\", \"conditions\": {\"a\": {\"in\": \"x\"}}}\n  ]\n}",
        format: Format::Json,
    }])
    .unwrap_err();
    let d = &e.diagnostics()[0];
    assert_eq!(d.line, 3, "{d}");
    assert!(d.column > 50, "{d}");
}
