//! EST (RFC 7030) enrollment in the domain: one-time tokens, `simpleenroll` and
//! `simplereenroll`, both through the one issuance pipeline ([`Core::issue_identity`], the
//! policy's lifetime, the selected enrollment configuration) so that search, lifecycle and
//! revocation treat EST certificates like registered ones.
//!
//! How an EST enrollment maps to a device record:
//! - **user**: the authenticated user (HTTP Basic), or the token's user;
//! - **device UUID**: the token's, else the CSR subject's serialNumber or commonName when it
//!   is a UUID, else a new one. An existing device of that UUID is re-enrolled (its previous
//!   certificates are revoked as superseded, like a re-registration) unless it belongs to
//!   another user (`conflict`);
//! - **platform**: the token's, else the path label (`/.well-known/est/<platform>/...`), else
//!   `windows`;
//! - **client**: kind `agent`, version the platform's first renewing agent (Android 10.1.0,
//!   iOS 11.1.0, else 1.0.0): an EST client re-enrolls, so the lifecycle treats it as a
//!   client that renews;
//! - **mode**: mutual, on the device listener; certificate records carry issue reason `est`
//!   (re-enrollment: `est_renewal`).

use crate::Core;
use crate::error::{CoreError, Result};
use crate::service::{
    Enrollee, PresentedCert, Reissued, normalise_uuid, registration_device, sha256_hex,
};
use crate::store::{DeviceRecord, EstTokenRecord, Registration};
use base64::Engine;
use ferrocore_pki::{IssuedCert, VerifiedCsr};
use ferrocore_proto::{ClientKind, Listener, Platform};

/// Longest lifetime of an EST token.
pub const EST_TOKEN_MAX_TTL_SECS: i64 = 30 * 86_400;
/// Lifetime of an EST token when the administrator gives none.
pub const EST_TOKEN_DEFAULT_TTL_SECS: i64 = 86_400;

/// How an EST `simpleenroll` authenticates.
#[derive(Debug, Clone)]
pub enum EstCredential {
    /// HTTP Basic with a user's directory credentials.
    Password { username: String, password: String },
    /// A one-time token the administrator created.
    Token(String),
}

/// An EST enrollment's result.
#[derive(Debug, Clone)]
pub struct EstEnrolled {
    pub device: DeviceRecord,
    pub issued: IssuedCert,
    /// The issuing CA certificate, DER.
    pub ca_der: Vec<u8>,
}

/// A token as created (the secret is shown once).
#[derive(Debug, Clone)]
pub struct NewEstToken {
    pub token: String,
    pub record: EstTokenRecord,
}

fn est_client_version(p: Platform) -> &'static str {
    match p {
        Platform::Android => "10.1.0",
        Platform::Ios => "11.1.0",
        _ => "1.0.0",
    }
}

