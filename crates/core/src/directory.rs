//! User authentication behind the [`Directory`] trait. [`LocalDirectory`] checks argon2id
//! hashes kept in the store; [`crate::directory_sources::ChainDirectory`] adds Active
//! Directory and LDAP sources in a configured order.

use crate::error::{CoreError, Result};
use crate::store::Store;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use async_trait::async_trait;
use std::sync::Arc;

/// A user whose credentials checked out.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    pub username: String,
    pub email: Option<String>,
    /// `local`, or the name of the directory source.
    pub source: String,
    /// The sync policy the user's directory groups map to, if any.
    pub policy: Option<String>,
}

/// Names a directory user's certificates carry (SAN otherName UPN, rfc822Name, SID extension).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertNames {
    pub upn: Option<String>,
    pub email: Option<String>,
    pub sid: Option<String>,
}

/// Source name of local users.
pub const LOCAL_SOURCE: &str = "local";

#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Checks the credentials; wrong user and wrong password are the same error.
    async fn authenticate(&self, username: &str, password: &str) -> Result<AuthenticatedUser>;

    /// Whether a user's devices may still check in (a directory user disabled, deleted or
    /// removed from the enrolling groups may not). Never asks a directory over the network.
    async fn check_user(&self, _username: &str) -> Result<()> {
        Ok(())
    }

    /// The names a user's certificates carry, for directory users.
    async fn cert_names(&self, _username: &str) -> Result<Option<CertNames>> {
        Ok(None)
    }
}

/// Users kept in Ferrocore's own database.
pub struct LocalDirectory {
    store: Arc<dyn Store>,
}

impl LocalDirectory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        LocalDirectory { store }
    }
}

/// A hash of an unguessable password, verified when the user does not exist so that the
/// answer takes as long as for a real user.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Wb3B8Ez6oYvoQk1x1N3mV0k+0u8QkqJ2e0xq0B8b2QE";

#[async_trait]
impl Directory for LocalDirectory {
    async fn authenticate(&self, username: &str, password: &str) -> Result<AuthenticatedUser> {
        if username.is_empty() || username.len() > 256 || password.len() > 1024 {
            return Err(CoreError::InvalidCredentials);
        }
        let user = self.store.user(username).await?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        let password = password.to_owned();
        let ok = hashing_pool()
            .run(move || verify_password(&hash, &password))
            .await?;
        match (user, ok) {
            (Some(u), true) => Ok(AuthenticatedUser {
                username: u.username,
                email: u.email,
                source: LOCAL_SOURCE.to_owned(),
                policy: None,
            }),
            _ => Err(CoreError::InvalidCredentials),
        }
    }
}

/// Password hashing runs on a small dedicated pool of threads: each argon2id computation
/// takes 19 MiB and tens of milliseconds of CPU, so a burst of registrations (or a flood of
/// wrong passwords) queues here instead of spreading over the runtime's blocking threads,
/// which would multiply the memory the allocator keeps per thread.
pub struct HashingPool {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>>,
}

impl HashingPool {
    fn new(threads: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ferrocore-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        HashingPool {
            jobs: std::sync::Mutex::new(tx),
        }
    }

    /// Runs `f` on the pool and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Box<dyn FnOnce() + Send> = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .lock()
            .map_err(|_| CoreError::Internal("hashing pool poisoned".into()))?
            .send(job)
            .map_err(|_| CoreError::Internal("hashing pool stopped".into()))?;
        rx.await
            .map_err(|_| CoreError::Internal("hashing job dropped".into()))
    }
}

/// The process-wide hashing pool (as many threads as cores, at most 4).
pub fn hashing_pool() -> &'static HashingPool {
    static POOL: std::sync::OnceLock<HashingPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 4);
        HashingPool::new(n)
    })
}

/// argon2id with the crate's default (OWASP) parameters.
pub fn hash_password(password: &str) -> Result<String> {
    let mut raw = [0u8; 16];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| CoreError::Internal("rng failure".into()))?;
    let salt = SaltString::encode_b64(&raw).map_err(CoreError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(CoreError::internal)
}

/// Checks a password against a PHC-format argon2 hash. The argon2 working memory (19 MiB
/// with the default parameters) is kept per thread and reused, instead of being allocated
/// and freed for every attempt: the allocator would otherwise keep a copy per thread and
/// arena, and the server's memory would grow by tens of MiB after a few logins.
pub fn verify_password(hash: &str, password: &str) -> bool {
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(params), Some(salt), Some(expected)) =
        (argon2::Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let computed = BLOCKS.with(|cell| {
        let mut memory = cell.borrow_mut();
        memory.resize(blocks, argon2::Block::default());
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..])
            .is_ok()
    });
    computed && aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_roundtrip() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "s3cret "));
        assert!(!verify_password("garbage", "s3cret"));
        // The dummy hash parses, so unknown users cost a real verification.
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
