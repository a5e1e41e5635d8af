//! One [`Provisioner`] per enrollment method: each authorises a request with the method's
//! credential and names the enrollee; [`Core::enroll`] does the rest.
//!
//! - [`AgentRegistration`]: directory credentials; the client reports platform, kind and
//!   version; a certificate or a device secret, as the rules say.
//! - [`EstEnrollment`]: HTTP Basic or a one-time EST token (module [`crate::est`] for the
//!   device mapping); a certificate only.
//! - [`ScepEnrollment`]: a one-time or static SCEP challenge; a certificate only.
//! - [`Renewal`]: the device's current certificate (agent renewal, EST re-enrollment, SCEP
//!   RenewalReq); the lifecycle rules.
//! - [`Migration`]: a legacy device's secret; the migration rules.
//! - [`StorefrontIdentity`]: a legacy device's secret; a certificate for the storefront when
//!   the storefront rule asks this device for one.

use crate::Core;
use crate::enrollment::{
    Authorized, ClientOf, Delivers, IssueReason, NewIdentity, Provisioner, Reissue, decision_of,
};
use crate::error::{CoreError, Result};
use crate::est::EstCredential;
use crate::rules::{self, Version};
use crate::service::{
    LOCAL_CONFIG, PresentedCert, Purpose, normalise_uuid, renewal_window_days, supports_renewal,
};
use crate::store::{GrantUse, ReissueKind, ScepRequestKey};
use async_trait::async_trait;
use ferrocore_pki::VerifiedCsr;
use ferrocore_proto::{AuthMode, ClientKind, GrantProtocol, Platform, RegisterRequest};

/// The client an EST or SCEP enrollment creates when the device is new: EST and SCEP
/// clients re-enroll, so the lifecycle treats them as clients that renew. Android's device
/// client is the agent (Table 4 has no Android MDM row); Apple and Windows devices enrolling
/// with a certificate only are MDM clients over SCEP and agents over EST.
pub fn certificate_client(platform: Platform, via: GrantProtocol) -> ClientOf {
    let v = |s: &[u32]| Version::new(s);
    match (platform, via) {
        (Platform::Android, _) => ClientOf::ExistingElse(ClientKind::Agent, v(&[10, 1, 0])),
        (Platform::Ios, GrantProtocol::Est) => {
            ClientOf::ExistingElse(ClientKind::Agent, v(&rules::IOS_AGENT_RENEWAL_MIN))
        }
        (_, GrantProtocol::Est) => ClientOf::ExistingElse(ClientKind::Agent, v(&[1, 0, 0])),
        (_, GrantProtocol::Scep) => ClientOf::ExistingElse(ClientKind::Mdm, v(&[1, 0])),
    }
}

/// Agent registration with the user's directory credentials.
pub struct AgentRegistration {
    pub request: RegisterRequest,
}

#[async_trait]
impl Provisioner for AgentRegistration {
    async fn authorize(&self, core: &Core) -> Result<Authorized> {
        let req = &self.request;
        let device_uuid = normalise_uuid(&req.device_uuid)?;
        let version: Version = req
            .client_version
            .parse()
            .map_err(CoreError::InvalidVersion)?;
        // Parse the CSR before the (slow) password check: malformed input fails fast.
        let csr = match req.csr_pem.as_deref() {
            Some(pem) if !pem.trim().is_empty() => Some(ferrocore_pki::parse_csr(pem.as_bytes())?),
            _ => None,
        };
        let user = core
            .directory
            .authenticate(&req.username, &req.password)
            .await?;
        Ok(Authorized::New(Box::new(NewIdentity {
            username: user.username,
            device_uuid,
            platform: req.platform,
            client: ClientOf::Reported(req.client_kind, version),
            csr,
            delivers: Delivers::CertificateOrSecret,
            config: None,
            grant: None,
            scep_request: None,
            reason: IssueReason::Registration,
            user_policy: user.policy,
        })))
    }
}

/// EST `simpleenroll` (device mapping: [`crate::est`]).
pub struct EstEnrollment {
    pub credential: EstCredential,
    pub label_platform: Option<Platform>,
    pub csr: VerifiedCsr,
}

