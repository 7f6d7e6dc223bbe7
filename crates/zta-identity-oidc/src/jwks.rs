//! The signing keys of one issuer: fetched from its `jwks_uri`, refreshed in the background,
//! fetched again on an unknown `kid` at most once per `min_refetch`, and kept while the issuer
//! is unreachable (last known good).

use std::{
    collections::HashMap,
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm},
};
use reqwest::Client;
use serde::Deserialize;
use tokio::sync::Mutex;
use zta_core::{AuthError, KeyFetches};

use crate::http::{self, FetchError};

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// A verification key from the issuer's key set.
pub(crate) struct Key {
    pub(crate) decoding: DecodingKey,
    /// The algorithms this key may verify: its own `alg` if it names one, else every configured
    /// algorithm of its key type.
    pub(crate) algorithms: Vec<Algorithm>,
    /// The issuer the key is for, when the key set says (Entra: `{tenantid}` template).
    pub(crate) issuer: Option<String>,
}

/// The keys of one fetch.
#[derive(Default)]
pub(crate) struct Keys {
    pub(crate) by_kid: HashMap<String, Arc<Key>>,
    /// Counts successful fetches; a cached token checks its key is still in the set.
    pub(crate) generation: u64,
}

/// Where the keys are: a known `jwks_uri`, or a discovery document not read yet (the issuer
/// was unreachable at start-up).
pub(crate) enum Uri {
    Known(String),
    Later { discovery: String, issuer: String },
}

impl Uri {
    fn text(&self) -> &str {
        match self {
            Self::Known(uri) => uri,
            Self::Later { discovery, .. } => discovery,
        }
    }
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

/// Reads a discovery document: it must name `issuer` exactly, and a `jwks_uri` that is https
/// (or http on loopback).
pub(crate) async fn discover(client: &Client, url: &str, issuer: &str) -> Result<Uri, FetchError> {
    let metadata: Metadata = http::get_json(client, url).await?;
    if metadata.issuer != issuer {
        return Err(FetchError::wrong(format!(
            "{url} names the issuer `{}`, not `{issuer}`",
            zta_crypto::jose::echo(&metadata.issuer)
        )));
    }
    http::issuer_url("jwks_uri", &metadata.jwks_uri).map_err(|e| FetchError::wrong(format!("{url}: {e}")))?;
    Ok(Uri::Known(metadata.jwks_uri))
}

struct FetchState {
    uri: Uri,
    /// When a fetch last started.
    last_attempt: Option<Instant>,
    /// Whether any fetch has succeeded.
    loaded: bool,
    /// Why the last fetch failed, if it did.
    last_error: Option<FetchError>,
}

/// How the fetches of a provider's key sets ended, counted without a lock.
#[derive(Debug, Default)]
pub(crate) struct FetchCounts {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl FetchCounts {
    fn count(&self, ok: bool) {
        let counter = if ok { &self.ok } else { &self.failed };
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn read(&self) -> KeyFetches {
        KeyFetches { ok: self.ok.load(Relaxed), failed: self.failed.load(Relaxed) }
    }
}

/// The key cache of one `jwks_uri`.
pub(crate) struct KeySet {
    client: Client,
    algorithms: Vec<Algorithm>,
    min_refetch: Duration,
    max_keys: usize,
    keys: ArcSwap<Keys>,
    fetch: Mutex<FetchState>,
    /// Shared by the provider's key sets.
    counts: Arc<FetchCounts>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("keys", &self.keys.load().by_kid.len()).finish_non_exhaustive()
    }
}

/// Why a key could not be had.
pub(crate) enum Lookup {
    /// No key with this id, and none may be fetched now (or the fetch did not bring it).
    Unknown,
    /// No key could ever be fetched: the issuer is unreachable or answers garbage.
    Unavailable(String),
}

impl From<Lookup> for AuthError {
    fn from(lookup: Lookup) -> Self {
        match lookup {
            Lookup::Unknown => AuthError::invalid("unknown key id"),
            Lookup::Unavailable(why) => {
                AuthError::unavailable(format!("no signing keys from the issuer: {why}"))
            }
        }
    }
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    pub(crate) fn new(
        uri: Uri,
        client: Client,
        algorithms: Vec<Algorithm>,
        min_refetch: Duration,
        max_keys: usize,
        counts: Arc<FetchCounts>,
    ) -> Self {
        Self {
            client,
            algorithms,
            min_refetch,
            max_keys,
            keys: ArcSwap::from_pointee(Keys::default()),
            fetch: Mutex::new(FetchState { uri, last_attempt: None, loaded: false, last_error: None }),
            counts,
        }
    }

    /// The current keys.
    pub(crate) fn current(&self) -> arc_swap::Guard<Arc<Keys>> {
        self.keys.load()
    }

    /// The key `kid`: from the cache, or from one fetch when none has started within
    /// `min_refetch` (concurrent callers wait for that one fetch instead of starting their own).
    pub(crate) async fn get(&self, kid: &str) -> Result<Arc<Key>, Lookup> {
        if let Some(key) = self.keys.load().by_kid.get(kid) {
            return Ok(key.clone());
        }
        let mut state = self.fetch.lock().await;
        if let Some(key) = self.keys.load().by_kid.get(kid) {
            return Ok(key.clone());
        }
        let due = state.last_attempt.is_none_or(|at| at.elapsed() >= self.min_refetch);
        if due {
            self.fetch_locked(&mut state).await;
        }
        if let Some(key) = self.keys.load().by_kid.get(kid) {
            return Ok(key.clone());
        }
        match (&state.loaded, &state.last_error) {
            (false, Some(why)) => Err(Lookup::Unavailable(why.message.clone())),
            (false, None) => Err(Lookup::Unavailable("not fetched yet".to_owned())),
            (true, _) => Err(Lookup::Unknown),
        }
    }

