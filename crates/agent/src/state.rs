//! On-disk state of one device.
//!
//! A state directory holds:
//! * `state.json`: [`DeviceState`] (server host, check-in endpoint, ids, mode, policy, ...);
//! * `key.pem` (mode 0600): the device's private key, never sent anywhere;
//! * `cert.pem`: the issued client certificate (mutual mode only);
//! * `ca.pem`: the CA chain from the registration answer;
//! * `server-ca.pem`: the trust anchors given with `--ca` at registration (used together with
//!   `ca.pem` to verify the server on check-ins);
//! * `secret` (mode 0600): the device secret (legacy mode only).
//!
//! Files are written atomically (temporary file + rename), secrets created with mode 0600.

use anyhow::{Context, Result, bail};
use ferrocore_proto::{AuthMode, CheckinEndpoint, ClientKind, Platform, PolicyInfo};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const KEY_FILE: &str = "key.pem";
pub const CERT_FILE: &str = "cert.pem";
pub const CA_FILE: &str = "ca.pem";
pub const SERVER_CA_FILE: &str = "server-ca.pem";
pub const SECRET_FILE: &str = "secret";

/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceState {
    /// The registration URL as given (`https://HOST:PORT`).
    pub server_url: String,
    /// Host of the registration URL; check-ins go to `https://{host}:{checkin.port}`.
    pub host: String,
    /// Where to check in (updated from check-in answers).
    pub checkin: CheckinEndpoint,
    pub device_id: String,
    pub device_uuid: String,
    pub mode: AuthMode,
    pub platform: Platform,
    pub client_kind: ClientKind,
    pub client_version: String,
    pub policy: PolicyInfo,
    /// Unix time of the last successful registration.
    pub registered_at: i64,
    /// Unix time of the last successful check-in.
    #[serde(default)]
    pub last_checkin_at: Option<i64>,
    /// Whether this client renews its certificate, as the last check-in answer said
    /// (`certificate.supports_renewal`); unknown before the first check-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renews: Option<bool>,
}

impl DeviceState {
    /// `https://{host}:{checkin.port}/api/v1/checkin`.
    pub fn checkin_url(&self) -> String {
        self.endpoint_url(ferrocore_proto::paths::CHECKIN)
    }

    /// `https://{host}:{checkin.port}{path}`: the listener the device currently uses.
    pub fn endpoint_url(&self, path: &str) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("https://{host}:{}{path}", self.checkin.port)
    }
}

/// Everything a device needs to check in, loaded from its state directory.
#[derive(Clone)]
pub struct DeviceFiles {
    pub state: DeviceState,
    pub key_pem: String,
    pub cert_pem: Option<String>,
    pub ca_pem: String,
    pub server_ca_pem: Option<String>,
    pub secret: Option<String>,
}

impl std::fmt::Debug for DeviceFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceFiles")
            .field("state", &self.state)
            .field("has_cert", &self.cert_pem.is_some())
            .field("has_secret", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

impl DeviceFiles {
    /// Trust anchors for check-ins: the registration answer's CA chain plus `--ca`.
    pub fn trust_pem(&self) -> String {
        let mut pem = self.ca_pem.clone();
        if let Some(extra) = &self.server_ca_pem {
            if !pem.ends_with('\n') {
                pem.push('\n');
            }
            pem.push_str(extra);
        }
        pem
    }
}

/// What a successful registration leaves on disk.
pub struct Registration<'a> {
    pub state: &'a DeviceState,
    pub key_pem: &'a str,
    pub cert_pem: Option<&'a str>,
    pub ca_pem: &'a str,
    pub server_ca_pem: Option<&'a str>,
    pub secret: Option<&'a str>,
}

