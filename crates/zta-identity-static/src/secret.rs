//! Agent secrets: argon2id PHC strings, the minimum parameters we accept, and verification.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version,
    password_hash::{Output, ParamsString, PasswordHashString, SaltString},
};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use zta_core::AuthError;

use crate::Error;

/// Smallest memory cost accepted, in KiB (the OWASP minimum for argon2id: 19 MiB).
pub(crate) const MIN_M_COST: u32 = 19_456;
/// Smallest iteration count accepted together with [`MIN_M_COST`].
pub(crate) const MIN_T_COST: u32 = 2;
/// Smallest parallelism accepted.
pub(crate) const MIN_P_COST: u32 = 1;
/// Shortest hash output accepted, in bytes.
const MIN_OUTPUT_LEN: usize = 16;
/// Shortest salt accepted, in bytes.
const MIN_SALT_LEN: usize = 16;

/// Hashes `secret` into an argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) with the
/// OWASP parameters and a fresh 16-byte random salt, ready for `secret_hash` in the config.
/// Refuses an empty secret.
pub fn hash_secret(secret: &str) -> Result<String, Error> {
    if secret.is_empty() {
        return Err(Error::Hash("the secret is empty".into()));
    }
    hash_with(secret.as_bytes(), default_params()?).map(|h| h.as_str().to_owned())
}

/// The parameters [`hash_secret`] uses: the OWASP minimum for argon2id.
pub(crate) fn default_params() -> Result<Params, Error> {
    Params::new(MIN_M_COST, MIN_T_COST, MIN_P_COST, None)
        .map_err(|e| Error::Hash(format!("argon2 parameters: {e}")))
}

/// A hash that no secret matches: random salt and random output, with `params`. Verifying
/// against it costs exactly what verifying against a real hash with `params` costs, and it is
/// made without hashing anything.
pub(crate) fn dummy_hash(params: &Params) -> Result<PasswordHashString, Error> {
    let mut salt = [0u8; MIN_SALT_LEN];
    let mut output = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| Error::Hash("no randomness for the salt".into()))?;
    aws_lc_rs::rand::fill(&mut output).map_err(|_| Error::Hash("no randomness".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Hash(e.to_string()))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| Error::Hash(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).map_err(|e| Error::Hash(e.to_string()))?),
    };
    Ok(hash.serialize())
}

