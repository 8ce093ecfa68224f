//! Password hashing: argon2id, PHC strings.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::secret::Password;

/// Argon2id cost. The default is OWASP's first recommendation (19 MiB, 2 passes, 1 lane);
/// tests may lower it, the shipped configuration never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for PasswordCost {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordCost {
    /// For tests only: fast and weak.
    pub const fn danger_insecure_fast() -> Self {
        Self {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn hasher(self) -> Argon2<'static> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .unwrap_or_default();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }
}

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Hashes `password` with a fresh salt. CPU-heavy: call it off the async executor.
pub fn hash(password: &Password, cost: PasswordCost) -> String {
    cost.hasher()
        .hash_password(password.expose().as_bytes())
        .map(|h| h.to_string())
        // Fails only for out-of-range parameters, which `PasswordCost` cannot hold.
        .expect("argon2 parameters are valid")
}

/// Checks `password` against a stored PHC string. The cost is read from the string.
pub fn verify(password: &Password, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.expose().as_bytes(), phc)
        .is_ok()
}

/// Whether `password` is acceptable as a new password.
pub fn check_strength(password: &Password) -> Result<(), crate::Error> {
    if password.expose().chars().count() < MIN_PASSWORD_LEN {
        return Err(crate::Error::invalid(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let pw = Password::new("correct horse battery staple");
        let phc = hash(&pw, PasswordCost::danger_insecure_fast());
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(&pw, &phc));
        assert!(!verify(&Password::new("wrong horse battery staple"), &phc));
        assert!(!verify(&pw, "not a phc string"));
    }

    #[test]
    fn short_passwords_refused() {
        assert!(check_strength(&Password::new("short")).is_err());
        assert!(check_strength(&Password::new("long enough password")).is_ok());
    }
}
