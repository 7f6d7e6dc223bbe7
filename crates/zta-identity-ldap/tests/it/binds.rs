//! Agents bind as their directory accounts; groups give roles and the segment; everything else
//! is refused alike.

use std::sync::Arc;

use zta_core::{AuthError, AuthMethod, MemoryStateStore, StateStore};

use crate::support::*;

const BAD: &str = "invalid credential: wrong password or unknown user";

#[tokio::test]
async fn a_valid_bind_yields_the_agent_with_its_groups_roles_and_segment() {
    let scratch = tempfile::tempdir().unwrap();
    let provider = provider(config(&scratch));
    let principal = login(&provider, "research_bot", "research-secret").await.unwrap();
    assert_eq!(principal.agent_id.as_str(), "research_bot");
    assert_eq!(principal.subject.to_lowercase(), "uid=research_bot,ou=agents,dc=zta,dc=test");
    assert_eq!(principal.auth_method, AuthMethod::Ldap);
    assert_eq!(principal.issuer, "ldap");
    assert_eq!(principal.roles, ["reader", "researcher"]);
    assert_eq!(principal.segment.as_deref(), Some("research"));
    assert_eq!(principal.groups.len(), 2, "{:?}", principal.groups);

    let writer = login(&provider, "writer_bot", "writer-secret").await.unwrap();
    assert_eq!(
        (writer.roles.clone(), writer.segment.as_deref()),
        (vec!["writer".to_owned()], Some("writing"))
    );
}

#[tokio::test]
async fn wrong_passwords_unknown_users_and_empty_passwords_are_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let provider = provider(config(&scratch));
    let wrong = login(&provider, "research_bot", "guess").await;
    let unknown = login(&provider, "ghost_bot", "guess").await;
    assert_eq!(detail(wrong), BAD);
    assert_eq!(detail(unknown), BAD);
    let empty = login(&provider, "research_bot", "").await.unwrap_err();
    assert_eq!(empty.to_string(), "invalid credential");
    assert_eq!(empty.detail(), "invalid credential: empty password");
}

#[tokio::test]
async fn a_disabled_account_is_refused_with_its_password() {
    let scratch = tempfile::tempdir().unwrap();
    let provider = provider(config(&scratch));
    let refused = login(&provider, "disabled_bot", "disabled-secret").await.unwrap_err();
    assert!(matches!(refused, AuthError::Invalid { .. }), "{refused:?}");
}

#[tokio::test]
async fn injection_in_the_user_name_reaches_no_broader_search() {
    let scratch = tempfile::tempdir().unwrap();
    let provider = provider(config(&scratch));
    let long = "a".repeat(10 * 1024);
    for name in ["*", "x)(uid=*", "admin)(|(uid=*", "research_bot\0", "research_bot)(uid=*", long.as_str()] {
        let refused = login(&provider, name, "research-secret").await.unwrap_err();
        assert_eq!(refused.detail(), BAD, "{:?}", name.get(..20));
    }
    // A name that needs escaping in filters and DNs finds and binds its own account (and is
    // then refused only because `,` and `+` cannot be in an agent id).
    let refused = login(&provider, "comma,plus+bot", "comma-secret").await.unwrap_err();
    assert_eq!(refused.detail(), "invalid credential: the account's agent attribute is not a valid agent id");
    assert_eq!(detail(login(&provider, "comma,plus+bot", "guess").await), BAD);
}

