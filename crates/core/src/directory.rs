//! User authentication behind the [`Directory`] trait. [`LocalDirectory`] checks argon2id
//! hashes kept in the store; LDAP / Active Directory implement the same trait later.

use crate::error::{CoreError, Result};
use crate::store::Store;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use async_trait::async_trait;
use std::sync::Arc;

/// A user whose credentials checked out.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    pub username: String,
    pub email: Option<String>,
}

#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Checks the credentials; wrong user and wrong password are the same error.
    async fn authenticate(&self, username: &str, password: &str) -> Result<AuthenticatedUser>;
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
        let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
            .await
            .map_err(CoreError::internal)?;
        match (user, ok) {
            (Some(u), true) => Ok(AuthenticatedUser {
                username: u.username,
                email: u.email,
            }),
            _ => Err(CoreError::InvalidCredentials),
        }
    }
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

pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
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
