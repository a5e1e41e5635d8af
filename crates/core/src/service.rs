//! [`Core`]: the operations of the device and admin APIs, transport-neutral.
//!
//! The server layer turns a request into a call here (with the listener it arrived on and the
//! verified client certificate, if any) and turns the result into HTTP. Each state change is
//! one store transaction; a CRL is republished after every revocation.

use crate::clock::Clock;
use crate::directory::{Directory, hash_password};
use crate::enrollment::{Enrolled, IssueReason, decision_of};
use crate::error::{CoreError, Result};
use crate::issuance::{Issuer, KIND_LOCAL_CA, LocalIssuer, PublishedCrl};
use crate::provisioners::{self, AgentRegistration, Migration, Renewal, RenewalStyle};
use crate::rules::{self, Decision, History, SettingState, Version};
use crate::store::{
    AtRisk, CertRecord, CheckinEffects, CheckinRecord, DeviceQuery, DeviceRecord, Page,
    PolicyRecord, ScepChallengeRecord, ScepRequestKey, Store, UserRecord,
};
use arc_swap::ArcSwap;
use aws_lc_rs::{constant_time, digest, rand as lc_rand};
use base64::Engine;
use ferrocore_pki::{ClientProfile, IssuedCert, RevocationReason, RevokedEntry, VerifiedCsr};
use ferrocore_proto::{
    Action, AuthMode, CertStatus, CertificateLifecycle, CheckinRequest, ClientKind, DeviceStatus,
    Listener, MigrationStatus, Platform, RegisterRequest,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use time::OffsetDateTime;

/// Name of the policy every installation has.
pub const DEFAULT_POLICY: &str = "default";
/// How long a published CRL is valid; it is republished on every revocation and daily.
pub const CRL_VALIDITY: time::Duration = time::Duration::days(7);
/// After expiry, a device that supports renewal may still renew for this long; then it is retired.
pub const GRACE: time::Duration = time::Duration::days(30);
/// Renewal window when the policy leaves it blank.
pub const DEFAULT_RENEWAL_WINDOW_DAYS: u32 = 60;

/// What a certificate is presented for: only renewal accepts one expired within the grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Checkin,
    Renewal,
}

/// The renewal window in force for a policy (blank = 60 days).
pub fn renewal_window_days(p: &PolicyRecord) -> u32 {
    p.renewal_window_days.unwrap_or(DEFAULT_RENEWAL_WINDOW_DAYS)
}

/// A client certificate the server layer verified (chain to a trusted CA, within validity).
#[derive(Debug, Clone)]
pub struct PresentedCert {
    pub serial: String,
    pub not_after: i64,
    /// SHA-256 (hex) of the certificate's DER. When set (the server layer always sets it) it
    /// must be the recorded certificate's: serials are unique per CA only, and external CAs
    /// count from small numbers.
    pub sha256: Option<String>,
}

/// How a request authenticates a device.
#[derive(Debug, Clone)]
pub enum DeviceCredential {
    Certificate(PresentedCert),
    Secret { device_uuid: String, secret: String },
    None,
}

/// Result of a registration, for the server to render.
#[derive(Debug, Clone)]
pub struct Registered {
    pub device: DeviceRecord,
    pub certificate_pem: Option<String>,
    pub device_secret: Option<String>,
    pub ca_pem: String,
    pub policy: PolicyRecord,
}

/// A SCEP enrollment request, decrypted and verified by the server layer.
#[derive(Debug, Clone)]
pub struct ScepEnrollment {
    pub csr_der: Vec<u8>,
    /// The CSR's challengePassword attribute.
    pub challenge: Option<String>,
    pub transaction_id: String,
    /// The certificate that signed the request (self-signed for a first enrollment).
    pub signer_cert_der: Vec<u8>,
}

/// The key under which a SCEP request is recorded: a retransmission (same transactionID,
/// signer and CSR) is answered with the same certificate.
fn scep_request_key(
    transaction_id: &str,
    signer_cert_der: &[u8],
    csr_der: &[u8],
) -> Result<ScepRequestKey> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [transaction_id.as_bytes(), signer_cert_der, csr_der] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    Ok(ScepRequestKey {
        transaction_id: transaction_id.to_owned(),
        request_hash: hex::encode(ctx.finish().as_ref()),
        signer_spki_sha256: signer_spki_sha256(signer_cert_der)?,
    })
}

/// SHA-256 (hex) of a SCEP signer certificate's SubjectPublicKeyInfo: who requested.
fn signer_spki_sha256(signer_cert_der: &[u8]) -> Result<String> {
    Ok(ferrocore_pki::cert_info(signer_cert_der)?.spki_sha256_hex)
}

/// A certificate issued (or found for a transaction) through SCEP.
#[derive(Debug, Clone)]
pub struct ScepIssued {
    pub cert_der: Vec<u8>,
    /// The issuing CA's certificate.
    pub ca_der: Vec<u8>,
    pub device_id: String,
}

/// Client version recorded for a device first seen through SCEP.
pub const SCEP_CLIENT_VERSION: &str = "1.0";

/// Result of a check-in.
#[derive(Debug, Clone)]
pub struct CheckedIn {
    pub device: DeviceRecord,
    pub policy: PolicyRecord,
    pub at: i64,
    pub lifecycle: Option<CertificateLifecycle>,
    pub actions: Vec<Action>,
}

/// Result of a renewal or migration.
#[derive(Debug, Clone)]
pub struct Reissued {
    pub device: DeviceRecord,
    pub issued: IssuedCert,
    pub ca_pem: String,
}

/// Where the CAs' public material is published.
#[derive(Debug, Clone, Default)]
pub struct PkiPublication {
    /// Base URL of the public PKI paths (`https://host:port`); CRLs live at
    /// `{base}/pki/crl.der` (the `local` configuration) and `{base}/pki/{config}/crl.der`.
    pub base_url: Option<String>,
    /// Overrides the CRL URL of the `local` configuration.
    pub local_crl_url: Option<String>,
    /// Directory CRLs are written to (`crl.der`, and `{config}/crl.der`).
    pub crl_dir: Option<PathBuf>,
    /// OCSP responder URL written into issued certificates' AIA (every configuration's
    /// responder answers at the same URL).
    pub ocsp_url: Option<String>,
}

