//! The enrollment pipeline: every identity a device obtains (a certificate, or a legacy
//! device secret) comes through [`Core::enroll`]. A [`Provisioner`] per method authorises the
//! request and names the enrollee ([`crate::provisioners`]: agent registration, EST, SCEP,
//! renewal, migration); the pipeline then does the same for every method:
//!
//! 1. refuses a caller naming another user's device ([`ensure_owner`], the one place);
//! 2. asks [`rules::decide`] for the mode and listener of a new or re-enrolled device;
//! 3. checks the CSR against the enrollment configuration;
//! 4. issues through the configuration's [`Issuer`] with the policy's lifetime;
//! 5. records device, certificate, grant consumption and SCEP request in one transaction;
//! 6. republishes the CRL only when that transaction revoked something.
//!
//! A new method (directory users enrolling an email identity, Apple MDM enrollment) is a new
//! provisioner, not a new copy of these steps.

use crate::Core;
use crate::error::{CoreError, Result};
use crate::issuance::Issuer;
use crate::rules::{self, History, Version};
use crate::service::{LOCAL_CONFIG, random_secret, setting_state, sha256_hex};
use crate::store::{
    CertRecord, DeviceRecord, EnrollmentWrite, GrantUse, PolicyRecord, Registration, ReissueKind,
    ReissueWrite, ScepRequestKey,
};
use async_trait::async_trait;
use ferrocore_pki::{IssuedCert, VerifiedCsr};
use ferrocore_proto::{
    AuthMode, CertStatus, ClientKind, DeviceStatus, Listener, MigrationStatus, Platform,
};
use std::sync::Arc;

/// Why a certificate was issued; recorded with it (`certificates.issue_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueReason {
    Registration,
    Renewal,
    Migration,
    Est,
    EstRenewal,
    Scep,
    ScepRenewal,
    /// A storefront certificate for a legacy device (its check-ins keep the secret).
    Storefront,
}

impl IssueReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueReason::Registration => "registration",
            IssueReason::Renewal => "renewal",
            IssueReason::Migration => "migration",
            IssueReason::Est => "est",
            IssueReason::EstRenewal => "est_renewal",
            IssueReason::Scep => "scep",
            IssueReason::ScepRenewal => "scep_renewal",
            IssueReason::Storefront => "storefront",
        }
    }
}

impl std::fmt::Display for IssueReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a method can hand the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivers {
    /// Registration: a certificate when the rules say mutual, else a device secret.
    CertificateOrSecret,
    /// EST and SCEP: only a certificate.
    CertificateOnly,
}

/// The client a new identity is for.
#[derive(Debug, Clone)]
pub enum ClientOf {
    /// What the client reported (registration).
    Reported(ClientKind, Version),
    /// An existing device keeps its client; a new one gets the method's default (EST, SCEP).
    ExistingElse(ClientKind, Version),
}

/// A new identity for the device `device_uuid` of `username` (registration, EST, SCEP): the
/// device row is written (created, or re-enrolled when the uuid is the user's device).
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub username: String,
    pub device_uuid: String,
    pub platform: Platform,
    pub client: ClientOf,
    pub csr: Option<VerifiedCsr>,
    pub delivers: Delivers,
    /// The configuration that issues (a static SCEP challenge's); else the selected one.
    pub config: Option<String>,
    pub grant: Option<GrantUse>,
    pub scep_request: Option<ScepRequestKey>,
    pub reason: IssueReason,
    /// The sync policy the user's directory groups map to: a new device gets it (else the
    /// default policy).
    pub user_policy: Option<String>,
}

/// A new certificate for a device the provisioner authenticated with the device's own
/// credential (renewal with its certificate, migration with its secret).
#[derive(Debug, Clone)]
pub struct Reissue {
    pub device: DeviceRecord,
    pub csr: VerifiedCsr,
    /// The configuration that issues.
    pub config: String,
    pub kind: ReissueKind,
    pub scep_request: Option<ScepRequestKey>,
    pub reason: IssueReason,
}

/// What a provisioner authorised.
#[derive(Debug, Clone)]
pub enum Authorized {
    New(Box<NewIdentity>),
    Reissue(Box<Reissue>),
}

/// One enrollment method: authorises a request and names the enrollee. Nothing is written
/// here; the pipeline ([`Core::enroll`]) does the rest the same way for every method.
#[async_trait]
pub trait Provisioner: Send + Sync {
    async fn authorize(&self, core: &Core) -> Result<Authorized>;
}

