//! The data directory: created and initialised on first start, reused afterwards.
//!
//! ```text
//! DIR/ferrocore.db          SQLite database (migrations applied at open)
//! DIR/ca/ca.pem, ca.key     local CA (ca.key_algorithm at creation: ECDSA P-256 default, or RSA), key 0600
//! DIR/ca/crl.der            current CRL, rewritten on every revocation
//! DIR/ca/ocsp.pem, ocsp.key the local CA's delegated OCSP-signing certificate, key 0600
//! DIR/ca/NAME/              a local-CA configuration (ca.pem, ca.key 0600, crl.der, ocsp.pem/.key) or an
//!                           external SCEP CA's (ca.pem, ra.pem, ra.key 0600, challenge 0600)
//! DIR/tls/server.pem, .key  portal HTTPS certificate chain and key (0600)
//! DIR/tls/auto-issued       present while the server certificate is the self-issued one
//! DIR/tls/previous.pem, .key the portal certificate before the last upload (rollback; 0600 key)
//! DIR/apps/<id>             app packages published to the storefront
//! DIR/scep/ra.pem, ra.key    SCEP RA certificate (RSA-2048, issued by the local CA) and key (0600)
//! DIR/scep/ra-enc.pem       the RA key's encryption-only certificate (keyEncipherment)
//! DIR/admin-token           admin API bearer token (0600)
//! ```

use anyhow::{Context, Result};
use ferrocore_pki::{CaKeyAlgorithm, LocalCa, write_public_file, write_secret_file};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Lifetime of the SCEP RA certificate; it is re-issued when less than
/// [`RA_RENEW_BEFORE`] remains.
const RA_CERT_LIFETIME: time::Duration = time::Duration::days(365);
pub const RA_RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// Lifetime of the self-issued portal certificate.
const SERVER_CERT_LIFETIME: time::Duration = time::Duration::days(397);

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// The portal HTTPS certificate chain and key, PEM.
#[derive(Clone)]
pub struct ServerIdentity {
    pub chain_pem: String,
    pub key_pem: String,
}

impl DataDir {
    pub fn new(root: &Path) -> Self {
        DataDir {
            root: root.to_path_buf(),
        }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn db_path(&self) -> PathBuf {
        self.root.join("ferrocore.db")
    }
    pub fn ca_cert_path(&self) -> PathBuf {
        self.root.join("ca").join("ca.pem")
    }
    fn ca_key_path(&self) -> PathBuf {
        self.root.join("ca").join("ca.key")
    }
    pub fn crl_path(&self) -> PathBuf {
        self.root.join("ca").join("crl.der")
    }
    pub fn admin_token_path(&self) -> PathBuf {
        self.root.join("admin-token")
    }
    fn server_cert_path(&self) -> PathBuf {
        self.root.join("tls").join("server.pem")
    }
    fn server_key_path(&self) -> PathBuf {
        self.root.join("tls").join("server.key")
    }
    fn auto_marker(&self) -> PathBuf {
        self.root.join("tls").join("auto-issued")
    }

    /// Creates the directory tree (0700) if missing.
    pub fn ensure(&self) -> Result<()> {
        for d in [
            self.root.clone(),
            self.root.join("ca"),
            self.root.join("tls"),
        ] {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("{}: cannot create", d.display()))?;
            set_mode(&d, 0o700)?;
        }
        Ok(())
    }