impl PkiPublication {
    pub fn crl_url(&self, config: &str) -> Option<String> {
        if config == LOCAL_CONFIG && self.local_crl_url.is_some() {
            return self.local_crl_url.clone();
        }
        self.base_url
            .as_ref()
            .map(|b| format!("{b}/pki/{}crl.der", config_path_prefix(config)))
    }
    pub fn crl_path(&self, config: &str) -> Option<PathBuf> {
        self.crl_dir.as_ref().map(|d| {
            if config == LOCAL_CONFIG {
                d.join("crl.der")
            } else {
                d.join(config).join("crl.der")
            }
        })
    }
}

fn config_path_prefix(config: &str) -> String {
    if config == LOCAL_CONFIG {
        String::new()
    } else {
        format!("{config}/")
    }
}

/// Name of the built-in enrollment configuration (the local CA created at first start).
pub const LOCAL_CONFIG: &str = "local";

/// Outcome of changing the enrollment configuration used for mutual authentication.
#[derive(Debug, Clone)]
pub struct SelectionChange {
    pub applied: bool,
    pub current: String,
    pub proposed: String,
    /// Active mutual-mode devices whose identity came from another configuration: they must
    /// register again once the change is applied.
    pub affected: Vec<DeviceRecord>,
    pub affected_total: u64,
}

pub struct Core {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) directory: Arc<dyn Directory>,
    /// The built-in `local` configuration (also in `issuers`).
    local: Arc<LocalIssuer>,
    /// Enrollment configurations by name; `local` always exists.
    issuers: ArcSwap<BTreeMap<String, Arc<dyn Issuer>>>,
    /// Delegated OCSP responders by enrollment configuration ([`crate::ocsp`]).
    pub(crate) ocsp: ArcSwap<BTreeMap<String, Arc<ferrocore_pki::OcspResponder>>>,
    /// Certificate statuses the OCSP responder read, cleared by every revocation
    /// ([`crate::ocsp::StatusCache`]).
    pub(crate) ocsp_cache: crate::ocsp::StatusCache,
    clock: Arc<dyn Clock>,
    publication: PkiPublication,
    crls: ArcSwap<BTreeMap<String, Arc<PublishedCrl>>>,
    policy_cache: ArcSwap<BTreeMap<String, PolicyRecord>>,
}

