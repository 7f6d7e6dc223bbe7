//! Every config mistake is reported at its exact `line:column`, read from the document tree
//! (not guessed from the text), and a repeated key is refused.
#![allow(clippy::unwrap_used, clippy::panic)]

use zta::{Config, ConfigError};

use crate::config_loads_and_refuses_bad_files::GOOD;

/// The good config with a second static provider; the mistakes go into that one, so a reader
/// that found "the first `agents`" would point at the wrong place.
fn two_providers() -> String {
    let second = "  - type: static\n    audience: https://b.test\n    agents:\n      - id: beta\n        public_key_file: b.pem\n";
    GOOD.replace("tokens:\n", &format!("{second}tokens:\n"))
}

fn yaml_error(text: &str) -> ConfigError {
    Config::from_yaml_str(text).unwrap_err()
}

fn at(err: &ConfigError) -> (usize, usize) {
    err.position.map(|p| (p.line, p.column)).unwrap_or_else(|| panic!("no position: {err}"))
}

#[test]
fn an_unknown_key_in_the_second_provider_is_found_there() {
    let text = two_providers().replace("        public_key_file: b.pem\n", "        public_key_fil: b.pem\n");
    let err = yaml_error(&text);
    assert_eq!(at(&err), (13, 9), "{err}");
    assert!(err.message.starts_with("unknown field `public_key_fil`"), "{err}");
    assert!(err.hint.is_some());
}

#[test]
fn a_wrong_type_is_found_at_the_value() {
    let text = two_providers().replace("  audience: zta\n", "  audience: [zta]\n");
    let err = yaml_error(&text);
    assert_eq!(at(&err), (16, 13), "{err}");
    assert!(err.message.contains("invalid type: sequence"), "{err}");
}

#[test]
fn a_missing_field_is_found_at_the_map_that_lacks_it() {
    let text =
        two_providers().replace("      - id: beta\n        public_key_file", "      - public_key_file");
    let err = yaml_error(&text);
    assert_eq!(err.position.map(|p| p.line), Some(12), "{err}");
    assert_eq!(err.message, "missing field `id`");
    let err = yaml_error(&two_providers().replace(
        "tokens:\n  issuer: https://zta.test\n  audience: zta\n  signing_key_file: signing.pem\n",
        "",
    ));
    assert_eq!(err.message, "missing field `tokens`");
}

#[test]
fn an_unknown_backend_type_is_found_at_its_name() {
    let err = yaml_error(&two_providers().replace("  type: jsonl\n", "  type: jsonlines\n"));
    assert_eq!(at(&err), (22, 9), "{err}");
    assert_eq!(
        err.message,
        "unknown variant `jsonlines`, expected one of `jsonl`, `sqlite`, `postgres`, `nats`"
    );
    let err = yaml_error(&two_providers().replace(
        "  - type: static\n    audience: https://b.test",
        "  - type: statik\n    audience: https://b.test",
    ));
    assert_eq!(at(&err), (9, 11), "{err}");
    let err = yaml_error(
        &two_providers()
            .replace("  - type: static\n    audience: https://b.test", "  - audience: https://b.test"),
    );
    assert_eq!((err.position.map(|p| p.line), err.message.as_str()), (Some(9), "missing field `type`"));
}

#[test]
fn an_unknown_section_is_found_at_its_key() {
    let err = yaml_error(&format!("{}servre:\n  port: 1\n", two_providers()));
    assert_eq!(at(&err), (24, 1), "{err}");
    assert!(err.message.starts_with("unknown field `servre`"), "{err}");
}

#[test]
fn a_repeated_key_is_refused_in_yaml_and_toml() {
    let err =
        yaml_error(&two_providers().replace("  audience: zta\n", "  audience: zta\n  audience: other\n"));
    assert_eq!(at(&err), (17, 3), "{err}");
    assert!(err.message.contains("audience"), "{err}");

    let toml = "[tokens]\nissuer = 'x'\naudience = 'y'\naudience = 'z'\n";
    let err = Config::from_toml_str(toml).unwrap_err();
    assert_eq!(err.position.map(|p| p.line), Some(4), "{err}");
}

#[test]
fn the_display_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zta.yaml");
    std::fs::write(&path, two_providers().replace("  type: jsonl\n", "  type: jsonlines\n")).unwrap();
    let shown = Config::from_file(&path).unwrap_err().to_string();
    assert!(shown.starts_with(&format!("{}:22:9: unknown variant `jsonlines`", path.display())), "{shown}");
    assert!(shown.contains("\n  hint: "), "{shown}");
}
