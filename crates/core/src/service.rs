//! [`Core`]: the operations of the device and admin APIs, transport-neutral.
//!
//! The server layer turns a request into a call here (with the listener it arrived on and the
//! verified client certificate, if any) and turns the result into HTTP. Each state change is
//! one store transaction; a CRL is republished after every revocation.

use crate::clock::Clock;
use crate::directory::{Directory, hash_password};
use crate::error::{CoreError, Result};
use crate::issuance::{Issuer, LocalIssuer, PublishedCrl};
use crate::rules::{self, Decision, History, SettingState, Version};
use crate::store::{
    CertRecord, CheckinRecord, DeviceQuery, DeviceRecord, Page, PolicyRecord, Registration, Store,
    UserRecord,
};
use arc_swap::ArcSwap;
use aws_lc_rs::{constant_time, digest, rand as lc_rand};
use base64::Engine;
use ferrocore_pki::{ClientProfile, RevocationReason, RevokedEntry};
use ferrocore_proto::{
    AuthMode, CertStatus, CheckinRequest, ClientKind, DeviceStatus, Listener, Platform,
    RegisterRequest,
};
use std::path::PathBuf;
use std::sync::Arc;
use time::OffsetDateTime;

/// Name of the policy every installation has.
pub const DEFAULT_POLICY: &str = "default";
/// How long a published CRL is valid; it is republished on every revocation and daily.
pub const CRL_VALIDITY: time::Duration = time::Duration::days(7);

