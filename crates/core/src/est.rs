//! EST (RFC 7030) enrollment in the domain: one-time tokens (enrollment grants of protocol
//! `est`, [`crate::grants`]), `simpleenroll` and
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
use crate::grants::NewGrant;
use crate::service::{Enrollee, PresentedCert, Reissued, normalise_uuid, registration_device};
use crate::store::{DeviceRecord, Registration};
use ferrocore_pki::{IssuedCert, VerifiedCsr};
use ferrocore_proto::{ClientKind, GrantProtocol, Listener, Platform};

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

fn est_client_version(p: Platform) -> &'static str {
    match p {
        Platform::Android => "10.1.0",
        Platform::Ios => "11.1.0",
        _ => "1.0.0",
    }
}

impl Core {
    /// Creates a one-time EST token (an enrollment grant of protocol `est`, see
    /// [`crate::grants`]) for `username` (who must exist) and `platform`, optionally bound to
    /// a device UUID, valid `ttl_secs` (1 s .. 30 days; default 1 day).
    pub async fn create_est_token(
        &self,
        username: &str,
        platform: Platform,
        device_uuid: Option<&str>,
        ttl_secs: Option<i64>,
    ) -> Result<NewGrant> {
        self.create_grant(
            GrantProtocol::Est,
            username,
            platform,
            device_uuid,
            ttl_secs,
        )
        .await
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
        let mut directory_policy = None;
        let (username, platform, token_uuid, token_hash) = match credential {
            EstCredential::Password { username, password } => {
                let user = self.directory.authenticate(&username, &password).await?;
                directory_policy = Some(self.policy_for_user(&user).await?);
                (
                    user.username,
                    label_platform.unwrap_or(Platform::Windows),
                    None,
                    None,
                )
            }
            EstCredential::Token(token) => {
                let rec = self
                    .usable_grant(GrantProtocol::Est, &token, at)
                    .await?
                    .ok_or(CoreError::EstTokenInvalid)?;
                if !self.grant_user_exists(&rec.username).await? {
                    tracing::info!(user = %rec.username, "EST token of a deleted user refused");
                    return Err(CoreError::EstTokenInvalid);
                }
                (
                    rec.username,
                    rec.platform,
                    rec.device_uuid,
                    Some(rec.secret_hash),
                )
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
        let default_policy = match directory_policy {
            Some(p) => p,
            None => self.default_policy().await?,
        };
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
        // What the configuration needs (an external CA's CSR attributes) is checked before
        // anything is sent or written, as registration and renewal do.
        self.check_csr_for(
            device
                .enrollment_config
                .as_deref()
                .unwrap_or(crate::service::LOCAL_CONFIG),
            csr,
        )?;
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