impl Core {
    pub fn new(
        store: Arc<dyn Store>,
        directory: Arc<dyn Directory>,
        local_ca: Arc<LocalIssuer>,
        clock: Arc<dyn Clock>,
        publication: PkiPublication,
    ) -> Self {
        let mut issuers: BTreeMap<String, Arc<dyn Issuer>> = BTreeMap::new();
        issuers.insert(LOCAL_CONFIG.to_owned(), local_ca.clone());
        Core {
            store,
            directory,
            local: local_ca,
            issuers: ArcSwap::from_pointee(issuers),
            ocsp: ArcSwap::from_pointee(BTreeMap::new()),
            ocsp_cache: crate::ocsp::StatusCache::default(),
            clock,
            publication,
            crls: ArcSwap::from_pointee(BTreeMap::new()),
            policy_cache: ArcSwap::from_pointee(BTreeMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    /// The built-in `local` CA.
    pub fn local_ca(&self) -> &Arc<LocalIssuer> {
        &self.local
    }

    /// An enrollment configuration's issuer.
    pub fn issuer(&self, name: &str) -> Result<Arc<dyn Issuer>> {
        self.issuers
            .load()
            .get(name)
            .cloned()
            .ok_or_else(|| CoreError::NotFound(format!("enrollment configuration {name:?}")))
    }

    /// Names of the installed enrollment configurations.
    pub fn issuer_names(&self) -> Vec<String> {
        self.issuers.load().keys().cloned().collect()
    }

    /// Every configuration's CA certificate (DER), for the trust store.
    pub fn trusted_ca_ders(&self) -> Vec<Vec<u8>> {
        self.issuers.load().values().map(|i| i.ca_der()).collect()
    }

    /// Makes an enrollment configuration usable (at start-up, or after it was created).
    /// The built-in `local` one cannot be replaced.
    pub fn install_issuer(&self, name: &str, issuer: Arc<dyn Issuer>) {
        if name == LOCAL_CONFIG {
            return;
        }
        let mut map = self.issuers.load().as_ref().clone();
        map.insert(name.to_owned(), issuer);
        self.issuers.store(Arc::new(map));
    }
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    // ------------------------------------------------------------------ registration

    /// Registers (or re-registers) a device: the [`AgentRegistration`] provisioner through
    /// the enrollment pipeline. `via` is the listener the request came in on (registration
    /// is accepted on either device-facing listener).
    pub async fn register(&self, req: RegisterRequest, via: Listener) -> Result<Registered> {
        let _ = via;
        let e = self.enroll(&AgentRegistration { request: req }).await?;
        Ok(Registered {
            certificate_pem: e.issued.map(|i| i.pem),
            device_secret: e.device_secret,
            ca_pem: e.issuer.ca_pem(),
            policy: e.policy,
            device: e.device,
        })
    }

    // ------------------------------------------------------------------ SCEP

    /// SCEP PKCSReq: enrolls a device with a challenge password instead of user credentials.
    /// The challenge (one-time, or the static one of an enrollment configuration) names the
    /// user, the platform and optionally the device UUID (else a new device); the device is
    /// recorded in mutual mode on the device listener (client kind `mdm` unless the device
    /// exists), its certificate comes from `issue_identity` with reason `scep`, and the
    /// one-time challenge is consumed in the transaction that records it. A retransmission
    /// (same transaction ID) is answered with the certificate already issued.
    pub async fn scep_enroll(&self, req: &ScepEnrollment) -> Result<ScepIssued> {
        let key = scep_request_key(&req.transaction_id, &req.signer_cert_der, &req.csr_der)?;
        if let Some(done) = self.store.scep_request(&key.request_hash).await? {
            return self.scep_issued(done).await;
        }
        let csr = ferrocore_pki::parse_csr(&req.csr_der)?;
        let e = self
            .enroll(&provisioners::ScepEnrollment {
                csr,
                challenge: req.challenge.clone(),
                request: key,
            })
            .await?;
        scep_issued_of(e)
    }

    /// SCEP RenewalReq: signed with the device's current certificate (verified by the server
    /// layer into `cert`); the lifecycle rules of [`Core::renew`] apply. Recorded with reason
    /// `scep_renewal`; a retransmission gets the same certificate.
    pub async fn scep_renew(
        &self,
        cert: &PresentedCert,
        signer_cert_der: &[u8],
        csr_der: &[u8],
        transaction_id: &str,
    ) -> Result<ScepIssued> {
        let key = scep_request_key(transaction_id, signer_cert_der, csr_der)?;
        if let Some(done) = self.store.scep_request(&key.request_hash).await? {
            return self.scep_issued(done).await;
        }
        let csr = ferrocore_pki::parse_csr(csr_der)?;
        let e = self
            .enroll(&Renewal {
                cert: cert.clone(),
                csr,
                style: RenewalStyle::Scep,
                reason: IssueReason::ScepRenewal,
                scep_request: Some(key),
            })
            .await?;
        scep_issued_of(e)
    }

    /// SCEP GetCertInitial (CertPoll): certificates are issued synchronously, so a poll is
    /// answered with the certificate recorded for the transaction — only to the key that
    /// signed the original request (`signer_cert_der` of the poll), else
    /// [`CoreError::ScepTransactionUnknown`] — and only while that certificate is unrevoked
    /// and its device active (see [`Core::scep_issued`]).
    pub async fn scep_poll(
        &self,
        transaction_id: &str,
        signer_cert_der: &[u8],
    ) -> Result<ScepIssued> {
        let signer = signer_spki_sha256(signer_cert_der)?;
        match self.store.scep_transaction(transaction_id, &signer).await? {
            Some(done) => self.scep_issued(done).await,
            None => Err(CoreError::ScepTransactionUnknown(
                transaction_id.chars().take(128).collect(),
            )),
        }
    }

    /// Answers a SCEP request from its record (a retransmission or a poll): refused when
    /// the certificate has been revoked (including superseded) or its device retired or
    /// deleted since, so a replayed request never hands out a certificate no longer valid.
    async fn scep_issued(&self, done: CertRecord) -> Result<ScepIssued> {
        if done.status == CertStatus::Revoked {
            return Err(CoreError::CertRevoked {
                reason: done
                    .revocation_reason
                    .clone()
                    .unwrap_or_else(|| "unspecified".into()),
            });
        }
        let device_id = done.device_id.clone().unwrap_or_default();
        match self.store.device(&device_id).await? {
            Some(d) if d.status == DeviceStatus::Active => {}
            _ => return Err(CoreError::DeviceRetired),
        }
        let issuer = self.issuer(&done.enrollment_config)?;
        Ok(ScepIssued {
            cert_der: done.der,
            ca_der: issuer.ca_der(),
            device_id: done.device_id.unwrap_or_default(),
        })
    }

    /// Creates a one-time SCEP challenge (an enrollment grant of protocol `scep`, see
    /// [`crate::grants`]) for one registration of `username`'s device.
    pub async fn create_scep_challenge(
        &self,
        req: &ferrocore_proto::NewScepChallenge,
    ) -> Result<ferrocore_proto::ScepChallenge> {
        let ttl = req
            .ttl_secs
            .map(i64::try_from)
            .transpose()
            .map_err(|_| CoreError::BadRequest("ttl_secs: too large".into()))?;
        let g = self
            .create_grant(
                ferrocore_proto::GrantProtocol::Scep,
                &req.username,
                req.platform,
                req.device_uuid.as_deref(),
                ttl,
            )
            .await?;
        Ok(ferrocore_proto::ScepChallenge {
            id: Some(g.record.id),
            challenge: g.secret,
            username: g.record.username,
            platform: g.record.platform,
            device_uuid: g.record.device_uuid,
            expires_at: Some(g.record.expires_at),
            config: None,
        })
    }

    /// Sets (replacing any) the static SCEP challenge of an enrollment configuration: every
    /// enrollment with it becomes a new device of `username` on `platform`.
    pub async fn set_static_scep_challenge(
        &self,
        config: &str,
        req: &ferrocore_proto::StaticScepChallenge,
    ) -> Result<ferrocore_proto::ScepChallenge> {
        self.issuer(config)?;
        self.existing_user(&req.username).await?;
        let challenge = random_challenge()?;
        let at = self.now().unix_timestamp();
        self.store
            .set_static_scep_challenge(
                config,
                Some(&ScepChallengeRecord {
                    hash: sha256_hex(challenge.as_bytes()),
                    username: req.username.clone(),
                    platform: req.platform,
                    created_at: at,
                }),
            )
            .await?;
        tracing::warn!(config, user = %req.username, "static SCEP challenge set");
        Ok(ferrocore_proto::ScepChallenge {
            id: None,
            challenge,
            username: req.username.clone(),
            platform: req.platform,
            device_uuid: None,
            expires_at: None,
            config: Some(config.to_owned()),
        })
    }

    /// Removes the static SCEP challenge of an enrollment configuration.
    pub async fn clear_static_scep_challenge(&self, config: &str) -> Result<()> {
        self.issuer(config)?;
        self.store.set_static_scep_challenge(config, None).await?;
        tracing::warn!(config, "static SCEP challenge cleared");
        Ok(())
    }

    async fn existing_user(&self, username: &str) -> Result<()> {
        match self.store.user(username).await? {
            Some(_) => Ok(()),
            None => Err(CoreError::NotFound(format!("user {username:?}"))),
        }
    }

    /// The one issuance step every path (registration, renewal, migration) goes through:
    /// the device's enrollment configuration signs with the policy's lifetime.
    pub(crate) async fn issue_identity(
        &self,
        device: &DeviceRecord,
        policy: &PolicyRecord,
        csr: &VerifiedCsr,
        now: OffsetDateTime,
    ) -> Result<IssuedCert> {
        let config = device.enrollment_config.as_deref().unwrap_or(LOCAL_CONFIG);
        let issuer = self.issuer(config)?;
        let names = self
            .directory
            .cert_names(&device.username)
            .await?
            .unwrap_or_default();
        let profile = ClientProfile {
            device_uuid: device.device_uuid.clone(),
            username: device.username.clone(),
            email: names.email,
            upn: names.upn,
            lifetime: time::Duration::days(i64::from(policy.cert_lifetime_days)),
            crl_url: self.publication.crl_url(config),
            ocsp_url: self.publication.ocsp_url.clone(),
        };
        issuer.issue(csr, &profile, now).await
    }

    /// Refuses a CSR the configuration cannot use before anything is sent or written.
    pub(crate) fn check_csr_for(&self, config: &str, csr: &VerifiedCsr) -> Result<()> {
        self.issuer(config)?
            .csr_requirements()
            .check(csr)
            .map_err(CoreError::CsrAttributesRequired)
    }

    /// What an agent's CSR must carry for the configuration new identities come from,
    /// answered to an authenticated user only (it may hold the external CA's challenge).
    pub async fn csr_attributes(
        &self,
        username: &str,
        password: &str,
    ) -> Result<crate::issuance::CsrRequirements> {
        self.directory.authenticate(username, password).await?;
        let selected = self.store.mutual_auth().await?.enrollment_config;
        Ok(self.issuer(&selected)?.csr_requirements())
    }

    /// [`Core::csr_attributes`] for a registered device: with its certificate, what its
    /// configuration needs (renewal); with its device secret, what the selected one needs
    /// (migration).
    pub async fn csr_attributes_of_device(
        &self,
        credential: DeviceCredential,
    ) -> Result<crate::issuance::CsrRequirements> {
        let config = match credential {
            DeviceCredential::Certificate(cert) => self
                .authenticate_cert(&cert, Purpose::Renewal)
                .await?
                .enrollment_config
                .unwrap_or_else(|| LOCAL_CONFIG.to_owned()),
            DeviceCredential::Secret {
                device_uuid,
                secret,
            } => {
                self.authenticate_secret(&device_uuid, &secret).await?;
                self.store.mutual_auth().await?.enrollment_config
            }
            DeviceCredential::None => return Err(CoreError::InvalidCredentials),
        };
        Ok(self.issuer(&config)?.csr_requirements())
    }

    pub(crate) fn decide_for(
        &self,
        platform: Platform,
        kind: ClientKind,
        version: &Version,
        setting: SettingState,
        history: History,
    ) -> Result<Decision> {
        rules::decide(platform, kind, version, setting, history).map_err(|u| {
            CoreError::UnsupportedClient {
                platform: u.platform.to_string(),
                kind: u.kind.to_string(),
            }
        })
    }

    // ------------------------------------------------------------------ check-in

    /// A device check-in. The credential decides the path: a verified certificate (mutual
    /// mode, device listener) or a device secret (legacy mode, the device's listener).
    pub async fn checkin(
        &self,
        credential: DeviceCredential,
        via: Listener,
        req: CheckinRequest,
    ) -> Result<CheckedIn> {
        let (device, by_cert) = match credential {
            DeviceCredential::Certificate(cert) => {
                let d = self.authenticate_cert(&cert, Purpose::Checkin).await?;
                (d, Some(cert.serial))
            }
            DeviceCredential::Secret {
                device_uuid,
                secret,
            } => (self.authenticate_secret(&device_uuid, &secret).await?, None),
            DeviceCredential::None => {
                return Err(if via == Listener::Device {
                    CoreError::ClientCertRequired
                } else {
                    CoreError::DeviceSecretRequired
                });
            }
        };
        // A directory user disabled, deleted or removed from the enrolling groups (as last
        // refreshed: no directory is asked here, so an outage never blocks a check-in).
        self.directory.check_user(&device.username).await?;
        let reported_version = match req.client_version.as_deref() {
            Some(v) => Some(v.parse::<Version>().map_err(CoreError::InvalidVersion)?),
            None => None,
        };
        let mut device = device;
        let stored_version = device.client_version.clone();
        if let Some(v) = &reported_version {
            device.client_version = v.to_string();
        }
        let migrating = by_cert.is_some() && device.migration_status == MigrationStatus::Pending;
        let expected = if migrating {
            Listener::Device
        } else {
            device.listener
        };
        if expected != via {
            return Err(CoreError::WrongListener(format!(
                "this device checks in on the {expected} listener"
            )));
        }
        let policy = self.policy_of(&device).await?;
        let now = self.now();
        let at = now.unix_timestamp();
        let mut effects = CheckinEffects {
            // Written only when the agent reports a version other than the recorded one.
            client_version: reported_version
                .as_ref()
                .map(|v| v.to_string())
                .filter(|v| *v != stored_version),
            ..CheckinEffects::default()
        };
        let mut actions = Vec::new();
        // Table 4 asked again: a legacy device the rules now put in mutual mode (an MDM
        // device once mutual authentication is enabled) becomes mutual with its certificate,
        // or is sent to get one (migration).
        let rules_say_mutual = device.mode == AuthMode::Legacy
            && decision_of(&device, &self.store.mutual_auth().await?).is_some_and(|d| d.mutual);
        if let Some(serial) = &by_cert {
            if device.current_cert_serial.as_deref() == Some(serial.as_str()) {
                effects.supersede = device.previous_cert_serial.clone();
                effects.migration_success = migrating;
                effects.mutual = rules_say_mutual && !migrating;
            }
        } else if rules_say_mutual {
            actions.push(Action::Migrate);
        } else if device.mode == AuthMode::Legacy && policy.migrate_client {
            match self.migration_check(&device).await? {
                Ok(()) => actions.push(Action::Migrate),
                Err(_) if device.migration_status == MigrationStatus::None => {
                    effects.migration_not_supported = true;
                }
                Err(_) => {}
            }
        }
        self.store
            .record_checkin(
                &CheckinRecord {
                    device_id: device.id.clone(),
                    at,
                    listener: via,
                    mode: if by_cert.is_some() {
                        AuthMode::Mutual
                    } else {
                        AuthMode::Legacy
                    },
                },
                &effects,
            )
            .await?;
        if effects.supersede.is_some() {
            device.previous_cert_serial = None;
            self.publish_crl().await?;
        }
        if effects.migration_success {
            device.migration_status = MigrationStatus::Success;
            device.mode = AuthMode::Mutual;
            device.listener = Listener::Device;
            device.secret_hash = None;
            tracing::info!(device = %device.id, "migration to mutual authentication succeeded");
        }
        if effects.migration_not_supported {
            device.migration_status = MigrationStatus::NotSupported;
        }
        if effects.mutual {
            device.mode = AuthMode::Mutual;
            device.listener = Listener::Device;
            device.secret_hash = None;
            tracing::info!(device = %device.id, "the rules now put this device in mutual mode");
        }
        device.last_checkin_at = Some(at);
        let lifecycle = self.lifecycle(&device, &policy);
        if let Some(l) = lifecycle
            .as_ref()
            .filter(|l| l.supports_renewal && at >= l.renew_from)
        {
            actions.push(Action::Renew {
                not_after: l.not_after,
            });
        }
        Ok(CheckedIn {
            device,
            policy,
            at,
            lifecycle,
            actions,
        })
    }

    /// The lifecycle facts of a mutual-mode device's current certificate.
    pub fn lifecycle(
        &self,
        device: &DeviceRecord,
        policy: &PolicyRecord,
    ) -> Option<CertificateLifecycle> {
        let serial = device.current_cert_serial.clone()?;
        let not_after = device.cert_not_after?;
        let window = renewal_window_days(policy);
        Some(CertificateLifecycle {
            serial,
            not_after,
            renewal_window_days: window,
            renew_from: not_after - i64::from(window) * 86_400,
            grace_until: not_after + GRACE.whole_seconds(),
            supports_renewal: supports_renewal(device),
        })
    }

    /// Checks a presented certificate against the store: known, current (or the one a pending
    /// renewal replaces), unrevoked, device active, and within validity — or, for renewal
    /// only, expired less than [`GRACE`] ago. A certificate expired longer ago retires its
    /// device on contact. Run on every request, not only at the handshake.
    pub async fn authenticate_cert(
        &self,
        cert: &PresentedCert,
        purpose: Purpose,
    ) -> Result<DeviceRecord> {
        let identity = self
            .store
            .identity_by_serial(&cert.serial)
            .await?
            .ok_or_else(|| CoreError::CertUnknown(cert.serial.clone()))?;
        if let Some(h) = &cert.sha256
            && *h != sha256_hex(&identity.cert_der)
        {
            return Err(CoreError::CertUnknown(format!(
                "{}: another certificate with this serial is recorded",
                cert.serial
            )));
        }
        if identity.device.status == DeviceStatus::Retired {
            return Err(CoreError::DeviceRetired);
        }
        if identity.cert_status == CertStatus::Revoked {
            return Err(CoreError::CertRevoked {
                reason: identity
                    .revocation_reason
                    .unwrap_or_else(|| "unspecified".into()),
            });
        }
        let d = &identity.device;
        if d.reregister_required {
            return Err(CoreError::ReregistrationRequired);
        }
        let current = d.current_cert_serial.as_deref() == Some(cert.serial.as_str());
        let previous = d.previous_cert_serial.as_deref() == Some(cert.serial.as_str());
        if !current && !previous {
            return Err(CoreError::CertSuperseded);
        }
        let now = self.now().unix_timestamp();
        if cert.not_after < now {
            if now > cert.not_after + GRACE.whole_seconds() {
                // Out of contact through the window and the grace: retire at once.
                self.retire_device(&d.id).await?;
                return Err(CoreError::DeviceRetired);
            }
            if purpose == Purpose::Checkin || !supports_renewal(d) {
                return Err(CoreError::CertExpired {
                    not_after: cert.not_after,
                });
            }
        }
        Ok(identity.device)
    }

    /// Whether a legacy device may migrate now (policy aside): Android agent 10.1+, with
    /// mutual authentication enabled.
    pub(crate) async fn migration_check(
        &self,
        device: &DeviceRecord,
    ) -> Result<Result<(), String>> {
        let version: Version = device
            .client_version
            .parse()
            .map_err(CoreError::InvalidVersion)?;
        if !(device.platform == Platform::Android
            && device.client_kind == ClientKind::Agent
            && version.at_least(&rules::ANDROID_AGENT_RENEWAL_MIN))
        {
            return Ok(Err(format!(
                "{} {} {} cannot migrate (Android agent 10.1 or later can)",
                device.platform, device.client_kind, device.client_version
            )));
        }
        if self.store.mutual_auth().await?.enabled_at.is_none() {
            return Ok(Err("mutual authentication is not enabled".into()));
        }
        Ok(Ok(()))
    }

    // ------------------------------------------------------------------ renewal, migration

    /// Renews a device's identity certificate: a new key's CSR, authenticated with the current
    /// certificate over mutual TLS (or with one expired less than [`GRACE`] ago).
    pub async fn renew(&self, cert: &PresentedCert, csr_pem: &str) -> Result<Reissued> {
        let csr = ferrocore_pki::parse_csr(csr_pem.as_bytes())?;
        self.renew_with(cert, &csr, IssueReason::Renewal).await
    }

    /// An agent-style renewal (`/api/v1/renew`, EST simplereenroll) through the [`Renewal`]
    /// provisioner.
    pub(crate) async fn renew_with(
        &self,
        cert: &PresentedCert,
        csr: &VerifiedCsr,
        reason: IssueReason,
    ) -> Result<Reissued> {
        let e = self
            .enroll(&Renewal {
                cert: cert.clone(),
                csr: csr.clone(),
                style: RenewalStyle::Agent,
                reason,
                scep_request: None,
            })
            .await?;
        reissued_of(e)
    }

    /// Issues a legacy device its mutual-auth identity certificate (migration), authenticated
    /// with its device secret. Its status becomes pending until it checks in with it.
    pub async fn migrate(
        &self,
        device_uuid: &str,
        secret: &str,
        csr_pem: &str,
    ) -> Result<Reissued> {
        let csr = ferrocore_pki::parse_csr(csr_pem.as_bytes())?;
        let e = self
            .enroll(&Migration {
                device_uuid: device_uuid.to_owned(),
                secret: secret.to_owned(),
                csr,
            })
            .await?;
        reissued_of(e)
    }

    /// The periodic sweep: retires every device whose certificate expired more than
    /// [`GRACE`] ago. Returns how many were retired.
    pub async fn sweep_expired(&self) -> Result<u64> {
        let now = self.now().unix_timestamp();
        let n = self
            .store
            .retire_expired(now - GRACE.whole_seconds(), now)
            .await?;
        if n > 0 {
            self.publish_crl().await?;
            tracing::info!(retired = n, "expired devices retired");
        }
        Ok(n)
    }

    /// Devices inside their renewal window that have not renewed, or expired and not retired yet.
    pub async fn renewal_at_risk(&self, limit: u32, offset: u64) -> Result<Page<AtRisk>> {
        self.store
            .renewal_at_risk(
                self.now().unix_timestamp(),
                GRACE.whole_seconds(),
                limit,
                offset,
            )
            .await
    }

    pub(crate) async fn authenticate_secret(
        &self,
        device_uuid: &str,
        secret: &str,
    ) -> Result<DeviceRecord> {
        let uuid = normalise_uuid(device_uuid).map_err(|_| CoreError::DeviceUnknown)?;
        let device = self
            .store
            .device_by_uuid(&uuid)
            .await?
            .ok_or(CoreError::DeviceUnknown)?;
        if device.status == DeviceStatus::Retired {
            return Err(CoreError::DeviceRetired);
        }
        let Some(expected) = device.secret_hash.as_deref() else {
            return Err(CoreError::MutualAuthRequired);
        };
        let given = sha256_hex(secret.as_bytes());
        if constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes()).is_err() {
            return Err(CoreError::InvalidCredentials);
        }
        Ok(device)
    }

    // ------------------------------------------------------------------ settings

    pub async fn mutual_auth(&self) -> Result<crate::store::MutualAuthRow> {
        self.store.mutual_auth().await
    }

    /// Switches mutual authentication on. Idempotent; there is no way back.
    pub async fn enable_mutual_auth(&self) -> Result<crate::store::MutualAuthRow> {
        let row = self
            .store
            .enable_mutual_auth(self.now().unix_timestamp())
            .await?;
        tracing::warn!("mutual authentication enabled (irreversible)");
        Ok(row)
    }

    /// Refuses to switch mutual authentication off.
    pub async fn disable_mutual_auth(&self) -> Result<()> {
        Err(CoreError::MutualAuthIrreversible)
    }

    pub async fn sync_tls_enabled(&self) -> Result<bool> {
        self.store.sync_tls_enabled().await
    }

    pub async fn set_sync_tls_enabled(&self, enabled: bool, force: bool) -> Result<()> {
        self.store.set_sync_tls_enabled(enabled, force).await
    }

    // ------------------------------------------------------------------ users

    pub async fn add_user(
        &self,
        username: &str,
        password: &str,
        email: Option<String>,
    ) -> Result<UserRecord> {
        validate_username(username)?;
        if password.len() < 8 || password.len() > 1024 {
            return Err(CoreError::BadRequest(
                "password must be 8 to 1024 characters".into(),
            ));
        }
        if let Some(e) = email.as_ref().filter(|e| !e.contains('@') || e.len() > 254) {
            return Err(CoreError::BadRequest(format!("invalid email {e:?}")));
        }
        let pw = password.to_owned();
        let password_hash = crate::directory::hashing_pool()
            .run(move || hash_password(&pw))
            .await??;
        let user = UserRecord {
            username: username.to_owned(),
            password_hash,
            email,
            created_at: self.now().unix_timestamp(),
        };
        self.store.create_user(&user).await?;
        Ok(user)
    }

    pub async fn users(&self) -> Result<Vec<UserRecord>> {
        self.store.list_users().await
    }

    /// Removes a user; their outstanding enrollment grants are revoked and the static SCEP
    /// challenges naming them removed in the same transaction.
    pub async fn remove_user(&self, username: &str) -> Result<()> {
        self.store
            .delete_user(username, self.now().unix_timestamp())
            .await
    }

    /// Whether the user an enrollment grant names still exists (grants of a deleted user are
    /// revoked with it; this also covers a grant read just before the deletion).
    pub(crate) async fn grant_user_exists(&self, username: &str) -> Result<bool> {
        Ok(self.store.user(username).await?.is_some())
    }

    // ------------------------------------------------------------------ devices, certificates

    pub async fn devices(&self, q: &DeviceQuery) -> Result<Page<DeviceRecord>> {
        self.store.list_devices(q).await
    }

    pub async fn device(&self, id: &str) -> Result<DeviceRecord> {
        self.store
            .device(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("device {id}")))
    }

    pub async fn device_checkins(&self, id: &str, limit: u32) -> Result<Vec<CheckinRecord>> {
        self.store.checkins(id, limit).await
    }

    /// Retires a device: its certificates are revoked and its next check-in is refused.
    pub async fn retire_device(&self, id: &str) -> Result<DeviceRecord> {
        let revoked = self
            .store
            .retire_device(id, self.now().unix_timestamp())
            .await?;
        if !revoked.is_empty() {
            self.publish_crl().await?;
        }
        tracing::info!(device = %id, revoked = revoked.len(), "device retired");
        self.device(id).await
    }

    pub async fn certificates(
        &self,
        device_id: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<Page<CertRecord>> {
        self.store.certificates(device_id, limit, offset).await
    }

    pub async fn revoke_certificate(
        &self,
        serial: &str,
        reason: Option<&str>,
    ) -> Result<CertRecord> {
        let serial = serial.trim().to_ascii_lowercase();
        let reason: RevocationReason = reason
            .unwrap_or("unspecified")
            .parse()
            .map_err(|e: ferrocore_pki::PkiError| CoreError::BadRequest(e.to_string()))?;
        self.store
            .revoke_certificate(&serial, reason.as_str(), self.now().unix_timestamp())
            .await?;
        self.publish_crl().await?;
        self.store
            .certificate(&serial)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("certificate {serial}")))
    }

