//! Password hashing with argon2id (OWASP parameters: m=19 MiB, t=2, p=1),
//! always off the async runtime.
//!
//! Each evaluation takes 19 MiB, so the server verifies at most one
//! password per core at a time ([`Gate`]): a sign-in waits up to
//! [`MAX_WAIT`] for a permit, with at most [`MAX_WAITING`] waiting, and is
//! otherwise turned away as [`Busy`] (503 with `Retry-After`). Memory for
//! password checks is thus bounded by the core count, whatever the load.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, OnceLock,
    },
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
static DUMMY: OnceLock<String> = OnceLock::new();

/// Longest a sign-in waits for a permit to check its password.
pub const MAX_WAIT: Duration = Duration::from_secs(2);
/// Most sign-ins waiting for a permit at once; more are turned away at once.
pub const MAX_WAITING: usize = 64;

/// No permit within [`MAX_WAIT`], or too many waiting: the server is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// The permits for password checks, one per core, shared by the process
/// (memory is a per-process resource).
#[derive(Debug)]
pub struct Gate {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl Gate {
    /// The process's gate, sized to the cores.
    pub fn global() -> &'static Gate {
        static GATE: OnceLock<Gate> = OnceLock::new();
        GATE.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Gate {
                permits: Arc::new(Semaphore::new(cores)),
                waiting: AtomicUsize::new(0),
            }
        })
    }

    /// Waits for a permit: at once if one is free, else up to [`MAX_WAIT`]
    /// if fewer than [`MAX_WAITING`] are waiting already.
    pub async fn acquire(&self) -> Result<Permit, Busy> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Ok(Permit(p));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        let got = tokio::time::timeout(MAX_WAIT, self.permits.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match got {
            Ok(Ok(p)) => Ok(Permit(p)),
            _ => Err(Busy),
        }
    }
}

/// The right to run one argon2 evaluation.
#[derive(Debug)]
pub struct Permit(OwnedSemaphorePermit);

impl Permit {
    /// Verifies `password` against `phc`, or against a dummy hash when
    /// `phc` is `None`, on a blocking thread. Always spends one argon2
    /// evaluation. The permit is held by the blocking task, so it is
    /// released only when the hashing ends, even if the request is gone.
    pub async fn verify(self, password: String, phc: Option<String>) -> bool {
        let permit = self.0;
        tokio::task::spawn_blocking(move || {
            // Wiped when this closure ends, whatever the outcome.
            let password = zeroize::Zeroizing::new(password);
            let ok = verify_now(&password, phc.as_deref());
            drop(permit);
            ok
        })
        .await
        .unwrap_or(false)
    }

    /// A password change: verifies `current` against `phc` and, only if
    /// it matches, hashes `new`, one after the other under this one
    /// permit on a blocking thread (at most one evaluation of this core's
    /// memory at a time). `Ok(None)`: `current` is wrong.
    pub async fn verify_then_hash(
        self,
        current: String,
        phc: String,
        new: String,
    ) -> anyhow::Result<Option<String>> {
        let permit = self.0;
        tokio::task::spawn_blocking(move || {
            let current = zeroize::Zeroizing::new(current);
            let new = zeroize::Zeroizing::new(new);
            let out = if verify_now(&current, Some(&phc)) {
                hash(&new).map(Some)
            } else {
                Ok(None)
            };
            drop(permit);
            out
        })
        .await
        .map_err(|e| anyhow::anyhow!("password check failed: {e}"))?
    }
}

fn verify_now(password: &str, phc: Option<&str>) -> bool {
    let dummy;
    let target = match phc {
        Some(p) => p,
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
}
