//! Signing deliveries as the Standard Webhooks specification says: the
//! secret is `whsec_` and the base64 of random bytes; a delivery carries
//! `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`:
//! `v1,` and the base64 of the HMAC-SHA256, keyed with the secret's bytes,
//! of `{id}.{timestamp}.{body}`. During a rotation two signatures are
//! sent, separated by a space, so receivers may hold either secret.

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::domain::{DomainError, DomainResult};

const PREFIX: &str = "whsec_";
/// 32 random bytes: within the specification's 24 to 64.
const SECRET_BYTES: usize = 32;

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a secret.
fn key_of(secret: &str) -> DomainResult<Vec<u8>> {
    let encoded = secret
        .strip_prefix(PREFIX)
        .ok_or_else(|| DomainError::internal("a webhook secret without its whsec_ prefix"))?;
    STANDARD
        .decode(encoded)
        .map_err(|_| DomainError::internal("a webhook secret that is not base64"))
}

/// `v1,<signature>` of one delivery with one secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> DomainResult<String> {
    let key = key_of(secret)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
        .map_err(|_| DomainError::internal("an HMAC key of a length HMAC refuses"))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: a signature per secret, space-separated.
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> DomainResult<String> {
    let signatures = secrets
        .iter()
        .map(|secret| sign(secret, id, timestamp, body))
        .collect::<DomainResult<Vec<_>>>()?;
    Ok(signatures.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example (standard-webhooks, spec/standard-webhooks.md).
    #[test]
    fn the_specifications_example_signs_the_same() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let timestamp = 1614265330;
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, timestamp, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_random_and_well_formed() {
        let a = new_secret();
        assert!(a.starts_with("whsec_"));
        assert_eq!(key_of(&a).unwrap().len(), SECRET_BYTES);
        assert_ne!(a, new_secret());
        let both = header(&[&a, &new_secret()], "evt_1", 1, b"{}").unwrap();
        assert_eq!(both.split(' ').count(), 2);
    }
}