    // ------------------------------------------------------------------ policy

    pub async fn policies(&self) -> Result<Vec<PolicyRecord>> {
        self.store.list_policies().await
    }

    pub async fn policy(&self, name: &str) -> Result<PolicyRecord> {
        self.store
            .policy(name)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("policy {name:?}")))
    }

    /// Creates a policy (`Conflict` when it exists); every value is validated first.
    pub async fn create_policy(
        &self,
        name: &str,
        change: &ferrocore_proto::PolicyChange,
    ) -> Result<PolicyRecord> {
        self.write_policy(name, change, PolicyWrite::Create).await
    }

    /// Changes an existing policy (`NotFound` otherwise); every value is validated first.
    pub async fn change_policy(
        &self,
        name: &str,
        change: &ferrocore_proto::PolicyChange,
    ) -> Result<PolicyRecord> {
        self.write_policy(name, change, PolicyWrite::Change).await
    }

    async fn write_policy(
        &self,
        name: &str,
        change: &ferrocore_proto::PolicyChange,
        write: PolicyWrite,
    ) -> Result<PolicyRecord> {
        validate_username(name).map_err(|_| {
            CoreError::InvalidSetting(format!(
                "policy name {name:?}: 1-128 characters of letters, digits, . _ - @"
            ))
        })?;
        let existing = self.store.policy(name).await?;
        let mut p = match (existing, write) {
            (Some(_), PolicyWrite::Create) => {
                return Err(CoreError::Conflict(format!(
                    "policy {name:?} already exists"
                )));
            }
            (None, PolicyWrite::Change) => {
                return Err(CoreError::NotFound(format!("policy {name:?}")));
            }
            (Some(p), PolicyWrite::Change) => p,
            (None, PolicyWrite::Create) => {
                let mut p = self.default_policy().await?;
                p.name = name.to_owned();
                p.migrate_client = false;
                p.renewal_window_days = None;
                p
            }
        };
        if let Some(v) = change.checkin_interval_secs {
            if !(60..=7 * 86_400).contains(&v) {
                return Err(CoreError::InvalidSetting(format!(
                    "checkin_interval_secs {v}: must be 60 to 604800"
                )));
            }
            p.checkin_interval_secs = v;
        }
        if let Some(v) = change.cert_lifetime_days {
            if !(1..=3650).contains(&v) {
                return Err(CoreError::InvalidSetting(format!(
                    "cert_lifetime_days {v}: must be 1 to 3650"
                )));
            }
            p.cert_lifetime_days = v;
        }
        if let Some(v) = &change.renewal_window_days {
            p.renewal_window_days = parse_renewal_window(v)?;
        }
        if let Some(v) = change.migrate_client {
            p.migrate_client = v;
        }
        self.store.put_policy(&p).await?;
        self.forget_policies();
        Ok(p)
    }

    pub async fn delete_policy(&self, name: &str) -> Result<()> {
        if name == DEFAULT_POLICY {
            return Err(CoreError::Conflict(
                "the default policy cannot be deleted".into(),
            ));
        }
        self.store.delete_policy(name).await?;
        self.forget_policies();
        Ok(())
    }

    pub async fn assign_policy(&self, device_id: &str, policy: &str) -> Result<DeviceRecord> {
        self.policy(policy).await?;
        self.device(device_id).await?;
        self.store.assign_policy(device_id, policy).await?;
        self.device(device_id).await
    }

    /// The policy a new device of `username` gets: `name`, the one the user's directory
    /// groups map to (when it exists), else the default policy.
    pub(crate) async fn policy_named_or_default(
        &self,
        username: &str,
        name: Option<&str>,
    ) -> Result<PolicyRecord> {
        if let Some(name) = name {
            match self.cached_policy(name).await? {
                Some(p) => return Ok(p),
                None => tracing::warn!(user = %username, policy = %name,
                    "the directory group's policy does not exist; using the default"),
            }
        }
        self.default_policy().await
    }

    pub(crate) async fn default_policy(&self) -> Result<PolicyRecord> {
        self.cached_policy(DEFAULT_POLICY)
            .await?
            .ok_or_else(|| CoreError::Internal("default policy missing".into()))
    }

    pub(crate) async fn policy_of(&self, device: &DeviceRecord) -> Result<PolicyRecord> {
        match self.cached_policy(&device.policy).await? {
            Some(p) => Ok(p),
            None => self.default_policy().await,
        }
    }

    /// Policies are read on every check-in and change rarely (only through this `Core`), so
    /// they are cached; `create_policy`, `change_policy` and `delete_policy` clear the cache.
    async fn cached_policy(&self, name: &str) -> Result<Option<PolicyRecord>> {
        if let Some(p) = self.policy_cache.load().get(name) {
            return Ok(Some(p.clone()));
        }
        let found = self.store.policy(name).await?;
        if let Some(p) = &found {
            let mut map = self.policy_cache.load().as_ref().clone();
            map.insert(name.to_owned(), p.clone());
            self.policy_cache.store(Arc::new(map));
        }
        Ok(found)
    }

    fn forget_policies(&self) {
        self.policy_cache.store(Arc::new(BTreeMap::new()));
    }

    // ------------------------------------------------------------------ CRL

    /// The CRL currently published for the `local` configuration.
    pub fn crl(&self) -> Arc<PublishedCrl> {
        self.crl_of(LOCAL_CONFIG).unwrap_or_default()
    }

    /// The CRL currently published for an enrollment configuration.
    pub fn crl_of(&self, config: &str) -> Option<Arc<PublishedCrl>> {
        self.crls.load().get(config).cloned()
    }

    /// Rebuilds and publishes every configuration's CRL from the store (every revocation
    /// calls this). Returns the `local` one.
    pub async fn publish_crl(&self) -> Result<Arc<PublishedCrl>> {
        // Every revocation comes through here after it committed: OCSP reads the store again.
        self.ocsp_cache.invalidate();
        let now = self.now();
        let issuers = self.issuers.load_full();
        let mut published = BTreeMap::new();
        for (name, issuer) in issuers.iter() {
            // External CAs publish their own CRLs; Ferrocore signs only for CAs it holds.
            let Some(ca) = issuer.local_ca() else {
                continue;
            };
            let rows = self
                .store
                .revoked_certificates(name, now.unix_timestamp())
                .await?;
            let mut entries = Vec::with_capacity(rows.len());
            for r in rows {
                entries.push(RevokedEntry {
                    serial_hex: r.serial,
                    revoked_at: OffsetDateTime::from_unix_timestamp(r.revoked_at)
                        .map_err(CoreError::internal)?,
                    reason: r.reason.parse().unwrap_or(RevocationReason::Unspecified),
                });
            }
            let number = self.store.next_crl_number().await?;
            let next_update = now + CRL_VALIDITY;
            let der = ca.crl(&entries, number, now, next_update)?;
            let pem = pem::encode(&pem::Pem::new("X509 CRL", der.clone()));
            if let Some(path) = self.publication.crl_path(name) {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(CoreError::internal)?;
                }
                ferrocore_pki::write_public_file(&path, &der).map_err(CoreError::internal)?;
            }
            published.insert(
                name.clone(),
                Arc::new(PublishedCrl {
                    der,
                    pem,
                    number,
                    next_update: next_update.unix_timestamp(),
                }),
            );
        }
        let local = published.get(LOCAL_CONFIG).cloned().unwrap_or_default();
        self.crls.store(Arc::new(published));
        Ok(local)
    }

    // ------------------------------------------------------------------ enrollment configurations

    /// Registers a new local-CA enrollment configuration (its key was stored by the caller).
    pub async fn add_local_ca_config(&self, name: &str, issuer: Arc<LocalIssuer>) -> Result<()> {
        let ca_pem = issuer.ca_pem();
        self.add_config(name, KIND_LOCAL_CA, ca_pem, None, issuer)
            .await
    }

    /// Registers a new enrollment configuration of any kind (its files were stored by the
    /// caller, who removes them if this fails): recorded, then usable at once.
    pub async fn add_config(
        &self,
        name: &str,
        kind: &str,
        ca_cert_pem: String,
        scep: Option<crate::store::ScepParams>,
        issuer: Arc<dyn Issuer>,
    ) -> Result<()> {
        validate_config_name(name)?;
        self.store
            .add_enrollment_config(&crate::store::EnrollmentConfigRecord {
                name: name.to_owned(),
                kind: kind.to_owned(),
                ca_cert_pem,
                created_at: self.now().unix_timestamp(),
                scep,
            })
            .await?;
        self.install_issuer(name, issuer);
        self.publish_crl().await?;
        Ok(())
    }

    pub async fn enrollment_configs(&self) -> Result<Vec<crate::store::EnrollmentConfigRecord>> {
        self.store.enrollment_configs().await
    }

    /// Changes the configuration mutual-auth identities come from. A dry run only reports the
    /// devices that would have to register again; applied, those devices' check-ins are
    /// refused with "register again" (devices without mutual authentication carry on).
    pub async fn select_enrollment_config(
        &self,
        name: &str,
        mode: SelectionMode,
    ) -> Result<SelectionChange> {
        let confirm = mode == SelectionMode::Apply;
        self.issuer(name)?;
        let current = self.store.mutual_auth().await?.enrollment_config;
        let (affected, affected_total) = self.store.devices_outside_config(name, 1000).await?;
        if confirm {
            self.store
                .select_enrollment_config(name, self.now().unix_timestamp())
                .await?;
            tracing::warn!(from = %current, to = %name, devices = affected_total, "enrollment configuration changed");
        }
        Ok(SelectionChange {
            applied: confirm,
            current,
            proposed: name.to_owned(),
            affected,
            affected_total,
        })
    }
}

