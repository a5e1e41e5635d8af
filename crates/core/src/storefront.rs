//! The app storefront (Apps@Work) and AppConnect check-ins.
//!
//! [`Storefront`] authenticates storefront clients per
//! [`rules::storefront_credential`](crate::rules::storefront_credential) (the one place the
//! rule lives), lists and finds published apps, and records AppConnect check-ins made with the
//! device's own identity (certificate or legacy secret, on the device's listener). Its
//! storage is the small [`StorefrontStore`] trait; package files are the server's business.

use crate::directory::Directory;
use crate::enrollment::IssueReason;
use crate::error::{CoreError, Result};
use crate::provisioners::StorefrontIdentity;
use crate::rules::{self, StorefrontCredential, Version};
use crate::service::{Core, DeviceCredential, PresentedCert, Purpose};
use crate::store::DeviceRecord;
use async_trait::async_trait;
use ferrocore_proto::{ClientKind, DeviceStatus, Listener, Platform, StorefrontAuth};
use std::sync::Arc;

/// A published app (the package file lives in the server's data directory under `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    pub id: String,
    pub platform: Platform,
    pub name: String,
    pub version: String,
    pub size: u64,
    pub sha256: String,
    pub published_at: i64,
}

/// Per-app AppConnect check-ins of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConnectRecord {
    pub app_id: String,
    pub first_checkin_at: i64,
    pub last_checkin_at: i64,
    pub count: u64,
}

/// Storage of the storefront setting, the app catalogue and AppConnect check-ins. Each
/// state-changing method is one transaction.
#[async_trait]
pub trait StorefrontStore: Send + Sync + 'static {
    async fn storefront_auth(&self) -> Result<StorefrontAuth>;
    async fn set_storefront_auth(&self, auth: StorefrontAuth, at: i64) -> Result<()>;
    async fn add_app(&self, app: &AppRecord) -> Result<()>;
    /// Apps, newest first; only those of `platform` when given.
    async fn apps(&self, platform: Option<Platform>) -> Result<Vec<AppRecord>>;
    async fn app(&self, id: &str) -> Result<Option<AppRecord>>;
    /// `false` when there was no such app.
    async fn remove_app(&self, id: &str) -> Result<bool>;
    /// Counts one check-in of `app_id` on the device (insert or update, one statement).
    async fn record_appconnect_checkin(&self, device_id: &str, app_id: &str, at: i64)
    -> Result<()>;
    async fn appconnect_checkins(&self, device_id: &str) -> Result<Vec<AppConnectRecord>>;
}

/// What a storefront request presented.
#[derive(Debug, Clone)]
pub enum StorefrontPresented {
    /// A certificate the server layer verified on this connection.
    Certificate(PresentedCert),
    /// HTTP Basic credentials and the device they speak for.
    Password {
        username: String,
        password: String,
        device_uuid: String,
    },
    None,
}

/// Longest app identifier accepted.
pub const APP_ID_MAX: usize = 255;

/// Validates an AppConnect app identifier: reverse-DNS-like (`com.example.app`), at least two
/// labels of ASCII letters, digits, `-` and `_`, none empty, at most [`APP_ID_MAX`] bytes.
pub fn parse_app_id(s: &str) -> Result<String> {
    let ok = !s.is_empty()
        && s.len() <= APP_ID_MAX
        && s.split('.').count() >= 2
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !label.starts_with('-')
        })
        && s.starts_with(|c: char| c.is_ascii_alphabetic());
    if ok {
        Ok(s.to_owned())
    } else {
        Err(CoreError::InvalidAppId(s.chars().take(80).collect()))
    }
}

pub struct Storefront {
    core: Arc<Core>,
    directory: Arc<dyn Directory>,
    store: Arc<dyn StorefrontStore>,
}

impl Storefront {
    pub fn new(
        core: Arc<Core>,
        directory: Arc<dyn Directory>,
        store: Arc<dyn StorefrontStore>,
    ) -> Self {
        Storefront {
            core,
            directory,
            store,
        }
    }

