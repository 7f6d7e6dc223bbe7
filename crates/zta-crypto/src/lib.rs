//! Plumbing shared by the ZTA crates that handle keys and JWTs, so each thing is done once:
//!
//! * [`pem`]: PEM (RFC 7468) key files and the Ed25519 SubjectPublicKeyInfo, decoded strictly
//!   into buffers that are zeroed on drop;
//! * [`jose`]: jsonwebtoken's crypto provider and its start-up self-test, the compact-JWS split
//!   and protected-header read (refusing `jku`, `x5u`, `x5c`, `jwk`, `crit`), and the denial each
//!   jsonwebtoken error stands for.
//!
//! It holds no backend logic: token services and identity providers build on it.

pub mod jose;
pub mod pem;