    /// Loads the local CA, generating it on first start with a key of `algorithm`
    /// (configuration key `ca.key_algorithm`). An existing CA is never replaced: when its key
    /// is not `algorithm`, start-up logs a warning naming both.
    pub fn load_or_create_ca(
        &self,
        algorithm: CaKeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<LocalCa> {
        let (cert, key) = (self.ca_cert_path(), self.ca_key_path());
        if cert.exists() || key.exists() {
            let cert_pem = read(&cert)?;
            let key_pem = read(&key)?;
            let ca = LocalCa::from_pem(&cert_pem, &key_pem)
                .with_context(|| format!("{}: local CA does not load", cert.display()))?;
            warn_if_other_algorithm(&ca, algorithm, &cert);
            return Ok(ca);
        }
        let ca = LocalCa::generate_with("Ferrocore Local CA", algorithm, now)?;
        write_secret_file(&key, ca.key_pem().as_bytes())
            .with_context(|| format!("{}: cannot write", key.display()))?;
        write_public_file(&cert, ca.cert_pem().as_bytes())
            .with_context(|| format!("{}: cannot write", cert.display()))?;
        tracing::info!(path = %cert.display(), key_algorithm = %algorithm, "local CA created");
        Ok(ca)
    }

    fn config_dir(&self, name: &str) -> PathBuf {
        self.root.join("ca").join(name)
    }

    /// Creates the CA of a new local-CA enrollment configuration in `DIR/ca/NAME/`.
    /// Its key is `algorithm` (the configured `ca.key_algorithm`).
    pub fn create_config_ca(
        &self,
        name: &str,
        algorithm: CaKeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<LocalCa> {
        let dir = self.config_dir(name);
        if dir.exists() {
            anyhow::bail!("{}: already exists", dir.display());
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        set_mode(&dir, 0o700)?;
        let ca = LocalCa::generate_with(&format!("Ferrocore {name} CA"), algorithm, now)?;
        write_secret_file(&dir.join("ca.key"), ca.key_pem().as_bytes())?;
        write_public_file(&dir.join("ca.pem"), ca.cert_pem().as_bytes())?;
        Ok(ca)
    }

    /// Loads the CA of a local-CA enrollment configuration.
    pub fn load_config_ca(&self, name: &str) -> Result<LocalCa> {
        let dir = self.config_dir(name);
        let cert = read(&dir.join("ca.pem"))?;
        let key = read(&dir.join("ca.key"))?;
        LocalCa::from_pem(&cert, &key).with_context(|| {
            format!(
                "{}: enrollment configuration CA does not load",
                dir.display()
            )
        })
    }

    /// Loads the delegated OCSP responder of an enrollment configuration's CA
    /// (`DIR/ca/ocsp.pem` + `ocsp.key` for `local`, `DIR/ca/NAME/ocsp.*` otherwise), issuing a
    /// new signing certificate and P-256 key (0600) when they are missing, do not load, were
    /// not issued by this CA, or expire within `renew_before`. Returns whether it issued one.
    pub fn load_or_issue_ocsp_responder(
        &self,
        config: &str,
        ca: &LocalCa,
        now: OffsetDateTime,
        lifetime: time::Duration,
        renew_before: time::Duration,
    ) -> Result<(ferrocore_pki::OcspResponder, bool)> {
        let dir = if config == ferrocore_core::service::LOCAL_CONFIG {
            self.root.join("ca")
        } else {
            self.config_dir(config)
        };
        let (cert, key) = (dir.join("ocsp.pem"), dir.join("ocsp.key"));
        if cert.exists() && key.exists() {
            let loaded = read(&cert).and_then(|c| {
                let der = ferrocore_pki::pem_to_der_certs(&c)?
                    .into_iter()
                    .next()
                    .context("no certificate")?;
                Ok(ferrocore_pki::OcspResponder::new(
                    ca.cert_der(),
                    &der,
                    &read(&key)?,
                )?)
            });
            match loaded {
                Ok(r) if r.signer_not_after() - now > renew_before => return Ok((r, false)),
                Ok(_) => tracing::info!(config, "OCSP signing certificate near expiry: re-issuing"),
                Err(e) => {
                    tracing::warn!(config, error = %format!("{e:#}"), "OCSP signing certificate unusable: re-issuing")
                }
            }
        }
        let (issued, key_pem) = ca.issue_ocsp_signer(lifetime, now)?;
        write_secret_file(&key, key_pem.as_bytes())
            .with_context(|| format!("{}: cannot write", key.display()))?;
        write_public_file(&cert, issued.pem.as_bytes())
            .with_context(|| format!("{}: cannot write", cert.display()))?;
        tracing::info!(config, serial = %issued.serial_hex, "OCSP signing certificate issued");
        Ok((
            ferrocore_pki::OcspResponder::new(ca.cert_der(), &issued.der, &key_pem)?,
            true,
        ))
    }

    /// Loads the portal HTTPS certificate. While it is the self-issued one (no certificate
    /// uploaded by the admin), it is (re)issued from the local CA when missing, close to
    /// expiry, or not covering `hostnames`.
    pub fn load_or_issue_server_identity(
        &self,
        ca: &LocalCa,
        hostnames: &[String],
        now: OffsetDateTime,
    ) -> Result<ServerIdentity> {
        let (cert, key) = (self.server_cert_path(), self.server_key_path());
        let auto = self.auto_marker().exists() || !cert.exists();
        if cert.exists() && key.exists() {
            let id = ServerIdentity {
                chain_pem: read(&cert)?,
                key_pem: read(&key)?,
            };
            if !auto || self_issued_still_fits(&id, hostnames, now) {
                return Ok(id);
            }
        }
        let (issued, key_pem) = ca.issue_server(hostnames, SERVER_CERT_LIFETIME, now)?;
        let chain_pem = format!("{}{}", issued.pem, ca.cert_pem());
        write_secret_file(&key, key_pem.as_bytes())
            .with_context(|| format!("{}: cannot write", key.display()))?;
        write_public_file(&cert, chain_pem.as_bytes())
            .with_context(|| format!("{}: cannot write", cert.display()))?;
        write_public_file(&self.auto_marker(), b"self-issued from the local CA\n")?;
        tracing::info!(hostnames = ?hostnames, "portal HTTPS certificate issued from the local CA");
        Ok(ServerIdentity { chain_pem, key_pem })
    }

    /// Loads the SCEP RA (certificate and RSA key, and the encryption certificate of the
    /// same key in `ra-enc.pem`). Created with a fresh RSA-2048 key when missing (first
    /// start, or a data directory from before SCEP), re-issued when it expires within
    /// [`RA_RENEW_BEFORE`] or no longer chains to `ca`; the encryption certificate is issued
    /// when missing (data directories from before it) or stale in the same way.
    pub fn load_or_issue_scep_ra(
        &self,
        ca: &LocalCa,
        now: OffsetDateTime,
    ) -> Result<ferrocore_pki::scep::RaKey> {
        let dir = self.root.join("scep");
        let (cert, key, enc) = (
            dir.join("ra.pem"),
            dir.join("ra.key"),
            dir.join("ra-enc.pem"),
        );
        let ca_subject = ferrocore_pki::cert_info(ca.cert_der())?.subject;
        let fresh = |der: &[u8]| {
            ferrocore_pki::cert_info(der)
                .is_ok_and(|i| i.not_after - now > RA_RENEW_BEFORE && i.issuer == ca_subject)
        };
        if cert.exists() && key.exists() {
            let ders = ferrocore_pki::pem_to_der_certs(&read(&cert)?)?;
            let key_der = pem::parse(read(&key)?)
                .with_context(|| format!("{}: not PEM", key.display()))?
                .into_contents();
            if let Some(cert_der) = ders.into_iter().next()
                && fresh(cert_der.as_slice())
            {
                let key_path = key;
                let key = ferrocore_pki::RsaKey::from_pkcs8_der(&key_der)
                    .with_context(|| format!("{}: RA key does not load", key_path.display()))?;
                // ra.key and ra.pem are two writes: a crash between them leaves a certificate
                // of another key, and every SCEP decryption would fail. The key is the one
                // written first, so the certificate (and the encryption certificate) is
                // re-issued for it.
                let key_spki = ferrocore_pki::sha256_hex(key.spki_der());
                let cert_der = if ferrocore_pki::cert_info(&cert_der)?.spki_sha256_hex == key_spki {
                    cert_der
                } else {
                    tracing::warn!(
                        cert = %cert.display(),
                        key = %key_path.display(),
                        "SCEP RA certificate does not certify the RA key; re-issuing it for the key"
                    );
                    let issued =
                        ca.issue_ra(key.spki_der(), "Ferrocore SCEP RA", RA_CERT_LIFETIME, now)?;
                    write_public_file(&cert, issued.pem.as_bytes())
                        .with_context(|| format!("{}: cannot write", cert.display()))?;
                    tracing::info!(path = %cert.display(), serial = %issued.serial_hex, "SCEP RA certificate issued");
                    issued.der
                };
                // The encryption certificate must be fresh and certify the RA's key.
                let ra_spki = key_spki;
                let loaded_enc = if enc.exists() {
                    ferrocore_pki::pem_to_der_certs(&read(&enc)?)?
                        .into_iter()
                        .next()
                        .filter(|d| {
                            fresh(d.as_slice())
                                && ferrocore_pki::cert_info(d)
                                    .is_ok_and(|i| i.spki_sha256_hex == ra_spki)
                        })
                } else {
                    None
                };
                let enc_cert_der = match loaded_enc {
                    Some(d) => d,
                    None => issue_ra_encryption(ca, &key, &enc, now)?,
                };
                return Ok(ferrocore_pki::scep::RaKey {
                    cert_der,
                    key,
                    enc_cert_der: Some(enc_cert_der),
                });
            }
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        set_mode(&dir, 0o700)?;
        let rsa = ferrocore_pki::RsaKey::generate_2048()?;
        let issued = ca.issue_ra(rsa.spki_der(), "Ferrocore SCEP RA", RA_CERT_LIFETIME, now)?;
        let key_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", rsa.pkcs8_der().to_vec()));
        write_secret_file(&key, key_pem.as_bytes())
            .with_context(|| format!("{}: cannot write", key.display()))?;
        write_public_file(&cert, issued.pem.as_bytes())
            .with_context(|| format!("{}: cannot write", cert.display()))?;
        tracing::info!(path = %cert.display(), serial = %issued.serial_hex, "SCEP RA certificate issued");
        let enc_cert_der = issue_ra_encryption(ca, &rsa, &enc, now)?;
        Ok(ferrocore_pki::scep::RaKey {
            cert_der: issued.der,
            key: rsa,
            enc_cert_der: Some(enc_cert_der),
        })
    }

    /// Reads the admin token, creating it on first start.
    pub fn load_or_create_admin_token(&self) -> Result<String> {
        let path = self.admin_token_path();
        if path.exists() {
            return Ok(read(&path)?.trim().to_owned());
        }
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| anyhow::anyhow!("rng failure"))?;
        let token = hex::encode(raw);
        write_secret_file(&path, format!("{token}\n").as_bytes())
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(token)
    }

    /// The secret every node derives its TLS session-ticket keys from (`tls/ticket.key`,
    /// 32 random bytes, hex, 0600), created on first start. Copy it to every node of a
    /// cluster so a device resumes on any of them; replace it to invalidate every ticket.
    pub fn load_or_create_ticket_secret(&self) -> Result<[u8; crate::tickets::SECRET_LEN]> {
        let path = self.root.join("tls").join("ticket.key");
        if path.exists() {
            let text = read(&path)?;
            let raw = hex::decode(text.trim())
                .ok()
                .and_then(|v| v.try_into().ok());
            return raw.ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: not 32 bytes in hex (remove it to make a new one)",
                    path.display()
                )
            });
        }
        let mut raw = [0u8; crate::tickets::SECRET_LEN];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| anyhow::anyhow!("rng failure"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        write_secret_file(&path, format!("{}\n", hex::encode(raw)).as_bytes())
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(raw)
    }
}

/// Portal certificate upload and rollback: the current pair and the previous one.
impl DataDir {
    fn previous_cert_path(&self) -> PathBuf {
        self.root.join("tls").join("previous.pem")
    }
    fn previous_key_path(&self) -> PathBuf {
        self.root.join("tls").join("previous.key")
    }
    fn previous_auto_marker(&self) -> PathBuf {
        self.root.join("tls").join("previous-auto-issued")
    }