    /// Fetches now (the background refresh and start-up), whatever the interval.
    pub(crate) async fn refresh(&self) -> Result<(), FetchError> {
        let mut state = self.fetch.lock().await;
        self.fetch_locked(&mut state).await;
        state.last_error.clone().map_or(Ok(()), Err)
    }

    async fn fetch_locked(&self, state: &mut FetchState) {
        state.last_attempt = Some(Instant::now());
        if let Uri::Later { discovery, issuer } = &state.uri {
            match discover(&self.client, discovery, issuer).await {
                Ok(uri) => state.uri = uri,
                Err(why) => {
                    tracing::warn!(target: "zta_identity_oidc", url = %discovery, error = %why, "discovery failed");
                    self.counts.count(false);
                    state.last_error = Some(why);
                    return;
                }
            }
        }
        match self.download(state.uri.text()).await {
            Ok(by_kid) => {
                let generation = self.keys.load().generation + 1;
                tracing::debug!(target: "zta_identity_oidc", uri = %state.uri.text(), keys = by_kid.len(), "signing keys fetched");
                self.keys.store(Arc::new(Keys { by_kid, generation }));
                self.counts.count(true);
                state.loaded = true;
                state.last_error = None;
            }
            Err(why) => {
                tracing::warn!(target: "zta_identity_oidc", uri = %state.uri.text(), error = %why, "signing keys not fetched; keeping the last known good");
                self.counts.count(false);
                state.last_error = Some(why);
            }
        }
    }

    async fn download(&self, uri: &str) -> Result<HashMap<String, Arc<Key>>, FetchError> {
        let raw: RawSet = http::get_json(&self.client, uri).await?;
        let mut by_kid = HashMap::new();
        for value in raw.keys {
            if by_kid.len() == self.max_keys {
                tracing::warn!(target: "zta_identity_oidc", %uri, max = self.max_keys, "key set larger than `jwks.max_keys`; the rest is ignored");
                break;
            }
            match self.key(value) {
                Ok((kid, key)) => {
                    by_kid.insert(kid, Arc::new(key));
                }
                Err(why) => tracing::debug!(target: "zta_identity_oidc", %uri, %why, "key skipped"),
            }
        }
        if by_kid.is_empty() {
            return Err(FetchError::wrong(format!("{uri} holds no usable signing key")));
        }
        Ok(by_kid)
    }

    /// One key of the set, or why it is skipped (encryption keys, symmetric keys, keys for
    /// algorithms not configured, short RSA keys, keys without `kid`).
    fn key(&self, value: serde_json::Value) -> Result<(String, Key), String> {
        let issuer = value.get("issuer").and_then(|i| i.as_str()).map(str::to_owned);
        let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("not a JWK: {e}"))?;
        let kid = jwk.common.key_id.clone().ok_or("no `kid`")?;
        if kid.len() > zta_crypto::jose::MAX_KID_LEN {
            return Err("`kid` too long".to_owned());
        }
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
        {
            return Err("not a signing key".to_owned());
        }
        let family: &[Algorithm] = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                let modulus = base64_len(&rsa.n) * 8;
                if modulus < MIN_RSA_BITS {
                    return Err(format!("RSA key of {modulus} bits"));
                }
                &[
                    Algorithm::RS256,
                    Algorithm::RS384,
                    Algorithm::RS512,
                    Algorithm::PS256,
                    Algorithm::PS384,
                    Algorithm::PS512,
                ]
            }
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => &[Algorithm::ES256],
                EllipticCurve::P384 => &[Algorithm::ES384],
                _ => return Err("unsupported curve".to_owned()),
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                &[Algorithm::EdDSA]
            }
            _ => return Err("unsupported key type".to_owned()),
        };
        let mut algorithms: Vec<Algorithm> =
            self.algorithms.iter().copied().filter(|a| family.contains(a)).collect();
        if let Some(alg) = jwk.common.key_algorithm {
            let named = key_algorithm(alg).ok_or("unsupported `alg`")?;
            algorithms.retain(|a| *a == named);
        }
        if algorithms.is_empty() {
            return Err("no configured algorithm fits the key".to_owned());
        }
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable key: {e}"))?;
        Ok((kid, Key { decoding, algorithms, issuer }))
    }
}

/// Refreshes `set` every `every` (every `retry` while fetches fail) until the set is dropped.
pub(crate) fn spawn_refresh(
    set: &Arc<KeySet>,
    every: Duration,
    retry: Duration,
) -> tokio::task::JoinHandle<()> {
    let weak: Weak<KeySet> = Arc::downgrade(set);
    tokio::spawn(async move {
        let mut wait = every;
        loop {
            tokio::time::sleep(wait).await;
            let Some(set) = weak.upgrade() else { return };
            wait = if set.refresh().await.is_err() { retry.min(every) } else { every };
        }
    })
}

/// Decoded length of a base64url text.
fn base64_len(text: &str) -> usize {
    text.trim_end_matches('=').len() * 3 / 4
}

fn key_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}