/// What an enrollment produced.
pub struct Enrolled {
    pub device: DeviceRecord,
    pub policy: PolicyRecord,
    pub issued: Option<IssuedCert>,
    pub device_secret: Option<String>,
    /// The configuration that issued (or, for a secret, the one mutual identities come from).
    pub issuer: Arc<dyn Issuer>,
}

/// The ownership rule, in one place: a caller acting as `username` may name an existing
/// device (by UUID, serial or subject) only when it is that user's, whatever its state.
/// Every path that lets a user name a device asks this (registration, EST, SCEP grants,
/// the storefront); the enrollment transaction checks it again (`Store::apply_enrollment`).
pub fn ensure_owner(device: Option<&DeviceRecord>, username: &str) -> Result<()> {
    match device {
        Some(d) if d.username != username => {
            tracing::info!(
                device = %d.id, owner = %d.username, caller = %username,
                code = ferrocore_proto::codes::DEVICE_OF_ANOTHER_USER,
                "request naming another user's device refused"
            );
            Err(CoreError::DeviceOfAnotherUser)
        }
        _ => Ok(()),
    }
}

/// When a device registering now registers relative to the setting being enabled.
pub(crate) fn history_now(ma: &crate::store::MutualAuthRow) -> History {
    if ma.enabled_at.is_some() {
        History::RegisteredAfterEnable
    } else {
        History::RegisteredBeforeEnable
    }
}

impl Core {
    /// The enrollment pipeline (module docs): the provisioner authorises, then the same steps
    /// for every method.
    pub async fn enroll(&self, provisioner: &dyn Provisioner) -> Result<Enrolled> {
        match provisioner.authorize(self).await? {
            Authorized::New(e) => self.enroll_new(*e).await,
            Authorized::Reissue(r) => self.reissue(*r).await,
        }
    }

    async fn enroll_new(&self, e: NewIdentity) -> Result<Enrolled> {
        let existing = self.store.device_by_uuid(&e.device_uuid).await?;
        ensure_owner(existing.as_ref(), &e.username)?;
        let (kind, version) = match e.client {
            ClientOf::Reported(k, v) => (k, v),
            ClientOf::ExistingElse(k, v) => match &existing {
                Some(d) => (d.client_kind, d.client_version.parse().unwrap_or(v)),
                None => (k, v),
            },
        };
        let ma = self.store.mutual_auth().await?;
        let decision = self.decide_for(
            e.platform,
            kind,
            &version,
            setting_state(&ma),
            history_now(&ma),
        )?;
        let with_cert = match (decision.mutual, e.delivers) {
            (true, _) => true,
            (false, Delivers::CertificateOrSecret) => false,
            // MDM with mutual authentication off: the certificate is the device's identity,
            // checked in on the device listener without being required there (Table 4).
            (false, Delivers::CertificateOnly) if decision.listener == Listener::Device => true,
            (false, Delivers::CertificateOnly) => {
                return Err(CoreError::CertificateNotUsed {
                    platform: e.platform.to_string(),
                    kind: kind.to_string(),
                });
            }
        };
        let config = e.config.unwrap_or_else(|| ma.enrollment_config.clone());
        let default_policy = self
            .policy_named_or_default(&e.username, e.user_policy.as_deref())
            .await?;
        let now = self.now();
        let at = now.unix_timestamp();
        let mut device = DeviceRecord {
            id: existing
                .as_ref()
                .map(|d| d.id.clone())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            device_uuid: e.device_uuid,
            username: e.username,
            platform: e.platform,
            client_kind: kind,
            client_version: version.to_string(),
            mode: if decision.mutual {
                AuthMode::Mutual
            } else {
                AuthMode::Legacy
            },
            listener: decision.listener,
            status: DeviceStatus::Active,
            registered_with_ma: ma.enabled_at.is_some(),
            registered_at: at,
            last_checkin_at: None,
            retired_at: None,
            current_cert_serial: None,
            cert_not_after: None,
            secret_hash: None,
            policy: existing
                .as_ref()
                .map(|d| d.policy.clone())
                .unwrap_or(default_policy.name),
            previous_cert_serial: None,
            migration_status: MigrationStatus::None,
            renewal_count: 0,
            enrollment_config: with_cert.then(|| config.clone()),
            reregister_required: false,
        };
        let policy = self.policy_of(&device).await?;
        let issuer = self.issuer(&config)?;
        let mut issued = None;
        let mut cert = None;
        let mut device_secret = None;
        if with_cert {
            let csr = e.csr.ok_or(CoreError::CsrRequired)?;
            self.check_csr_for(&config, &csr)?;
            let i = self.issue_identity(&device, &policy, &csr, now).await?;
            device.current_cert_serial = Some(i.serial_hex.clone());
            device.cert_not_after = Some(i.not_after.unix_timestamp());
            cert = Some(cert_record_of(&i, &device, at, e.reason, None));
            issued = Some(i);
        } else {
            let secret = random_secret()?;
            device.secret_hash = Some(sha256_hex(secret.as_bytes()));
            device_secret = Some(secret);
        }
        let write = EnrollmentWrite {
            registration: Registration {
                device: device.clone(),
                cert,
            },
            grant: e.grant,
            scep_request: e.scep_request,
        };
        let applied = self.store.apply_enrollment(&write, at).await?;
        device.id = applied.device_id;
        self.revoked(&applied.revoked).await?;
        tracing::info!(
            device = %device.id, uuid = %device.device_uuid, user = %device.username,
            platform = %device.platform, kind = %device.client_kind, mode = %device.mode,
            listener = %device.listener, source = %e.reason,
            serial = issued.as_ref().map(|i| i.serial_hex.as_str()).unwrap_or("-"),
            "device registered"
        );
        Ok(Enrolled {
            device,
            policy,
            issued,
            device_secret,
            issuer,
        })
    }

