//! The `server:` section of `zta.yaml` gives `zta serve` its operators, trusted enforcement
//! points and time limit; a zero limit or an invalid agent id is an error at its value.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use zta::{AgentId, Config};

use crate::config_loads_and_refuses_bad_files::GOOD;

fn with_server(section: &str) -> String {
    format!("{GOOD}server:\n{section}")
}

#[test]
fn the_section_names_operators_trusted_peps_and_the_time_limit() {
    let config = Config::from_yaml_str(&with_server(
        "  operators: [ops_bot]\n  trusted_peps: [mcp_gateway]\n  request_timeout: 3s\n",
    ))
    .unwrap();
    let server = config.server().unwrap();
    assert_eq!(server.operators, [AgentId::new("ops_bot").unwrap()]);
    assert_eq!(server.trusted_peps, [AgentId::new("mcp_gateway").unwrap()]);
    assert_eq!(server.request_timeout, Duration::from_secs(3));
    // Nobody by default, and ten seconds.
    let server = Config::from_yaml_str(GOOD).unwrap().server().unwrap();
    assert!(server.operators.is_empty() && server.trusted_peps.is_empty());
    assert_eq!(server.request_timeout, Duration::from_secs(10));
}

#[test]
fn a_zero_limit_and_a_bad_agent_id_are_found_at_their_values() {
    let line = GOOD.lines().count() + 3;
    for (section, column, message) in [
        ("  listen: 127.0.0.1:0\n  request_timeout: 0s\n", 20, "must be longer than zero"),
        ("  listen: 127.0.0.1:0\n  trusted_peps: [ops bot]\n", 17, "agent id contains ` `"),
    ] {
        let err = Config::from_yaml_str(&with_server(section)).unwrap().server().unwrap_err();
        let at = err.position.map(|p| (p.line, p.column));
        assert_eq!(at, Some((line, column)), "{err}");
        assert!(err.message.starts_with(message), "{err}");
    }
}