/// Whether a policy write creates or changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyWrite {
    Create,
    Change,
}

/// Whether an enrollment-configuration selection is applied or only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectionMode {
    DryRun,
    Apply,
}

/// Parses the renewal window as an administrator enters it: a whole number of days from 1 to
/// 60, or blank (`""` or `null`) for the default of 60.
pub fn parse_renewal_window(v: &serde_json::Value) -> Result<Option<u32>> {
    let bad = |shown: String| {
        CoreError::InvalidSetting(format!(
            "renewal_window_days {shown}: enter a whole number of days from 1 to 60, or leave it blank for 60"
        ))
    };
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(None),
        serde_json::Value::String(s) => match s.trim().parse::<i64>() {
            Ok(n) if (1..=60).contains(&n) => Ok(u32::try_from(n).ok()),
            _ => Err(bad(format!("{s:?}"))),
        },
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(n) if (1..=60).contains(&n) => Ok(u32::try_from(n).ok()),
            _ => Err(bad(n.to_string())),
        },
        other => Err(bad(other.to_string())),
    }
}

/// Whether the device's client renews its certificate (by platform, kind and version).
pub fn supports_renewal(d: &DeviceRecord) -> bool {
    d.client_version
        .parse::<Version>()
        .map(|v| rules::supports_renewal(d.platform, d.client_kind, &v))
        .unwrap_or(false)
}