    /// The portal certificate being served, and whether it is the self-issued one.
    pub fn server_identity(&self) -> Result<(ServerIdentity, bool)> {
        let id = ServerIdentity {
            chain_pem: read(&self.server_cert_path())?,
            key_pem: read(&self.server_key_path())?,
        };
        Ok((id, self.auto_marker().exists()))
    }

    /// The certificate kept for rollback, if any.
    pub fn previous_server_identity(&self) -> Result<Option<(ServerIdentity, bool)>> {
        if !self.previous_cert_path().exists() || !self.previous_key_path().exists() {
            return Ok(None);
        }
        let id = ServerIdentity {
            chain_pem: read(&self.previous_cert_path())?,
            key_pem: read(&self.previous_key_path())?,
        };
        Ok(Some((id, self.previous_auto_marker().exists())))
    }

    /// Stores an uploaded portal certificate; the current one becomes the previous one.
    pub fn install_server_identity(&self, new: &ServerIdentity) -> Result<()> {
        let (current, auto) = self.server_identity()?;
        self.write_pair(&current, auto, true)?;
        self.write_pair(new, false, false)
    }

    /// Swaps the current and the previous portal certificate; `None` when there is no
    /// previous one. Rolling back twice returns to where it started.
    pub fn rollback_server_identity(&self) -> Result<Option<ServerIdentity>> {
        let Some((previous, previous_auto)) = self.previous_server_identity()? else {
            return Ok(None);
        };
        let (current, auto) = self.server_identity()?;
        self.write_pair(&current, auto, true)?;
        self.write_pair(&previous, previous_auto, false)?;
        Ok(Some(previous))
    }

