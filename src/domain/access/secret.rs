//! Random secrets handed out once and stored only as hashes: API keys'
//! bearer tokens and survey links' tokens.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 bits of randomness, URL-safe base64 (43 characters) after `prefix`.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 of a token, hex: what is stored and looked up. The token is
/// random, so no salt or slow hash is needed (nothing to guess).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_fixed_length() {
        let a = random_token("x_");
        let b = random_token("x_");
        assert_ne!(a, b);
        assert_eq!(a.len(), 2 + 43);
        assert_eq!(hash_token(&a).len(), 64);
        assert_eq!(hash_token(&a), hash_token(&a));
    }
}
