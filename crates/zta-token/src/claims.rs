//! The wire shape of ZTA session tokens: header and claims.

use std::{borrow::Cow, collections::BTreeMap};

use serde::{Deserialize, Serialize};

/// Header `typ` of access tokens.
pub(crate) const ACCESS_TYP: &str = "zta-at+jwt";
/// Header `typ` of refresh tokens.
pub(crate) const REFRESH_TYP: &str = "zta-rt+jwt";
/// Deepest accepted `act` nesting (and longest delegation chain issued).
pub(crate) const MAX_DELEGATION_DEPTH: usize = 16;

/// Access or refresh; carried both in the header `typ` and in the `ztt` claim, and both must
/// agree with what the caller expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TokenType {
    Access,
    Refresh,
}

impl TokenType {
    pub(crate) fn typ(self) -> &'static str {
        match self {
            Self::Access => ACCESS_TYP,
            Self::Refresh => REFRESH_TYP,
        }
    }

    pub(crate) fn from_typ(typ: &str) -> Option<Self> {
        match typ {
            ACCESS_TYP => Some(Self::Access),
            REFRESH_TYP => Some(Self::Refresh),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

/// The header we write.
#[derive(Serialize)]
pub(crate) struct HeaderOut<'a> {
    pub(crate) alg: &'static str,
    pub(crate) typ: &'static str,
    pub(crate) kid: &'a str,
}

/// Just the `typ` header member, for the cheap `accepts` check.
#[derive(Deserialize)]
pub(crate) struct TypOnly<'a> {
    #[serde(borrow, default)]
    pub(crate) typ: Option<Cow<'a, str>>,
}

/// RFC 8693 actor claim: `{"sub": ..., "act": {...}}`, the least recent party most deeply
/// nested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Act {
    pub(crate) sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) act: Option<Box<Act>>,
}

impl Act {
    /// Nests a delegation chain (original requester first): the last party becomes the
    /// outermost `act`, the original requester the innermost.
    pub(crate) fn from_chain(chain: &[String]) -> Option<Self> {
        chain.iter().fold(None, |inner, sub| Some(Self { sub: sub.clone(), act: inner.map(Box::new) }))
    }

    /// The chain back in `Principal::delegation` order, or `None` if nested too deeply.
    pub(crate) fn to_chain(&self) -> Option<Vec<String>> {
        let mut chain = Vec::new();
        let mut next = Some(self);
        while let Some(act) = next {
            if chain.len() >= MAX_DELEGATION_DEPTH {
                return None;
            }
            chain.push(act.sub.clone());
            next = act.act.as_deref();
        }
        chain.reverse();
        Some(chain)
    }
}

/// Every claim of a session token. The registered claims are optional here only so that a
/// missing one is reported precisely (by jsonwebtoken's `required_spec_claims` or by us)
/// instead of as a parse error; tokens we issue always carry all of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) aud: Option<String>,
    /// The agent id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) jti: Option<String>,
    /// Token type, `access` or `refresh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ztt: Option<TokenType>,
    /// Token family: shared by every token descending from one login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fam: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) groups: Vec<String>,
    /// Segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) seg: Option<String>,
    /// Tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tid: Option<String>,
    /// The original (primary) authentication method, RFC 8176 style list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) act: Option<Act>,
    /// Issuer of the primary identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) src_iss: Option<String>,
    /// Further claims the primary identity's issuer vouched for (`Principal::claims`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) src_claims: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_chain_roundtrips_with_original_requester_innermost() {
        let chain = vec!["user:alice".to_owned(), "planner".to_owned(), "router".to_owned()];
        let act = Act::from_chain(&chain).unwrap();
        assert_eq!(act.sub, "router");
        assert_eq!(act.act.as_ref().unwrap().act.as_ref().unwrap().sub, "user:alice");
        assert_eq!(act.to_chain().unwrap(), chain);
        assert!(Act::from_chain(&[]).is_none());
    }

    #[test]
    fn too_deep_act_is_refused() {
        let chain: Vec<String> = (0..=MAX_DELEGATION_DEPTH).map(|i| format!("a{i}")).collect();
        assert!(Act::from_chain(&chain).unwrap().to_chain().is_none());
    }
}
