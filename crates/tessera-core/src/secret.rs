//! Secrets are types: their `Debug` is redacted, their bytes come out only through
//! `expose()`, and equality is constant-time.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself. Call sites are few and each one is a place to review.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                verify_slices_are_equal(self.0.as_bytes(), other.0.as_bytes()).is_ok()
            }
        }

        impl Eq for $name {}
    };
}

secret_string!(
    /// A signed token value (a JWT), as given to its holder once.
    TokenValue
);
secret_string!(
    /// A person's password.
    Password
);

/// Secret bytes: private keys, the master key.
#[derive(Clone)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes([redacted; {}])", self.0.len())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}

impl Eq for SecretBytes {}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // Best effort: overwrite before the allocation is returned.
        for b in self.0.iter_mut() {
            // `black_box` keeps the compiler from dropping the overwrite as dead.
            *b = std::hint::black_box(0);
        }
    }
}

/// Constant-time equality of two byte strings (time depends on the length only).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    verify_slices_are_equal(a, b).is_ok()
}

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // The OS generator failing leaves no safe way on; every caller would have to abort.
    aws_lc_rs::rand::fill(&mut buf).expect("the system random generator failed");
    buf
}

/// A random string of `bytes` random bytes, base64url without padding.
pub fn random_string(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_equality_works() {
        let v = TokenValue::new("eyJhbGciOiJFZERTQSJ9.secret.sig");
        assert_eq!(format!("{v:?}"), "TokenValue([redacted])");
        assert_eq!(v, TokenValue::new("eyJhbGciOiJFZERTQSJ9.secret.sig"));
        assert_ne!(v, TokenValue::new("other"));
        let b = SecretBytes::new(vec![1, 2, 3]);
        assert!(!format!("{b:?}").contains('1'));
    }

    #[test]
    fn random_strings_differ() {
        assert_ne!(random_string(32), random_string(32));
        assert_eq!(random_string(32).len(), 43);
    }
}