/// A device state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Whether a device was registered here.
    pub fn exists(&self) -> bool {
        self.file(STATE_FILE).is_file()
    }

    pub fn load_state(&self) -> Result<DeviceState> {
        let path = self.file(STATE_FILE);
        let text = fs::read_to_string(&path)
            .with_context(|| format!("reading {} (is the device registered?)", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The stored device uuid, if a (parsable) state exists.
    pub fn stored_uuid(&self) -> Option<String> {
        if !self.exists() {
            return None;
        }
        self.load_state().ok().map(|s| s.device_uuid)
    }

    pub fn load(&self) -> Result<DeviceFiles> {
        let state = self.load_state()?;
        let key_pem = self.read(KEY_FILE)?;
        let ca_pem = self.read(CA_FILE)?;
        let cert_pem = self.read_opt(CERT_FILE)?;
        let server_ca_pem = self.read_opt(SERVER_CA_FILE)?;
        let secret = self
            .read_opt(SECRET_FILE)?
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string());
        match state.mode {
            AuthMode::Mutual if cert_pem.is_none() => bail!(
                "{}: mutual mode but no {CERT_FILE}; register again",
                self.path.display()
            ),
            AuthMode::Legacy if secret.is_none() => bail!(
                "{}: legacy mode but no {SECRET_FILE}; register again",
                self.path.display()
            ),
            _ => {}
        }
        Ok(DeviceFiles {
            state,
            key_pem,
            cert_pem,
            ca_pem,
            server_ca_pem,
            secret,
        })
    }

    /// Write everything of a registration; files of the other mode are removed.
    pub fn save_registration(&self, reg: &Registration<'_>) -> Result<()> {
        self.create()?;
        write_file(&self.file(KEY_FILE), reg.key_pem.as_bytes(), true)?;
        write_file(&self.file(CA_FILE), reg.ca_pem.as_bytes(), false)?;
        match reg.server_ca_pem {
            Some(pem) => write_file(&self.file(SERVER_CA_FILE), pem.as_bytes(), false)?,
            None => remove_if_exists(&self.file(SERVER_CA_FILE))?,
        }
        match reg.cert_pem {
            Some(pem) => write_file(&self.file(CERT_FILE), pem.as_bytes(), false)?,
            None => remove_if_exists(&self.file(CERT_FILE))?,
        }
        match reg.secret {
            Some(s) => write_file(&self.file(SECRET_FILE), s.as_bytes(), true)?,
            None => remove_if_exists(&self.file(SECRET_FILE))?,
        }
        self.save_state(reg.state)
    }

    pub fn save_state(&self, state: &DeviceState) -> Result<()> {
        self.create()?;
        let mut json = serde_json::to_vec_pretty(state)?;
        json.push(b'\n');
        write_file(&self.file(STATE_FILE), &json, false)
    }

    fn create(&self) -> Result<()> {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&self.path)
            .with_context(|| format!("creating {}", self.path.display()))
    }

    fn read(&self, name: &str) -> Result<String> {
        let path = self.file(name);
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    fn read_opt(&self, name: &str) -> Result<Option<String>> {
        let path = self.file(name);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// Atomically replace `path` with `data`; `private`: mode 0600 from creation on.
pub fn write_file(path: &Path, data: &[u8], private: bool) -> Result<()> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("file path without a name")?;
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, if private { 0o600 } else { 0o644 });
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use ferrocore_proto::Listener;

    pub(crate) fn sample_state(mode: AuthMode) -> DeviceState {
        DeviceState {
            server_url: "https://mdm.example:8443".into(),
            host: "mdm.example".into(),
            checkin: CheckinEndpoint {
                listener: Listener::Device,
                port: 8443,
            },
            device_id: "dev-1".into(),
            device_uuid: "4f1c2a3e-0000-4000-8000-000000000001".into(),
            mode,
            platform: Platform::Windows,
            client_kind: ClientKind::Agent,
            client_version: "10.1.0".into(),
            policy: PolicyInfo {
                name: "default".into(),
                checkin_interval_secs: 3600,
            },
            registered_at: 1_700_000_000,
            last_checkin_at: None,
            renews: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::tests_support::sample_state;
    use super::*;
    use ferrocore_proto::Listener;

    #[cfg(unix)]
    fn mode_of(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn mutual_registration_round_trips_with_private_key_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path().join("dev"));
        assert!(!dir.exists());
        assert_eq!(dir.stored_uuid(), None);
        let state = sample_state(AuthMode::Mutual);
        dir.save_registration(&Registration {
            state: &state,
            key_pem: "KEY",
            cert_pem: Some("CERT"),
            ca_pem: "CA\n",
            server_ca_pem: Some("SERVERCA\n"),
            secret: None,
        })
        .unwrap();
        assert!(dir.exists());
        let loaded = dir.load().unwrap();
        assert_eq!(loaded.state.device_id, "dev-1");
        assert_eq!(loaded.state.mode, AuthMode::Mutual);
        assert_eq!(loaded.key_pem, "KEY");
        assert_eq!(loaded.cert_pem.as_deref(), Some("CERT"));
        assert_eq!(loaded.secret, None);
        assert_eq!(loaded.trust_pem(), "CA\nSERVERCA\n");
        assert_eq!(
            dir.stored_uuid().as_deref(),
            Some("4f1c2a3e-0000-4000-8000-000000000001")
        );
        #[cfg(unix)]
        {
            assert_eq!(mode_of(&dir.path().join(KEY_FILE)), 0o600);
            assert_eq!(mode_of(dir.path()), 0o700);
        }
        assert!(!dir.path().join(".key.pem.tmp").exists());
    }

    #[test]
    fn legacy_registration_replaces_mutual_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        let mutual = sample_state(AuthMode::Mutual);
        dir.save_registration(&Registration {
            state: &mutual,
            key_pem: "KEY1",
            cert_pem: Some("CERT"),
            ca_pem: "CA",
            server_ca_pem: None,
            secret: None,
        })
        .unwrap();
        let legacy = sample_state(AuthMode::Legacy);
        dir.save_registration(&Registration {
            state: &legacy,
            key_pem: "KEY2",
            cert_pem: None,
            ca_pem: "CA",
            server_ca_pem: None,
            secret: Some("s3cret"),
        })
        .unwrap();
        let loaded = dir.load().unwrap();
        assert_eq!(loaded.state.mode, AuthMode::Legacy);
        assert_eq!(loaded.key_pem, "KEY2");
        assert_eq!(loaded.cert_pem, None);
        assert_eq!(loaded.secret.as_deref(), Some("s3cret"));
        assert!(!dir.path().join(CERT_FILE).exists());
        #[cfg(unix)]
        {
            assert_eq!(mode_of(&dir.path().join(SECRET_FILE)), 0o600);
            assert_eq!(mode_of(&dir.path().join(KEY_FILE)), 0o600);
        }
    }

    #[test]
    fn state_updates_and_checkin_url() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        let mut state = sample_state(AuthMode::Legacy);
        dir.save_state(&state).unwrap();
        state.checkin.port = 9997;
        state.checkin.listener = Listener::SyncTls;
        state.last_checkin_at = Some(5);
        dir.save_state(&state).unwrap();
        let back = dir.load_state().unwrap();
        assert_eq!(back.checkin.port, 9997);
        assert_eq!(back.last_checkin_at, Some(5));
        assert_eq!(
            back.checkin_url(),
            "https://mdm.example:9997/api/v1/checkin"
        );
        state.host = "::1".into();
        assert_eq!(state.checkin_url(), "https://[::1]:9997/api/v1/checkin");
        // The JSON uses the proto's spellings.
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(tmp.path().join(STATE_FILE)).unwrap())
                .unwrap();
        assert_eq!(json["checkin"]["listener"], "sync_tls");
        assert_eq!(json["mode"], "legacy");
        assert_eq!(json["platform"], "windows");
    }

    #[test]
    fn missing_credentials_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        assert!(dir.load().is_err());
        let state = sample_state(AuthMode::Mutual);
        dir.save_registration(&Registration {
            state: &state,
            key_pem: "KEY",
            cert_pem: None,
            ca_pem: "CA",
            server_ca_pem: None,
            secret: None,
        })
        .unwrap();
        let err = dir.load().unwrap_err().to_string();
        assert!(err.contains("register again"), "{err}");
    }
}