impl Core {
    /// Creates a one-time EST token for `username` (who must exist) and `platform`,
    /// optionally bound to a device UUID, valid `ttl_secs` (1 s .. 30 days; default 1 day).
    pub async fn create_est_token(
        &self,
        username: &str,
        platform: Platform,
        device_uuid: Option<&str>,
        ttl_secs: Option<i64>,
    ) -> Result<NewEstToken> {
        if self.store.user(username).await?.is_none() {
            return Err(CoreError::NotFound(format!("user {username:?}")));
        }
        let device_uuid = device_uuid.map(normalise_uuid).transpose()?;
        let ttl = ttl_secs.unwrap_or(EST_TOKEN_DEFAULT_TTL_SECS);
        if !(1..=EST_TOKEN_MAX_TTL_SECS).contains(&ttl) {
            return Err(CoreError::BadRequest(format!(
                "ttl {ttl} s: must be 1 s to {} days",
                EST_TOKEN_MAX_TTL_SECS / 86_400
            )));
        }
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| CoreError::Internal("rng failure".into()))?;
        let token = format!(
            "est_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let at = self.now().unix_timestamp();
        let record = EstTokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            token_hash: sha256_hex(token.as_bytes()),
            username: username.to_owned(),
            platform,
            device_uuid,
            created_at: at,
            expires_at: at + ttl,
            used_at: None,
        };
        self.store.create_est_token(&record).await?;
        tracing::info!(id = %record.id, user = %username, %platform, "EST token created");
        Ok(NewEstToken { token, record })
    }

    /// EST `simpleenroll`: authenticates, maps the enrollment to a device (module docs),
    /// issues through the one pipeline and records device, certificate (reason `est`) and
    /// the token's consumption in one transaction.
    pub async fn est_enroll(
        &self,
        credential: EstCredential,
        label_platform: Option<Platform>,
        csr: &VerifiedCsr,
    ) -> Result<EstEnrolled> {
        let now = self.now();
        let at = now.unix_timestamp();
        let (username, platform, token_uuid, token_hash) = match credential {
            EstCredential::Password { username, password } => {
                let user = self.directory.authenticate(&username, &password).await?;
                (
                    user.username,
                    label_platform.unwrap_or(Platform::Windows),
                    None,
                    None,
                )
            }
            EstCredential::Token(token) => {
                let hash = sha256_hex(token.as_bytes());
                let rec = self
                    .store
                    .est_token(&hash)
                    .await?
                    .filter(|t| t.used_at.is_none() && t.expires_at > at)
                    .ok_or(CoreError::EstTokenInvalid)?;
                (rec.username, rec.platform, rec.device_uuid, Some(hash))
            }
        };
        let device_uuid = match token_uuid {
            Some(u) => u,
            None => [csr.subject_serial_number(), csr.subject_cn()]
                .into_iter()
                .flatten()
                .find_map(|s| normalise_uuid(&s).ok())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        };
        let existing = self.store.device_by_uuid(&device_uuid).await?;
        if let Some(d) = existing.as_ref().filter(|d| d.username != username) {
            tracing::info!(device = %d.id, user = %username, "EST enrollment for another user's device refused");
            return Err(CoreError::Conflict(format!(
                "device {device_uuid} belongs to another user"
            )));
        }
        let ma = self.store.mutual_auth().await?;
        let default_policy = self.default_policy().await?;
        let mut device = registration_device(
            existing.as_ref(),
            Enrollee {
                device_uuid,
                username,
                platform,
                client_kind: ClientKind::Agent,
                client_version: est_client_version(platform).to_owned(),
                mutual: true,
                listener: Listener::Device,
                registered_with_ma: ma.enabled_at.is_some(),
                enrollment_config: ma.enrollment_config.clone(),
                default_policy: default_policy.name,
            },
            at,
        );
        let policy = self.policy_of(&device).await?;
        let (issued, record) = self
            .issue_registration_cert(&mut device, &policy, csr, now, "est")
            .await?;
        let reg = Registration {
            cert: Some(record),
            device: device.clone(),
        };
        device.id = self
            .store
            .apply_est_enrollment(&reg, token_hash.as_deref(), at)
            .await?;
        self.registered(existing.is_some(), &reg, &device).await?;
        tracing::info!(
            device = %device.id, uuid = %device.device_uuid, user = %device.username,
            platform = %device.platform, serial = %issued.serial_hex,
            token = token_hash.is_some(), "EST enrollment"
        );
        let ca_der = self.issuer(&ma.enrollment_config)?.ca_der();
        Ok(EstEnrolled {
            device,
            issued,
            ca_der,
        })
    }

    /// EST `simplereenroll`: mutual TLS with the device's current certificate; the renewal
    /// rules of [`Core::renew`] apply (renewal window, grace after expiry, a new key).
    pub async fn est_reenroll(&self, cert: &PresentedCert, csr: &VerifiedCsr) -> Result<Reissued> {
        self.renew_with(cert, csr, "est_renewal").await
    }
}