    fn write_pair(&self, id: &ServerIdentity, auto: bool, previous: bool) -> Result<()> {
        let (cert, key, marker) = if previous {
            (
                self.previous_cert_path(),
                self.previous_key_path(),
                self.previous_auto_marker(),
            )
        } else {
            (
                self.server_cert_path(),
                self.server_key_path(),
                self.auto_marker(),
            )
        };
        write_secret_file(&key, id.key_pem.as_bytes())
            .with_context(|| format!("{}: cannot write", key.display()))?;
        write_public_file(&cert, id.chain_pem.as_bytes())
            .with_context(|| format!("{}: cannot write", cert.display()))?;
        if auto {
            write_public_file(&marker, b"self-issued from the local CA\n")?;
        } else if marker.exists() {
            std::fs::remove_file(&marker)
                .with_context(|| format!("{}: cannot remove", marker.display()))?;
        }
        Ok(())
    }
}

fn self_issued_still_fits(id: &ServerIdentity, hostnames: &[String], now: OffsetDateTime) -> bool {
    let Ok(ders) = ferrocore_pki::pem_to_der_certs(&id.chain_pem) else {
        return false;
    };
    let Some(Ok(info)) = ders.first().map(|d| ferrocore_pki::cert_info(d)) else {
        return false;
    };
    let covered = hostnames.iter().all(|h| {
        info.san_dns
            .iter()
            .chain(info.san_ips.iter())
            .any(|s| s == h)
    });
    covered && info.not_after - now > time::Duration::days(30)
}

/// Issues and writes the SCEP RA's encryption certificate for `key`.
fn issue_ra_encryption(
    ca: &LocalCa,
    key: &ferrocore_pki::RsaKey,
    path: &Path,
    now: OffsetDateTime,
) -> Result<Vec<u8>> {
    let issued = ca.issue_ra_encryption(
        key.spki_der(),
        "Ferrocore SCEP RA encryption",
        RA_CERT_LIFETIME,
        now,
    )?;
    write_public_file(path, issued.pem.as_bytes())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    tracing::info!(path = %path.display(), serial = %issued.serial_hex, "SCEP RA encryption certificate issued");
    Ok(issued.der)
}

/// Warns when the configured CA key algorithm is not the existing CA's (which is kept).
fn warn_if_other_algorithm(ca: &LocalCa, configured: CaKeyAlgorithm, cert: &Path) {
    let existing = ca.key_algorithm();
    if existing != configured.as_str() {
        tracing::warn!(
            path = %cert.display(),
            existing = %existing,
            configured = %configured,
            "ca.key_algorithm is {configured} but the existing local CA's key is {existing}: \
             the existing CA is kept (a CA is never replaced); the setting applies to new CAs only"
        );
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

#[cfg(unix)]
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("{}: cannot set permissions", path.display()))
}
#[cfg(not(unix))]
pub(crate) fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocore_pki::LocalCa;