    pub fn store(&self) -> &Arc<dyn StorefrontStore> {
        &self.store
    }

    pub async fn auth_setting(&self) -> Result<StorefrontAuth> {
        self.store.storefront_auth().await
    }

    pub async fn set_auth_setting(&self, auth: StorefrontAuth) -> Result<()> {
        let at = self.core.clock().now().unix_timestamp();
        self.store.set_storefront_auth(auth, at).await
    }

    /// Authenticates a storefront client and returns its device. The device is found by
    /// the credential (its certificate, or the uuid a password request names); then the
    /// rule decides which credential this device's storefront client must use, and any
    /// other is refused (defaults deny).
    pub async fn authenticate(&self, presented: StorefrontPresented) -> Result<DeviceRecord> {
        let setting = self.store.storefront_auth().await?;
        let (device, used) = match presented {
            StorefrontPresented::Certificate(cert) => (
                self.authenticate_cert(&cert).await?,
                StorefrontCredential::Certificate,
            ),
            StorefrontPresented::Password {
                username,
                password,
                device_uuid,
            } => {
                let user = self.directory.authenticate(&username, &password).await?;
                let device = self
                    .core
                    .store()
                    .device_by_uuid(&device_uuid.trim().to_ascii_lowercase())
                    .await?
                    // An unknown device: same answer as a wrong password.
                    .ok_or(CoreError::InvalidCredentials)?;
                // Someone else's: the one ownership refusal of every path.
                crate::enrollment::ensure_owner(Some(&device), &user.username)?;
                if device.status == DeviceStatus::Retired {
                    return Err(CoreError::DeviceRetired);
                }
                (device, StorefrontCredential::Password)
            }
            StorefrontPresented::None => {
                return Err(match setting {
                    StorefrontAuth::Certificate => CoreError::ClientCertRequired,
                    StorefrontAuth::Password => CoreError::StorefrontPasswordRequired,
                });
            }
        };
        let version: Version = device
            .client_version
            .parse()
            .map_err(CoreError::InvalidVersion)?;
        let mutual_enabled = self.core.mutual_auth().await?.enabled_at.is_some();
        let required =
            rules::storefront_credential(device.platform, setting, mutual_enabled, &version)
                .map_err(|u| CoreError::UnsupportedClient {
                    platform: u.platform.to_string(),
                    kind: u.kind.to_string(),
                })?;
        match (required, used) {
            (a, b) if a == b => Ok(device),
            (StorefrontCredential::Certificate, _) => Err(CoreError::ClientCertRequired),
            (StorefrontCredential::Password, _) => Err(CoreError::StorefrontPasswordRequired),
        }
    }

    /// A storefront certificate is the device's identity certificate (checked like a check-in)
    /// or, for a legacy device, an unrevoked, unexpired certificate issued to it for the
    /// storefront ([`Storefront::issue_identity`]).
    async fn authenticate_cert(&self, cert: &PresentedCert) -> Result<DeviceRecord> {
        match self.core.authenticate_cert(cert, Purpose::Checkin).await {
            Err(CoreError::CertSuperseded) => {}
            other => return other,
        }
        // Known, this certificate, unrevoked, device active: checked above.
        let record = self
            .core
            .store()
            .certificate(&cert.serial)
            .await?
            .ok_or_else(|| CoreError::CertUnknown(cert.serial.clone()))?;
        let device_id = record.device_id.clone().unwrap_or_default();
        let device = self.core.device(&device_id).await?;
        let now = self.core.clock().now().unix_timestamp();
        if record.issue_reason != IssueReason::Storefront.as_str()
            || device.current_cert_serial.is_some()
        {
            return Err(CoreError::CertSuperseded);
        }
        if cert.not_after < now {
            return Err(CoreError::CertExpired {
                not_after: cert.not_after,
            });
        }
        Ok(device)
    }

