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
//!   another user (`device_of_another_user`, [`crate::enrollment::ensure_owner`]);
//! - **platform**: the token's, else the path label (`/.well-known/est/<platform>/...`), else
//!   `windows`;
//! - **client**: kind `agent`, version the platform's first renewing agent (Android 10.1.0,
//!   iOS 11.1.0, else 1.0.0): an EST client re-enrolls, so the lifecycle treats it as a
//!   client that renews;
//! - **mode and listener**: [`crate::rules::decide`], like every enrollment; a client that
//!   the rules put on the sync-TLS listener without a certificate (an Android or iOS agent
//!   while mutual authentication is off) is refused (`certificate_not_used`): a certificate
//!   would leave it without a credential. Certificate records carry issue reason `est`
//!   (re-enrollment: `est_renewal`).

use crate::Core;
use crate::enrollment::IssueReason;
use crate::error::{CoreError, Result};
use crate::grants::NewGrant;
use crate::provisioners::EstEnrollment;
use crate::service::{PresentedCert, Reissued};
use crate::store::DeviceRecord;
use ferrocore_pki::{IssuedCert, VerifiedCsr};
use ferrocore_proto::{GrantProtocol, Platform};

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

    /// EST `simpleenroll`: the [`EstEnrollment`] provisioner (module docs for the device
    /// mapping) through the enrollment pipeline; device, certificate (reason `est`) and the
    /// token's consumption are recorded in one transaction.
    pub async fn est_enroll(
        &self,
        credential: EstCredential,
        label_platform: Option<Platform>,
        csr: &VerifiedCsr,
    ) -> Result<EstEnrolled> {
        let token = matches!(credential, EstCredential::Token(_));
        let e = self
            .enroll(&EstEnrollment {
                credential,
                label_platform,
                csr: csr.clone(),
            })
            .await?;
        let issued = e
            .issued
            .ok_or_else(|| CoreError::internal("EST enrollment without a certificate"))?;
        tracing::info!(
            device = %e.device.id, uuid = %e.device.device_uuid, user = %e.device.username,
            platform = %e.device.platform, serial = %issued.serial_hex, token, "EST enrollment"
        );
        Ok(EstEnrolled {
            device: e.device,
            issued,
            ca_der: e.issuer.ca_der(),
        })
    }

    /// EST `simplereenroll`: mutual TLS with the device's current certificate; the renewal
    /// rules of [`Core::renew`] apply (renewal window, grace after expiry, a new key).
    pub async fn est_reenroll(&self, cert: &PresentedCert, csr: &VerifiedCsr) -> Result<Reissued> {
        self.renew_with(cert, csr, IssueReason::EstRenewal).await
    }
}