    fn spki_of(der: &[u8]) -> String {
        ferrocore_pki::cert_info(der).unwrap().spki_sha256_hex
    }

    /// A crash between writing ra.key and ra.pem leaves a certificate of another key: on
    /// load the certificate (and the encryption certificate) is re-issued for the key.
    #[test]
    fn scep_ra_certificate_of_another_key_is_reissued_for_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let now = OffsetDateTime::now_utc();
        let ca = LocalCa::generate("Unit Root", now).unwrap();
        let first = dir.load_or_issue_scep_ra(&ca, now).unwrap();
        let old_cert_pem = std::fs::read_to_string(tmp.path().join("scep/ra.pem")).unwrap();

        // The new key is on disk, its certificate never was.
        let new_key = ferrocore_pki::RsaKey::generate_2048().unwrap();
        let key_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", new_key.pkcs8_der().to_vec()));
        write_secret_file(&tmp.path().join("scep/ra.key"), key_pem.as_bytes()).unwrap();

        let ra = dir.load_or_issue_scep_ra(&ca, now).unwrap();
        let key_spki = ferrocore_pki::sha256_hex(new_key.spki_der());
        assert_eq!(spki_of(&ra.cert_der), key_spki);
        assert_eq!(spki_of(ra.enc_cert_der.as_deref().unwrap()), key_spki);
        assert_ne!(ra.cert_der, first.cert_der);
        assert_eq!(ra.key.spki_der(), new_key.spki_der());
        // Written back, so the next start loads the repaired pair unchanged.
        let on_disk = std::fs::read_to_string(tmp.path().join("scep/ra.pem")).unwrap();
        assert_ne!(on_disk, old_cert_pem);
        let again = dir.load_or_issue_scep_ra(&ca, now).unwrap();
        assert_eq!(again.cert_der, ra.cert_der);
        assert_eq!(again.enc_cert_der, ra.enc_cert_der);
    }

    /// A matching pair is loaded as it is, not re-issued.
    #[test]
    fn scep_ra_matching_pair_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let now = OffsetDateTime::now_utc();
        let ca = LocalCa::generate("Unit Root", now).unwrap();
        let first = dir.load_or_issue_scep_ra(&ca, now).unwrap();
        let again = dir.load_or_issue_scep_ra(&ca, now).unwrap();
        assert_eq!(again.cert_der, first.cert_der);
        assert_eq!(again.enc_cert_der, first.enc_cert_der);
        assert_eq!(
            spki_of(&again.cert_der),
            spki_of(again.enc_cert_der.as_deref().unwrap())
        );
    }
}