fn reissued_of(e: Enrolled) -> Result<Reissued> {
    let issued = e
        .issued
        .ok_or_else(|| CoreError::internal("reissue without a certificate"))?;
    Ok(Reissued {
        device: e.device,
        issued,
        ca_pem: e.issuer.ca_pem(),
    })
}

fn scep_issued_of(e: Enrolled) -> Result<ScepIssued> {
    let issued = e
        .issued
        .ok_or_else(|| CoreError::internal("SCEP enrollment without a certificate"))?;
    Ok(ScepIssued {
        cert_der: issued.der,
        ca_der: e.issuer.ca_der(),
        device_id: e.device.id,
    })
}

/// Table 4's column for the current setting.
pub fn setting_state(ma: &crate::store::MutualAuthRow) -> SettingState {
    match ma.enabled_at {
        None => SettingState::NotEnabled,
        Some(_) => SettingState::EnabledAfterInstall,
    }
}

pub(crate) fn normalise_uuid(s: &str) -> Result<String> {
    uuid::Uuid::parse_str(s.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| CoreError::InvalidDeviceUuid(s.chars().take(64).collect()))
}

pub fn validate_config_name(n: &str) -> Result<()> {
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(CoreError::BadRequest(format!(
            "invalid configuration name {n:?}: 1-64 characters of a-z, 0-9, - and _"
        )))
    }
}

fn validate_username(u: &str) -> Result<()> {
    let ok = !u.is_empty()
        && u.len() <= 128
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(CoreError::BadRequest(format!(
            "invalid username {:?}: 1-128 characters of letters, digits, . _ - @",
            u.chars().take(64).collect::<String>()
        )))
    }
}

/// A SCEP challenge: 160 random bits as hex (a valid PrintableString, which CSR
/// challengePassword attributes usually are).
fn random_challenge() -> Result<String> {
    let mut bytes = [0u8; 20];
    lc_rand::fill(&mut bytes).map_err(|_| CoreError::Internal("rng failure".into()))?;
    Ok(hex::encode(bytes))
}

pub(crate) fn random_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    lc_rand::fill(&mut bytes).map_err(|_| CoreError::Internal("rng failure".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub use ferrocore_pki::sha256_hex;
