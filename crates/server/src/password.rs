//! Password hashing with argon2id (OWASP parameters: m=19 MiB, t=2, p=1),
//! always off the async runtime.

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};

/// Longest password accepted: bounds the work an attacker can ask for.
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (PHC string).
pub fn hash(password: &str) -> anyhow::Result<String> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        anyhow::bail!("password must be 1 to {MAX_PASSWORD_BYTES} bytes");
    }
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// A hash of a random password, verified against when the user does not
/// exist, so unknown users cost the same time as wrong passwords.
static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Verifies `password` against `phc`, or against a dummy hash when `phc`
/// is `None`, on a blocking thread. Always spends one argon2 evaluation.
pub async fn verify(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        // Wiped when this closure ends, whatever the outcome.
        let password = zeroize::Zeroizing::new(password);
        let dummy;
        let target = match &phc {
            Some(p) => p.as_str(),
            None => {
                dummy = DUMMY.get_or_init(|| hash("gatehouse-dummy-password").unwrap_or_default());
                dummy.as_str()
            }
        };
        let ok = match PasswordHash::new(target) {
            Ok(parsed) => argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        };
        ok && phc.is_some() && !password.is_empty() && password.len() <= MAX_PASSWORD_BYTES
    })
    .await
    .unwrap_or(false)
}
