//! `AuditRecord::write_json` writes exactly the bytes serde_json writes for the derived
//! `Serialize`, for arbitrary records (strings with quotes, backslashes, control characters and
//! non-ASCII text; every optional field present or absent; any time and offset).
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::json;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;
use zta_core::{
    Action, ActionKind, AgentId, AuditEvent, AuditRecord, AuthMethod, Basis, Effect, PolicyDigest, Resource,
};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[\\x00-\\x7f]{0,24}", "[a-z_]{1,12}"]
}

fn agent() -> impl Strategy<Value = AgentId> {
    "[a-z0-9][a-zA-Z0-9_.:@-]{0,30}".prop_map(|s| AgentId::new(s).unwrap())
}

fn time() -> impl Strategy<Value = OffsetDateTime> {
    // Whole seconds, and nanoseconds with 0 to 8 trailing zeros, so every fraction width shows.
    let nanos = (0u32..1_000_000_000, 0u32..9).prop_map(|(n, zeros)| n / 10u32.pow(zeros) * 10u32.pow(zeros));
    let offset = prop_oneof![3 => Just(0i32), 1 => -86_399i32..86_400];
    (-80_000_000_000i64..253_402_300_799, nanos, offset).prop_map(|(secs, nanos, offset)| {
        OffsetDateTime::from_unix_timestamp(secs)
            .unwrap()
            .replace_nanosecond(nanos)
            .unwrap()
            .to_offset(UtcOffset::from_whole_seconds(offset).unwrap())
    })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        text().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<bool>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ]
}

prop_compose! {
    fn record()(
        id in any::<u128>(),
        time in time(),
        event in prop::sample::select(AuditEvent::ALL.to_vec()),
        effect in prop::sample::select(vec![Effect::Allow, Effect::Deny]),
        agent_id in prop::option::of(agent()),
        auth_method in prop::option::of(prop::sample::select(vec![
            AuthMethod::AgentKey, AuthMethod::AgentSecret, AuthMethod::SessionToken, AuthMethod::Oidc, AuthMethod::Ldap,
            AuthMethod::Asserted,
        ])),
        on_behalf_of in prop::collection::vec(text(), 0..3),
        tenant in prop::option::of(text()),
        claims in prop::option::of(prop::collection::btree_map(text(), text(), 0..3)),
        action in prop::option::of((prop::sample::select(vec![
            ActionKind::ToolCall, ActionKind::Message, ActionKind::Task, ActionKind::Handoff,
            ActionKind::Delegation, ActionKind::Custom,
        ]), text())),
        resource in prop::option::of((text(), text(), prop::collection::btree_map(text(), json_value(), 0..3))),
        target_agent in prop::option::of(agent()),
        basis in prop::option::of(prop::sample::select(vec![
            Basis::Permitted, Basis::ExplicitDeny, Basis::DefaultDeny, Basis::FailClosed,
        ])),
        determining in prop::collection::vec(text(), 0..7),
        digest in prop::option::of(any::<[u8; 32]>()),
        reason in prop::option::of(text()),
        latency_us in prop::option::of(any::<u64>()),
        detail in prop::collection::btree_map(text(), json_value(), 0..3),
    ) -> AuditRecord {
        let mut r = AuditRecord::new(event, effect).with_id(Uuid::from_u128(id));
        r.time = time;
        r.agent_id = agent_id;
        r.auth_method = auth_method;
        r.on_behalf_of = on_behalf_of;
        r.tenant = tenant;
        r.claims = claims.map(std::sync::Arc::new);
        r.action = action.and_then(|(kind, name)| Action::new(kind, name).ok());
        r.resource = resource.map(|(kind, id, attrs)| {
            attrs.into_iter().fold(Resource::new(kind, id), |r, (k, v)| r.with_attribute(k, v))
        });
        r.target_agent = target_agent;
        r.basis = basis;
        r.determining = determining.into_iter().map(Into::into).collect();
        r.policy_digest = digest.map(PolicyDigest);
        r.reason = reason;
        r.latency_us = latency_us;
        r.detail = detail.into_iter().collect();
        r
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn write_json_is_byte_identical_to_serde(record in record()) {
        let mut ours = Vec::new();
        let written = record.write_json(&mut ours);
        match serde_json::to_vec(&record) {
            Ok(theirs) => {
                prop_assert!(written.is_ok(), "{written:?}");
                prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
            }
            // Years before 0 have no RFC 3339 form: both refuse.
            Err(_) => prop_assert!(written.is_err()),
        }
    }
}

#[test]
fn a_minimal_record_reads_back() {
    let record = AuditRecord::new(AuditEvent::Admin, Effect::Deny);
    let mut out = Vec::new();
    record.write_json(&mut out).unwrap();
    assert_eq!(serde_json::from_slice::<AuditRecord>(&out).unwrap(), record);
}