    /// Issues a legacy device a storefront certificate when the storefront rule asks it for
    /// one ([`StorefrontIdentity`]), so no registered device is left without a working
    /// storefront credential.
    pub async fn issue_identity(
        &self,
        device_uuid: &str,
        secret: &str,
        csr_pem: &str,
    ) -> Result<crate::service::Reissued> {
        let csr = ferrocore_pki::parse_csr(csr_pem.as_bytes())?;
        let setting = self.store.storefront_auth().await?;
        let e = self
            .core
            .enroll(&StorefrontIdentity {
                device_uuid: device_uuid.to_owned(),
                secret: secret.to_owned(),
                csr,
                setting,
            })
            .await?;
        let issued = e
            .issued
            .ok_or_else(|| CoreError::internal("storefront identity without a certificate"))?;
        Ok(crate::service::Reissued {
            device: e.device,
            issued,
            ca_pem: e.issuer.ca_pem(),
        })
    }

    /// The apps a device may install: those of its platform.
    pub async fn apps_for(&self, device: &DeviceRecord) -> Result<Vec<AppRecord>> {
        self.store.apps(Some(device.platform)).await
    }

    /// One app a device may download.
    pub async fn app_for(&self, device: &DeviceRecord, id: &str) -> Result<AppRecord> {
        let app = self
            .store
            .app(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("app {id}")))?;
        if app.platform != device.platform {
            return Err(CoreError::AppWrongPlatform {
                app: app.platform.to_string(),
                device: device.platform.to_string(),
            });
        }
        Ok(app)
    }

    /// An AppConnect check-in: the app speaks with its device's identity, exactly as the
    /// device checks in (a mutual device with its certificate on the device listener, a
    /// legacy device with its secret on its own listener).
    pub async fn appconnect_checkin(
        &self,
        credential: DeviceCredential,
        via: Listener,
        app_id: &str,
    ) -> Result<AppConnectRecord> {
        let app_id = parse_app_id(app_id)?;
        let device = match credential {
            DeviceCredential::Certificate(cert) => {
                self.core.authenticate_cert(&cert, Purpose::Checkin).await?
            }
            DeviceCredential::Secret {
                device_uuid,
                secret,
            } => self.core.authenticate_secret(&device_uuid, &secret).await?,
            DeviceCredential::None => {
                return Err(if via == Listener::Device {
                    CoreError::ClientCertRequired
                } else {
                    CoreError::DeviceSecretRequired
                });
            }
        };
        // Table 1: AppConnect is part of the iOS and Android device clients.
        if !matches!(device.platform, Platform::Ios | Platform::Android) {
            return Err(CoreError::UnsupportedClient {
                platform: device.platform.to_string(),
                kind: ClientKind::Appconnect.to_string(),
            });
        }
        if device.listener != via {
            return Err(CoreError::WrongListener(format!(
                "this device checks in on the {} listener",
                device.listener
            )));
        }
        let at = self.core.clock().now().unix_timestamp();
        self.store
            .record_appconnect_checkin(&device.id, &app_id, at)
            .await?;
        self.store
            .appconnect_checkins(&device.id)
            .await?
            .into_iter()
            .find(|r| r.app_id == app_id)
            .ok_or_else(|| CoreError::internal("AppConnect check-in not recorded"))
    }

    pub async fn appconnect_checkins(&self, device_id: &str) -> Result<Vec<AppConnectRecord>> {
        self.store.appconnect_checkins(device_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::parse_app_id;

    #[test]
    fn app_ids() {
        for ok in [
            "com.example.app",
            "io.ferrocore.mail-2",
            "a.b",
            "com.Example_1.App",
        ] {
            assert!(parse_app_id(ok).is_ok(), "{ok}");
        }
        let long = format!("com.{}", "a.".repeat(130));
        for bad in [
            "",
            "app",
            ".com.x",
            "com..x",
            "com.x.",
            "1com.x",
            "com.-x",
            "com.ex ample",
            "com.exämple",
            "com/x",
            long.as_str(),
        ] {
            assert!(parse_app_id(bad).is_err(), "{bad:?}");
        }
    }
}
