//! The `tokens` config: defaults, duration strings, unknown keys and out-of-range values.

use std::{sync::Arc, time::Duration};

use zta_core::MemoryStateStore;
use zta_token::{Algorithm, Error, SigningKey, TokenConfig, TokenService};

fn parse(json: &str) -> Result<TokenConfig, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn defaults_fill_in_everything_but_issuer_and_audience() {
    let c = parse(r#"{"issuer":"https://zta.test","audience":"agents"}"#).unwrap();
    assert_eq!(c, TokenConfig::new("https://zta.test", "agents"));
    assert_eq!(c.algorithm, Algorithm::EdDSA);
    assert_eq!(c.access_ttl, Duration::from_secs(300));
    assert_eq!(c.refresh_ttl, Duration::from_secs(3600));
    assert_eq!(c.max_session, Duration::from_secs(12 * 3600));
    assert_eq!(c.leeway, Duration::from_secs(5));
    assert_eq!(c.cache_capacity, 10_000);
    assert_eq!(c.rotation_overlap, None);
    assert_eq!(c.effective_rotation_overlap(), Duration::from_secs(3600));
    c.validate().unwrap();

    assert!(parse(r#"{"issuer":"https://zta.test"}"#).is_err());
    assert!(parse(r#"{"audience":"agents"}"#).is_err());
}

#[test]
fn durations_and_algorithms_parse() {
    let c = parse(
        r#"{"issuer":"i","audience":"a","algorithm":"ES256","access_ttl":"30s","refresh_ttl":"1h30m",
            "max_session":"8h","leeway":"0s","rotation_overlap":"2d","cache_capacity":0}"#,
    )
    .unwrap();
    assert_eq!(c.algorithm, Algorithm::ES256);
    assert_eq!(c.access_ttl, Duration::from_secs(30));
    assert_eq!(c.refresh_ttl, Duration::from_secs(5400));
    assert_eq!(c.max_session, Duration::from_secs(8 * 3600));
    assert_eq!(c.leeway, Duration::ZERO);
    assert_eq!(c.rotation_overlap, Some(Duration::from_secs(172_800)));
    c.validate().unwrap();
    // Serializes back to the same text form.
    let again: TokenConfig = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
    assert_eq!(again, c);
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    assert!(
        parse(r#"{"issuer":"i","audience":"a","acess_ttl":"5m"}"#)
            .unwrap_err()
            .to_string()
            .contains("unknown field")
    );
    assert!(parse(r#"{"issuer":"i","audience":"a","algorithm":"HS256"}"#).is_err());
    assert!(parse(r#"{"issuer":"i","audience":"a","algorithm":"none"}"#).is_err());
    for bad in [r#""5""#, r#""-5m""#, r#""1.5h""#, r#""5 minutes""#, "300", r#""""#] {
        let json = format!(r#"{{"issuer":"i","audience":"a","access_ttl":{bad}}}"#);
        assert!(parse(&json).is_err(), "{bad} accepted");
    }
}

#[test]
fn out_of_range_values_are_refused_with_the_field_name() {
    type Breaks = fn(&mut TokenConfig);
    let cases: [(&str, Breaks); 11] = [
        ("access_ttl", |c| c.access_ttl = Duration::ZERO),
        ("access_ttl", |c| c.access_ttl = Duration::from_secs(2 * 3600)),
        ("refresh_ttl", |c| c.refresh_ttl = Duration::from_secs(60)),
        ("refresh_ttl", |c| c.refresh_ttl = Duration::from_secs(31 * 86_400)),
        ("max_session", |c| c.max_session = Duration::from_secs(60)),
        ("max_session", |c| c.max_session = Duration::from_secs(31 * 86_400)),
        ("leeway", |c| c.leeway = Duration::from_secs(61)),
        ("rotation_overlap", |c| c.rotation_overlap = Some(Duration::from_secs(60))),
        ("issuer", |c| c.issuer = " ".into()),
        ("audience", |c| c.audience = "a\nb".into()),
        ("cache_capacity", |c| c.cache_capacity = usize::MAX),
    ];
    for (field, breaks) in cases {
        let mut c = TokenConfig::new("https://zta.test", "agents");
        breaks(&mut c);
        let err = c.validate().unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{field}: {err}");
        assert!(err.to_string().contains(&format!("`{field}`")), "{field}: {err}");
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        assert!(TokenService::new(c, key, Arc::new(MemoryStateStore::new())).is_err());
    }
}

#[test]
fn key_must_match_the_configured_algorithm() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let err =
        TokenService::new(TokenConfig::new("i", "a"), key, Arc::new(MemoryStateStore::new())).unwrap_err();
    assert!(matches!(err, Error::AlgorithmMismatch { key: Algorithm::ES256, configured: Algorithm::EdDSA }));
}