/// Hashes with the given parameters and a random salt.
pub(crate) fn hash_with(secret: &[u8], params: Params) -> Result<PasswordHashString, Error> {
    let mut salt = [0u8; MIN_SALT_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| Error::Hash("no randomness for the salt".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Hash(e.to_string()))?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let hash = hasher.hash_password(secret, &salt).map_err(|e| Error::Hash(e.to_string()))?;
    Ok(hash.serialize())
}

/// Checks a configured PHC string: argon2id, version 19, at least the OWASP parameters, a real
/// salt and output. Returns the parsed hash and its parameters.
pub(crate) fn check_phc(phc: &str) -> Result<(PasswordHashString, Params), String> {
    let hash = PasswordHash::new(phc.trim())
        .map_err(|e| format!("not a PHC hash string ({e}); expected `$argon2id$v=19$m=...`"))?;
    if hash.algorithm.as_str() != "argon2id" {
        return Err(format!("algorithm `{}` is not accepted; only `argon2id` is", hash.algorithm.as_str()));
    }
    if hash.version != Some(0x13) {
        return Err("only argon2 version 19 (`v=19`) is accepted".into());
    }
    let params = Params::try_from(&hash).map_err(|e| format!("invalid argon2 parameters: {e}"))?;
    if params.m_cost() < MIN_M_COST || params.t_cost() < MIN_T_COST || params.p_cost() < MIN_P_COST {
        return Err(format!(
            "argon2 parameters m={},t={},p={} are too weak; the minimum is m={MIN_M_COST},t={MIN_T_COST},p={MIN_P_COST}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        ));
    }
    if !params.keyid().is_empty() || !params.data().is_empty() {
        return Err("argon2 `keyid` and `data` parameters are not supported".into());
    }
    let salt_len = hash.salt.map_or(0, |s| {
        let mut buf = [0u8; 64];
        s.decode_b64(&mut buf).map_or(0, <[u8]>::len)
    });
    if salt_len < MIN_SALT_LEN {
        return Err(format!("the salt must be at least {MIN_SALT_LEN} bytes"));
    }
    if hash.hash.is_none_or(|h| h.len() < MIN_OUTPUT_LEN) {
        return Err(format!("the hash output must be at least {MIN_OUTPUT_LEN} bytes"));
    }
    Ok((hash.serialize(), params))
}

/// Verifies `secret` against `hash` in `memory` (argon2's working memory, grown as the hash's
/// parameters need and kept for the next call), comparing in constant time. CPU-heavy: call
/// it from a blocking thread.
pub(crate) fn verify(hash: &PasswordHashString, secret: &[u8], memory: &mut Vec<Block>) -> bool {
    let parsed = hash.password_hash();
    let (Ok(params), Some(salt), Some(expected)) = (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    argon2.hash_password_into_with_memory(secret, salt, out, memory.as_mut_slice()).is_ok()
        && bool::from(expected.as_bytes().ct_eq(out))
}

/// Runs secret verifications with bounded memory: at most `slots` at once, each in a working
/// buffer that is reused rather than allocated per run (a 19 MiB allocation per run, spread
/// over the blocking pool's threads, kept the allocator's per-thread arenas full).
pub(crate) struct Verifier {
    slots: Arc<Semaphore>,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    max_wait: Duration,
}

impl Verifier {
    pub(crate) fn new(slots: usize, max_wait: Duration) -> Self {
        Self { slots: Arc::new(Semaphore::new(slots)), buffers: Arc::default(), max_wait }
    }

    /// Verifies `secret` against `hash` on a blocking thread once a slot is free; refuses as
    /// unavailable if none frees up within `max_wait`.
    pub(crate) async fn verify(
        &self,
        hash: Arc<PasswordHashString>,
        secret: SecretString,
    ) -> Result<bool, AuthError> {
        let slot = tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AuthError::unavailable("too many secret verifications at once"))?
            .map_err(|_| AuthError::unavailable("secret verification is shut down"))?;
        let buffers = self.buffers.clone();
        // The slot and buffer are held until the run ends, even if this future is dropped.
        tokio::task::spawn_blocking(move || {
            let mut memory = buffers.lock().map(|mut b| b.pop()).ok().flatten().unwrap_or_default();
            let matched = verify(&hash, secret.expose_secret().as_bytes(), &mut memory);
            if let Ok(mut b) = buffers.lock() {
                b.push(memory);
            }
            drop(slot);
            matched
        })
        .await
        .map_err(|_| AuthError::unavailable("secret verification task failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trips_and_passes_the_policy() {
        let phc = hash_secret("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let (hash, _) = check_phc(&phc).unwrap();
        let mut memory = Vec::new();
        assert!(verify(&hash, b"correct horse", &mut memory));
        assert!(!verify(&hash, b"correct horsf", &mut memory));
        assert!(verify(&hash, b"correct horse", &mut memory), "a reused buffer gives the same result");
    }

    #[test]
    fn dummy_hash_matches_nothing_and_passes_the_policy() {
        let dummy = dummy_hash(&default_params().unwrap()).unwrap();
        let (checked, params) = check_phc(dummy.as_str()).unwrap();
        assert_eq!((params.m_cost(), params.t_cost(), params.p_cost()), (MIN_M_COST, MIN_T_COST, MIN_P_COST));
        assert!(!verify(&checked, b"", &mut Vec::new()));
        assert!(!verify(&checked, b"anything", &mut Vec::new()));
        assert_ne!(dummy.as_str(), dummy_hash(&default_params().unwrap()).unwrap().as_str());
    }

    #[test]
    fn empty_secret_is_refused() {
        assert!(matches!(hash_secret(""), Err(Error::Hash(_))));
    }

    #[test]
    fn weak_or_foreign_hashes_are_refused() {
        let weak = hash_with(b"x", Params::new(MIN_M_COST - 1, 2, 1, None).unwrap()).unwrap();
        assert!(check_phc(weak.as_str()).unwrap_err().contains("too weak"));
        let weak_t = hash_with(b"x", Params::new(MIN_M_COST, 1, 1, None).unwrap()).unwrap();
        assert!(check_phc(weak_t.as_str()).unwrap_err().contains("too weak"));
        let i = PasswordHash::generate(
            Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default()),
            b"x",
            &SaltString::encode_b64(&[7u8; 16]).unwrap(),
        )
        .unwrap()
        .to_string();
        assert!(check_phc(&i).unwrap_err().contains("`argon2i`"));
        assert!(check_phc("5f4dcc3b5aa765d61d8327deb882cf99").is_err());
    }
}