/// A client certificate the server layer verified (chain to a trusted CA, within validity).
#[derive(Debug, Clone)]
pub struct PresentedCert {
    pub serial: String,
    pub not_after: i64,
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

/// Result of a check-in.
#[derive(Debug, Clone)]
pub struct CheckedIn {
    pub device: DeviceRecord,
    pub policy: PolicyRecord,
    pub at: i64,
}

/// Where the CA's public material is published.
#[derive(Debug, Clone, Default)]
pub struct PkiPublication {
    /// URL put into issued certificates' CRL distribution point.
    pub crl_url: Option<String>,
    /// File the current CRL (DER) is written to.
    pub crl_path: Option<PathBuf>,
}

pub struct Core {
    store: Arc<dyn Store>,
    directory: Arc<dyn Directory>,
    local_ca: Arc<LocalIssuer>,
    clock: Arc<dyn Clock>,
    publication: PkiPublication,
    crl: ArcSwap<PublishedCrl>,
}

impl Core {
    pub fn new(
        store: Arc<dyn Store>,
        directory: Arc<dyn Directory>,
        local_ca: Arc<LocalIssuer>,
        clock: Arc<dyn Clock>,
        publication: PkiPublication,
    ) -> Self {
        Core {
            store,
            directory,
            local_ca,
            clock,
            publication,
            crl: ArcSwap::from_pointee(PublishedCrl::default()),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    pub fn local_ca(&self) -> &Arc<LocalIssuer> {
        &self.local_ca
    }
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    // ------------------------------------------------------------------ registration

    /// Registers (or re-registers) a device. `via` is the listener the request came in on.
    pub async fn register(&self, req: RegisterRequest, via: Listener) -> Result<Registered> {
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
        let user = self
            .directory
            .authenticate(&req.username, &req.password)
            .await?;

        let ma = self.store.mutual_auth().await?;
        let setting = setting_state(&ma);
        let history = if ma.enabled_at.is_some() {
            History::RegisteredAfterEnable
        } else {
            History::RegisteredBeforeEnable
        };
        let decision =
            self.decide_for(req.platform, req.client_kind, &version, setting, history)?;
        let _ = via; // registration is accepted on either device-facing listener
        let policy = self.default_policy().await?;
        let now = self.now();
        let at = now.unix_timestamp();

        let existing = self.store.device_by_uuid(&device_uuid).await?;
        let revoke: Vec<String> = match &existing {
            Some(d) => self
                .store
                .certificates(Some(&d.id), 10_000, 0)
                .await?
                .items
                .into_iter()
                .filter(|c| c.status == CertStatus::Active)
                .map(|c| c.serial)
                .collect(),
            None => Vec::new(),
        };
        let id = existing
            .as_ref()
            .map(|d| d.id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

        let mut device = DeviceRecord {
            id,
            device_uuid: device_uuid.clone(),
            username: user.username.clone(),
            platform: req.platform,
            client_kind: req.client_kind,
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
            policy: policy.name.clone(),
        };

        let mut cert_record = None;
        let mut certificate_pem = None;
        let mut device_secret = None;
        if decision.mutual {
            let csr = csr.ok_or(CoreError::CsrRequired)?;
            let profile = ClientProfile {
                device_uuid: device_uuid.clone(),
                username: user.username.clone(),
                email: None,
                upn: None,
                lifetime: time::Duration::days(i64::from(policy.cert_lifetime_days)),
                crl_url: self.publication.crl_url.clone(),
                ocsp_url: None,
            };
            let issued = self.local_ca.issue(&csr, &profile, now)?;
            device.current_cert_serial = Some(issued.serial_hex.clone());
            device.cert_not_after = Some(issued.not_after.unix_timestamp());
            cert_record = Some(CertRecord {
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
            });
            certificate_pem = Some(issued.pem);
        } else {
            let secret = random_secret()?;
            device.secret_hash = Some(sha256_hex(secret.as_bytes()));
            device_secret = Some(secret);
        }

        let reg = Registration {
            device: device.clone(),
            cert: cert_record,
            revoke: revoke.clone(),
        };
        self.store.apply_registration(&reg, at).await?;
        if !revoke.is_empty() {
            self.publish_crl().await?;
        }
        tracing::info!(
            device = %device.id, uuid = %device.device_uuid, user = %device.username,
            platform = %device.platform, kind = %device.client_kind, mode = %device.mode,
            "device registered"
        );
        Ok(Registered {
            device,
            certificate_pem,
            device_secret,
            ca_pem: self.local_ca.ca_pem(),
            policy,
        })
    }

    fn decide_for(
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
        let device = match credential {
            DeviceCredential::Certificate(cert) => self.authenticate_cert(&cert).await?,
            DeviceCredential::Secret {
                device_uuid,
                secret,
            } => self.authenticate_secret(&device_uuid, &secret).await?,
            DeviceCredential::None => {
                return Err(if via == Listener::Device {
                    CoreError::ClientCertRequired
                } else {
                    CoreError::DeviceSecretRequired
                });
            }
        };
        if device.listener != via {
            return Err(CoreError::WrongListener(format!(
                "this device checks in on the {} listener",
                device.listener
            )));
        }
        if let Some(v) = req.client_version.as_deref() {
            // Validate only; version changes are recorded at registration.
            v.parse::<Version>().map_err(CoreError::InvalidVersion)?;
        }
        let at = self.now().unix_timestamp();
        self.store
            .record_checkin(&CheckinRecord {
                device_id: device.id.clone(),
                at,
                listener: via,
                mode: device.mode,
            })
            .await?;
        let policy = self.policy_of(&device).await?;
        let mut device = device;
        device.last_checkin_at = Some(at);
        Ok(CheckedIn { device, policy, at })
    }

    /// Checks a presented certificate against the store: known, current, unrevoked, device
    /// active. Run on every request, not only at the handshake.
    pub async fn authenticate_cert(&self, cert: &PresentedCert) -> Result<DeviceRecord> {
        let identity = self
            .store
            .identity_by_serial(&cert.serial)
            .await?
            .ok_or_else(|| CoreError::CertUnknown(cert.serial.clone()))?;
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
        if identity.device.current_cert_serial.as_deref() != Some(cert.serial.as_str()) {
            return Err(CoreError::CertSuperseded);
        }
        if cert.not_after < self.now().unix_timestamp() {
            return Err(CoreError::CertExpired {
                not_after: cert.not_after,
            });
        }
        Ok(identity.device)
    }

    async fn authenticate_secret(&self, device_uuid: &str, secret: &str) -> Result<DeviceRecord> {
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
        let password_hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(CoreError::internal)??;
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

    pub async fn remove_user(&self, username: &str) -> Result<()> {
        self.store.delete_user(username).await
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

    async fn default_policy(&self) -> Result<PolicyRecord> {
        self.store
            .policy(DEFAULT_POLICY)
            .await?
            .ok_or_else(|| CoreError::Internal("default policy missing".into()))
    }

    async fn policy_of(&self, device: &DeviceRecord) -> Result<PolicyRecord> {
        match self.store.policy(&device.policy).await? {
            Some(p) => Ok(p),
            None => self.default_policy().await,
        }
    }

    // ------------------------------------------------------------------ CRL

    /// The CRL currently published.
    pub fn crl(&self) -> Arc<PublishedCrl> {
        self.crl.load_full()
    }

    /// Rebuilds and publishes the CRL from the store (every revocation calls this).
    pub async fn publish_crl(&self) -> Result<Arc<PublishedCrl>> {
        let now = self.now();
        let rows = self
            .store
            .revoked_certificates(now.unix_timestamp())
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
        let der = self.local_ca.ca().crl(&entries, number, now, next_update)?;
        let pem = pem::encode(&pem::Pem::new("X509 CRL", der.clone()));
        if let Some(path) = &self.publication.crl_path {
            ferrocore_pki::write_public_file(path, &der).map_err(CoreError::internal)?;
        }
        let published = Arc::new(PublishedCrl {
            der,
            pem,
            number,
            next_update: next_update.unix_timestamp(),
        });
        self.crl.store(published.clone());
        Ok(published)
    }
}

/// Table 4's column for the current setting.
pub fn setting_state(ma: &crate::store::MutualAuthRow) -> SettingState {
    match (ma.enabled_at, ma.carried_over) {
        (None, _) => SettingState::NotEnabled,
        (Some(_), false) => SettingState::EnabledAfterInstall,
        (Some(_), true) => SettingState::EnabledBeforeUpgrade,
    }
}

fn normalise_uuid(s: &str) -> Result<String> {
    uuid::Uuid::parse_str(s.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| CoreError::InvalidDeviceUuid(s.chars().take(64).collect()))
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

fn random_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    lc_rand::fill(&mut bytes).map_err(|_| CoreError::Internal("rng failure".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data).as_ref())
}