#[tokio::test]
async fn lockout_counts_concurrent_wrong_passwords() {
    let scratch = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let mut config = config(&scratch);
    config["lockout"] = serde_json::json!({"max_failures": 3, "window": "5m"});
    let provider = Arc::new(provider_with(config, state.clone()).unwrap());
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move { login(&provider, "analysis_bot", "guess").await })
        })
        .collect();
    let (mut refused, mut locked) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Err(AuthError::LockedOut) => locked += 1,
            Err(AuthError::Invalid { .. }) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    // Every attempt that reached the directory was counted, however they interleaved.
    assert_eq!(refused + locked, 10);
    assert!(refused >= 3, "{refused}");
    assert_eq!(state.failures("ldap-lockout:analysis_bot").await.unwrap(), refused);
    assert_eq!(login(&provider, "analysis_bot", "analysis-secret").await.unwrap_err(), AuthError::LockedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_parallel_logins_share_a_pool_of_eight() {
    let scratch = tempfile::tempdir().unwrap();
    let provider = Arc::new(provider(config(&scratch)));
    let logins: Vec<_> = (0..200)
        .map(|i| {
            let provider = provider.clone();
            let (user, password) = if i % 2 == 0 {
                ("research_bot", "research-secret")
            } else {
                ("writer_bot", "writer-secret")
            };
            tokio::spawn(async move { login(&provider, user, password).await })
        })
        .collect();
    for login in logins {
        login.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_dn_template_binds_directly() {
    let scratch = tempfile::tempdir().unwrap();
    let mut config = config(&scratch);
    config["dn_template"] = serde_json::json!("uid={username},ou=agents,dc=zta,dc=test");
    let provider = provider(config);
    let principal = login(&provider, "research_bot", "research-secret").await.unwrap();
    assert_eq!(
        (principal.roles.clone(), principal.segment.as_deref()),
        (vec!["reader".to_owned(), "researcher".to_owned()], Some("research"))
    );
    assert_eq!(detail(login(&provider, "research_bot", "guess").await), BAD);
    assert_eq!(detail(login(&provider, "ghost_bot", "guess").await), BAD);
    // Escaped into the DN: no other entry is reached.
    assert_eq!(detail(login(&provider, "research_bot,ou=agents", "research-secret").await), BAD);
    assert!(matches!(
        login(&provider, "disabled_bot", "disabled-secret").await,
        Err(AuthError::Invalid { .. })
    ));
}

#[tokio::test]
async fn the_segment_of_a_directory_agent_comes_from_its_groups() {
    use zta_core::{AgentId, IdentityProvider};
    let scratch = tempfile::tempdir().unwrap();
    let provider = provider(config(&scratch));
    for (id, expected) in [
        ("writer_bot", Some("writing")),
        ("research_bot", Some("research")),
        ("analysis_bot", None),
        ("ghost_bot", None),
    ] {
        assert_eq!(provider.segment_of(&AgentId::new(id).unwrap()).await.as_deref(), expected, "{id}");
    }
}

#[tokio::test]
async fn a_reused_account_still_binds_with_its_password_each_time() {
    let scratch = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    for dn_template in [false, true] {
        let mut config = config(&scratch);
        config["group_cache"] = serde_json::json!("10m");
        if dn_template {
            config["dn_template"] = serde_json::json!("uid={username},ou=agents,dc=zta,dc=test");
        }
        let provider = provider_with(config, state.clone()).unwrap();
        // Found (and, for a user that does not exist, not found) once ...
        login(&provider, "writer_bot", "writer-secret").await.unwrap();
        assert_eq!(detail(login(&provider, "ghost_bot", "guess").await), BAD);
        // ... then every password is still checked by the directory, and a refused one counted.
        assert_eq!(detail(login(&provider, "writer_bot", "guess").await), BAD);
        assert_eq!(detail(login(&provider, "WRITER_BOT", "guess").await), BAD);
        assert_eq!(detail(login(&provider, "ghost_bot", "guess").await), BAD);
        login(&provider, "writer_bot", "writer-secret").await.unwrap();
    }
    assert_eq!(state.failures("ldap-lockout:writer_bot").await.unwrap(), 4);
    assert_eq!(state.failures("ldap-lockout:ghost_bot").await.unwrap(), 4);
}

#[tokio::test]
async fn groups_found_by_search_and_groups_of_groups_up_to_the_configured_depth() {
    let scratch = tempfile::tempdir().unwrap();
    let group = |cn: &str| format!("cn={cn},ou=groups,dc=zta,dc=test");
    let groups_of = |via: &str, nested: u8| {
        let mut config = config(&scratch);
        config["groups"] =
            serde_json::json!({"via": via, "base": "ou=groups,dc=zta,dc=test", "nested": nested});
        config["roles"][group("crew")] = serde_json::json!("crew");
        config["roles"][group("everyone")] = serde_json::json!("everyone");
        let provider = provider(config);
        async move {
            let principal = login(&provider, "research_bot", "research-secret").await.unwrap();
            let mut groups: Vec<String> = principal.groups.iter().map(|g| g.to_lowercase()).collect();
            groups.sort();
            (groups, principal.roles.clone())
        }
    };
    let direct = vec![group("researchers"), group("tools-readers")];
    for via in ["search", "member_of"] {
        assert_eq!(
            groups_of(via, 0).await,
            (direct.clone(), vec!["reader".into(), "researcher".into()]),
            "{via}"
        );
    }
    let (groups, roles) = groups_of("search", 1).await;
    assert_eq!(groups, [group("crew"), group("researchers"), group("tools-readers")]);
    assert_eq!(roles, ["crew", "reader", "researcher"]);
    // Two levels reach everyone; everyone's own group (crew again) is not followed twice.
    for via in ["search", "member_of"] {
        let (groups, roles) = groups_of(via, 5).await;
        assert_eq!(groups, [group("crew"), group("everyone"), group("researchers"), group("tools-readers")]);
        assert_eq!(roles, ["crew", "everyone", "reader", "researcher"], "{via}");
    }
    // Nesting needs a base to search groups under.
    let mut config = config(&scratch);
    config["groups"] = serde_json::json!({"via": "member_of", "nested": 1});
    let refused = provider_with(config, Arc::new(MemoryStateStore::new())).unwrap_err();
    assert!(refused.to_string().contains("groups.base"), "{refused}");
}
