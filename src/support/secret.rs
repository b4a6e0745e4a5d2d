//! Secrets: never printed, compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A webhook secret, token or key. `Debug` prints `[redacted]`; there is no `Display`.
#[derive(Clone, Default)]
pub struct Secret(String);

/// Length of generated secrets, in characters of `[A-Za-z0-9]` (~238 bits).
pub const GENERATED_LEN: usize = 40;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// A new random secret from `fill` (a CSPRNG), URL-safe so it can sit in a path.
    pub fn generate(fill: &mut dyn FnMut(&mut [u8])) -> Self {
        let mut out = String::with_capacity(GENERATED_LEN);
        let mut buf = [0u8; 64];
        while out.len() < GENERATED_LEN {
            fill(&mut buf);
            // Rejection sampling keeps the distribution uniform: 248 = 4 * 62.
            for &b in buf.iter().filter(|&&b| b < 248) {
                if out.len() == GENERATED_LEN {
                    break;
                }
                out.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
        Secret(out)
    }

    /// The secret itself, for computing signatures or sending it to the platform.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality with `candidate`. Both sides are hashed first so neither the
    /// content nor the length of the secret leaks through timing. An empty secret matches
    /// nothing.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(candidate);
        a.ct_eq(&b).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
    }

    #[test]
    fn matches_only_the_same_value() {
        let s = Secret::new("abc");
        assert!(s.matches(b"abc"));
        assert!(!s.matches(b"abd"));
        assert!(!s.matches(b"ab"));
        assert!(!s.matches(b""));
        assert!(!Secret::new("").matches(b""));
    }

    #[test]
    fn generated_secrets_are_long_alphanumeric_and_distinct() {
        let mut counter = 0u8;
        let mut fill = |buf: &mut [u8]| {
            for b in buf.iter_mut() {
                counter = counter.wrapping_add(97);
                *b = counter;
            }
        };
        let a = Secret::generate(&mut fill);
        let b = Secret::generate(&mut fill);
        assert_eq!(a.expose().len(), GENERATED_LEN);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose(), b.expose());
    }
}