    async fn reissue(&self, r: Reissue) -> Result<Enrolled> {
        let mut device = r.device;
        let policy = self.policy_of(&device).await?;
        // The issuing configuration, for the certificate record (a storefront certificate
        // leaves the device row as it is).
        device.enrollment_config = Some(r.config.clone());
        self.check_csr_for(&r.config, &r.csr)?;
        let now = self.now();
        let at = now.unix_timestamp();
        let issued = self.issue_identity(&device, &policy, &r.csr, now).await?;
        let replaces = match &r.kind {
            ReissueKind::Renewal { authenticated_with } => Some(authenticated_with.clone()),
            ReissueKind::Migration | ReissueKind::Storefront => None,
        };
        let record = cert_record_of(&issued, &device, at, r.reason, replaces.clone());
        let write = ReissueWrite {
            device_id: device.id.clone(),
            cert: record,
            kind: r.kind,
            scep_request: r.scep_request,
        };
        let revoked = self.store.apply_reissue(&write, at).await?;
        self.revoked(&revoked).await?;
        tracing::info!(
            device = %device.id, old = replaces.as_deref().unwrap_or("-"),
            new = %issued.serial_hex, source = %r.reason, "certificate issued"
        );
        let device = self.device(&device.id).await?;
        let issuer = self.issuer(&r.config)?;
        Ok(Enrolled {
            device,
            policy,
            issued: Some(issued),
            device_secret: None,
            issuer,
        })
    }

    /// After a state change committed: the CRL publisher runs only when something was
    /// revoked.
    pub(crate) async fn revoked(&self, serials: &[String]) -> Result<()> {
        if !serials.is_empty() {
            self.publish_crl().await?;
        }
        Ok(())
    }
}

pub(crate) fn cert_record_of(
    issued: &IssuedCert,
    device: &DeviceRecord,
    at: i64,
    reason: IssueReason,
    replaces: Option<String>,
) -> CertRecord {
    CertRecord {
        enrollment_config: device
            .enrollment_config
            .clone()
            .unwrap_or_else(|| LOCAL_CONFIG.to_owned()),
        serial: issued.serial_hex.clone(),
        device_id: Some(device.id.clone()),
        subject: issued.subject.clone(),
        not_before: issued.not_before.unix_timestamp(),
        not_after: issued.not_after.unix_timestamp(),
        issued_at: at,
        status: CertStatus::Active,
        revoked_at: None,
        revocation_reason: None,
        der: issued.der.clone(),
        issue_reason: reason.as_str().to_owned(),
        replaces_serial: replaces,
    }
}

/// The check-in decision [`rules::decide`] gives a recorded device now.
pub fn decision_of(
    device: &DeviceRecord,
    ma: &crate::store::MutualAuthRow,
) -> Option<rules::Decision> {
    let version: Version = device.client_version.parse().ok()?;
    let history = if device.registered_with_ma {
        History::RegisteredAfterEnable
    } else {
        History::RegisteredBeforeEnable
    };
    rules::decide(
        device.platform,
        device.client_kind,
        &version,
        setting_state(ma),
        history,
    )
    .ok()
}