#[async_trait]
impl Provisioner for EstEnrollment {
    async fn authorize(&self, core: &Core) -> Result<Authorized> {
        let at = core.now().unix_timestamp();
        let (username, platform, token_uuid, grant, user_policy) = match &self.credential {
            EstCredential::Password { username, password } => {
                let user = core.directory.authenticate(username, password).await?;
                (
                    user.username,
                    self.label_platform.unwrap_or(Platform::Windows),
                    None,
                    None,
                    user.policy,
                )
            }
            EstCredential::Token(token) => {
                let rec = core
                    .usable_grant(GrantProtocol::Est, token, at)
                    .await?
                    .ok_or(CoreError::EstTokenInvalid)?;
                if !core.grant_user_exists(&rec.username).await? {
                    tracing::info!(user = %rec.username, "EST token of a deleted user refused");
                    return Err(CoreError::EstTokenInvalid);
                }
                (
                    rec.username,
                    rec.platform,
                    rec.device_uuid,
                    Some(GrantUse {
                        protocol: GrantProtocol::Est,
                        secret_hash: rec.secret_hash,
                    }),
                    None,
                )
            }
        };
        let csr = &self.csr;
        let device_uuid = match token_uuid {
            Some(u) => u,
            None => [csr.subject_serial_number(), csr.subject_cn()]
                .into_iter()
                .flatten()
                .find_map(|s| normalise_uuid(&s).ok())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        };
        Ok(Authorized::New(Box::new(NewIdentity {
            username,
            device_uuid,
            platform,
            client: certificate_client(platform, GrantProtocol::Est),
            csr: Some(self.csr.clone()),
            delivers: Delivers::CertificateOnly,
            config: None,
            grant,
            scep_request: None,
            reason: IssueReason::Est,
            user_policy,
        })))
    }
}

/// SCEP PKCSReq with a challenge password: a one-time grant (consumed in the enrollment's
/// transaction) or the static challenge of an enrollment configuration (which then issues).
pub struct ScepEnrollment {
    pub csr: VerifiedCsr,
    pub challenge: Option<String>,
    pub request: ScepRequestKey,
}

#[async_trait]
impl Provisioner for ScepEnrollment {
    async fn authorize(&self, core: &Core) -> Result<Authorized> {
        let at = core.now().unix_timestamp();
        let challenge = self
            .challenge
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(CoreError::ScepChallengeInvalid)?;
        let grant = core
            .scep_grant(challenge, at)
            .await?
            .ok_or(CoreError::ScepChallengeInvalid)?;
        if !core.grant_user_exists(&grant.username).await? {
            tracing::info!(user = %grant.username, "SCEP challenge of a deleted user refused");
            return Err(CoreError::ScepChallengeInvalid);
        }
        // A grant without a device UUID enrolls a new device.
        let device_uuid = match &grant.device_uuid {
            Some(u) => normalise_uuid(u)?,
            None => uuid::Uuid::new_v4().hyphenated().to_string(),
        };
        let one_time = grant.static_config.is_none().then(|| GrantUse {
            protocol: GrantProtocol::Scep,
            secret_hash: grant.hash.clone(),
        });
        Ok(Authorized::New(Box::new(NewIdentity {
            username: grant.username,
            device_uuid,
            platform: grant.platform,
            client: certificate_client(grant.platform, GrantProtocol::Scep),
            csr: Some(self.csr.clone()),
            delivers: Delivers::CertificateOnly,
            config: grant.static_config,
            grant: one_time,
            scep_request: Some(self.request.clone()),
            reason: IssueReason::Scep,
            user_policy: None,
        })))
    }
}

/// How a renewal request shows that its client renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewalStyle {
    /// `/api/v1/renew`, EST `simplereenroll`: the client version must renew, and the CSR
    /// must carry a new key.
    Agent,
    /// SCEP RenewalReq: shows by itself that its client renews, and may keep its key
    /// (RFC 8894 allows it; micromdm's `scepclient` renews with the same key).
    Scep,
}

/// Renewal with the device's current certificate (or one expired less than the grace ago):
/// the presented certificate authenticates the device and the renewal window is open.
pub struct Renewal {
    pub cert: PresentedCert,
    pub csr: VerifiedCsr,
    pub style: RenewalStyle,
    pub reason: IssueReason,
    pub scep_request: Option<ScepRequestKey>,
}

#[async_trait]
impl Provisioner for Renewal {
    async fn authorize(&self, core: &Core) -> Result<Authorized> {
        let cert = &self.cert;
        let device = core.authenticate_cert(cert, Purpose::Renewal).await?;
        if self.style == RenewalStyle::Agent && !supports_renewal(&device) {
            return Err(CoreError::RenewalNotSupported);
        }
        let policy = core.policy_of(&device).await?;
        let renew_from = cert.not_after - i64::from(renewal_window_days(&policy)) * 86_400;
        if core.now().unix_timestamp() < renew_from {
            return Err(CoreError::RenewalNotDue { renew_from });
        }
        let old = core
            .store
            .certificate(&cert.serial)
            .await?
            .ok_or_else(|| CoreError::CertUnknown(cert.serial.clone()))?;
        let old_info = ferrocore_pki::cert_info(&old.der)?;
        if self.style == RenewalStyle::Agent
            && old_info.spki_sha256_hex == self.csr.spki_sha256_hex()
        {
            return Err(CoreError::SameKey);
        }
        let config = device
            .enrollment_config
            .clone()
            .unwrap_or_else(|| LOCAL_CONFIG.to_owned());
        Ok(Authorized::Reissue(Box::new(Reissue {
            device,
            csr: self.csr.clone(),
            config,
            kind: ReissueKind::Renewal {
                authenticated_with: cert.serial.clone(),
            },
            scep_request: self.scep_request.clone(),
            reason: self.reason,
        })))
    }
}

/// Migration of a legacy device to mutual authentication, authenticated with its device
/// secret; its status becomes pending until it checks in with the new certificate.
pub struct Migration {
    pub device_uuid: String,
    pub secret: String,
    pub csr: VerifiedCsr,
}

#[async_trait]
impl Provisioner for Migration {
    async fn authorize(&self, core: &Core) -> Result<Authorized> {
        let device = core
            .authenticate_secret(&self.device_uuid, &self.secret)
            .await?;
        let policy = core.policy_of(&device).await?;
        if device.mode != AuthMode::Legacy {
            return Err(CoreError::MigrationNotAllowed(
                "the device already uses mutual authentication".into(),
            ));
        }
        let ma = core.store.mutual_auth().await?;
        // The rules put the device in mutual mode now (an MDM device once mutual
        // authentication is enabled: Table 4 has no "already registered" split for it); else
        // the spec's migration of Android agents, which the policy switches on.
        let rules_say_mutual = decision_of(&device, &ma).is_some_and(|d| d.mutual);
        if !rules_say_mutual {
            if !policy.migrate_client {
                return Err(CoreError::MigrationNotAllowed(format!(
                    "policy {:?} does not migrate clients",
                    policy.name
                )));
            }
            if let Err(why) = core.migration_check(&device).await? {
                return Err(CoreError::MigrationNotAllowed(why));
            }
        }
        let config = ma.enrollment_config;
        Ok(Authorized::Reissue(Box::new(Reissue {
            device,
            csr: self.csr.clone(),
            config,
            kind: ReissueKind::Migration,
            scep_request: None,
            reason: IssueReason::Migration,
        })))
    }
}

/// A storefront certificate for a legacy device (no identity certificate) whose storefront
/// client the rule ([`rules::storefront_credential`]) asks for a certificate: iOS whenever
/// storefront authentication is `certificate` (whatever the global setting), Android 10.2+
/// once mutual authentication is on too. Without it such a device could use neither
/// credential. Authenticated with the device secret; the device keeps checking in with it.
pub struct StorefrontIdentity {
    pub device_uuid: String,
    pub secret: String,
    pub csr: VerifiedCsr,
    /// The storefront authentication setting now.
    pub setting: ferrocore_proto::StorefrontAuth,
}

#[async_trait]
impl Provisioner for StorefrontIdentity {
    async fn authorize(&self, core: &Core) -> Result<Authorized> {
        let device = core
            .authenticate_secret(&self.device_uuid, &self.secret)
            .await?;
        if device.current_cert_serial.is_some() {
            return Err(CoreError::StorefrontIdentityNotNeeded(
                "this device has its identity certificate: use it on the storefront".into(),
            ));
        }
        let ma = core.store.mutual_auth().await?;
        let version: Version = device
            .client_version
            .parse()
            .map_err(CoreError::InvalidVersion)?;
        let required = rules::storefront_credential(
            device.platform,
            self.setting,
            ma.enabled_at.is_some(),
            &version,
        )
        .map_err(|u| CoreError::UnsupportedClient {
            platform: u.platform.to_string(),
            kind: u.kind.to_string(),
        })?;
        if required != rules::StorefrontCredential::Certificate {
            return Err(CoreError::StorefrontIdentityNotNeeded(
                "this device's storefront client authenticates with the user's password".into(),
            ));
        }
        Ok(Authorized::Reissue(Box::new(Reissue {
            device,
            csr: self.csr.clone(),
            config: ma.enrollment_config,
            kind: ReissueKind::Storefront,
            scep_request: None,
            reason: IssueReason::Storefront,
        })))
    }
}
