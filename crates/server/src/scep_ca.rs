//! External SCEP CA as an enrollment configuration (kind `scep`, "decentralized").
//!
//! Ferrocore is a registration authority on the device's CSR: the device keeps its key and
//! sends its CSR to Ferrocore as for any configuration; [`ScepCa::issue`] wraps that CSR,
//! unchanged, in a PKCSReq signed with Ferrocore's RA key (RSA-2048, `DIR/ca/NAME/ra.key`,
//! 0600) and encrypted to the CA, sends it to the CA's SCEP URL, decrypts the CertRep with
//! the RA key and checks the certificate (public key and subject those of the CSR) before the
//! domain records it. The SCEP messages themselves are built and parsed by
//! `ferrocore_pki::scep` (the codec shared with Ferrocore's own SCEP server).
//!
//! ```text
//! DIR/ca/NAME/ca.pem        the external CA certificate (fingerprint checked at creation)
//! DIR/ca/NAME/ra.pem, ra.key Ferrocore's RA certificate and key (0600)
//! DIR/ca/NAME/challenge     the CA's challenge password (0600)
//! DIR/ca/NAME/tls-ca.pem    https:// only, optional: the CAs trusted for the endpoint's TLS
//!                           server certificate (else the system roots)
//! DIR/ca/NAME/options.json  PENDING polling (interval, total wait)
//! ```
//!
//! Only this module talks to the external CA, over `http://` (SCEP protects its messages
//! itself) or `https://`: the TLS server certificate is verified against the system roots
//! (`SSL_CERT_FILE`, else `/etc/ssl/certs/ca-certificates.crt`) or the configuration's bundle,
//! and its host name against the URL's; an untrusted one is `external_ca_tls_untrusted`, never
//! accepted. The pinned CA (`ca_fingerprint`) is the *issuing* CA, which may be an
//! intermediate: [`select_ca`] finds it among a GetCACert answer's certificates (one
//! certificate, CA + RA, or a chain). A PENDING CertRep is polled with GetCertInitial (same
//! transactionID) every `poll_interval_secs` for at most `poll_max_wait_secs`, then
//! `external_ca_pending`.

use anyhow::Context;
use async_trait::async_trait;
use ferrocore_client::{ClientError, ClientOptions, Method, Scheme, TlsClient, Url};
use ferrocore_core::CoreError;
use ferrocore_core::issuance::{CsrRequirements, Issuer, KIND_SCEP};
use ferrocore_core::store::ScepParams;
use ferrocore_pki::scep::CaCaps;
use ferrocore_pki::{
    ClientProfile, IssuedCert, RsaKey, VerifiedCsr, sha256_hex, write_public_file,
    write_secret_file,
};
use ferrocore_proto::percent;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Limit for one exchange with the external CA (connect, request, answer).
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read from the external CA.
const MAX_ANSWER: usize = 1024 * 1024;
/// Devices' keys for an external SCEP CA are RSA (many SCEP CAs, micromdm's scepserver among
/// them, sign with the CSR's signature algorithm and cannot issue for EC keys).
const RSA_MIN_BITS: usize = 2048;

/// An `http://` or `https://host:port/path` URL of a SCEP service (no query, fragment or
/// userinfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScepUrl {
    pub url: Url,
    original: String,
}

impl ScepUrl {
    pub fn parse(url: &str) -> Result<Self, CoreError> {
        let bad = |why: &str| CoreError::BadRequest(format!("SCEP URL {url:?}: {why}"));
        if url.contains(['?', '#', '@', ' ']) {
            return Err(bad("no query, fragment, userinfo or spaces"));
        }
        let parsed = Url::parse(url).map_err(|e| match e {
            ferrocore_client::ClientError::Url(why) => bad(&why),
            other => bad(&other.to_string()),
        })?;
        Ok(ScepUrl {
            url: parsed,
            original: url.to_owned(),
        })
    }

    pub fn https(&self) -> bool {
        self.url.scheme == Scheme::Https
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }
}

/// One HTTP answer of the external CA.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

fn unreachable(url: &ScepUrl, e: impl std::fmt::Display) -> CoreError {
    CoreError::ExternalCaUnreachable(format!("{}: {e}", url.as_str()))
}

/// How Ferrocore reaches one external CA: its URL and the project's HTTP client (for
/// `https://`, with the configuration's bundle or the system's roots).
#[derive(Clone)]
pub struct Transport {
    pub url: ScepUrl,
    client: TlsClient,
}

/// Where the system's trusted roots are read from (first that exists).
const SYSTEM_ROOTS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

impl Transport {
    /// `tls_ca_pem`: the administrator's bundle for an `https://` URL (refused with
    /// `http://`); without it the system roots.
    pub fn new(url: ScepUrl, tls_ca_pem: Option<&str>) -> Result<Transport, CoreError> {
        let opts = ClientOptions {
            session_resumption: false,
            timeout: Some(TIMEOUT),
            max_body_bytes: MAX_ANSWER,
            ..ClientOptions::default()
        };
        let config_error = |e: ClientError| CoreError::internal(format!("HTTP client: {e}"));
        if !url.https() {
            if tls_ca_pem.is_some() {
                return Err(CoreError::BadRequest(
                    "tls_ca_pem: only for an https:// URL".into(),
                ));
            }
            let client = TlsClient::plain(opts).map_err(config_error)?;
            return Ok(Transport { url, client });
        }
        let roots = match tls_ca_pem {
            Some(pem) => ferrocore_client::root_store_from_pem(pem)
                .map_err(|e| CoreError::BadRequest(format!("tls_ca_pem: {e}")))?,
            None => system_roots()?,
        };
        let client = TlsClient::with_roots(Arc::new(roots), None, opts).map_err(config_error)?;
        Ok(Transport { url, client })
    }
}

/// The system's trusted roots (`SSL_CERT_FILE`, else the distribution's bundle); certificates
/// the bundle holds that webpki cannot use are skipped.
fn system_roots() -> Result<rustls::RootCertStore, CoreError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let file = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_ROOTS.iter().map(PathBuf::from))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CoreError::ExternalCaTlsUntrusted(
                "no system trust store found: configure tls_ca_pem".into(),
            )
        })?;
    let pem = std::fs::read(&file)
        .map_err(|e| CoreError::internal(format!("{}: {e}", file.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok));
    Ok(roots)
}

/// A failed exchange: a TLS certificate problem is `external_ca_tls_untrusted`, anything else
/// (refused, reset, timeout, protocol) `external_ca_unreachable`.
fn exchange_failure(url: &ScepUrl, e: ClientError) -> CoreError {
    match e {
        ClientError::Tls(
            r @ (rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::UnsupportedNameType),
        ) => {
            tracing::info!(url = url.as_str(), error = %r, "external CA TLS certificate refused");
            CoreError::ExternalCaTlsUntrusted(format!("{}: {}", url.as_str(), tls_problem(&r)))
        }
        ClientError::Timeout => unreachable(url, format!("no answer within {TIMEOUT:?}")),
        ClientError::Tls(r) => {
            tracing::info!(url = url.as_str(), error = %r, "external CA TLS handshake failed");
            unreachable(url, "the TLS handshake failed")
        }
        other => unreachable(url, other),
    }
}

/// A rustls refusal of the external CA's server certificate, in words (not rustls's enum
/// names such as `UnknownIssuer` or `NotValidForNameContext`).
fn tls_problem(e: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "its TLS certificate is not issued by a system root or a CA of --tls-ca-bundle"
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "its TLS certificate does not name the URL's host"
            }
            C::Expired | C::ExpiredContext { .. } => "its TLS certificate has expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "its TLS certificate is not valid yet",
            C::Revoked => "its TLS certificate is revoked",
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "its TLS certificate is not a server certificate (extended key usage)"
            }
            C::BadSignature => "a signature in its TLS certificate chain does not verify",
            _ => "its TLS certificate is not acceptable",
        },
        rustls::Error::NoCertificatesPresented => "it presented no TLS certificate",
        _ => "its TLS certificate does not name the URL's host in a usable form",
    }
}

/// One request on a new connection (`Connection: close`), bounded by [`TIMEOUT`].
async fn exchange(
    transport: &Transport,
    method: Method,
    path_and_query: String,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<Answer, CoreError> {
    let url = &transport.url;
    let target = Url {
        path: path_and_query,
        ..url.url.clone()
    };
    let headers: Vec<(&str, &str)> = content_type
        .map(|ct| ("content-type", ct))
        .into_iter()
        .collect();
    let resp = transport
        .client
        .request_url(&target, method, &headers, body)
        .await
        .map_err(|e| exchange_failure(url, e))?;
    let content_type = resp
        .headers
        .get(ferrocore_client::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    Ok(Answer {
        status: resp.status,
        content_type,
        body: resp.body,
    })
}

fn query_path(url: &ScepUrl, operation: &str, message: Option<&str>) -> String {
    let mut p = format!("{}?operation={operation}", url.url.path);
    if let Some(m) = message {
        p.push_str("&message=");
        p.push_str(&percent::encode(m));
    }
    p
}

/// `GetCACaps`: the capabilities, one a line (an empty answer is allowed by RFC 8894).
pub async fn get_ca_caps(transport: &Transport) -> Result<String, CoreError> {
    let url = &transport.url;
    let a = exchange(
        transport,
        Method::GET,
        query_path(url, "GetCACaps", None),
        None,
        Vec::new(),
    )
    .await?;
    if a.status != 200 {
        return Err(unreachable(
            url,
            format!("GetCACaps answered HTTP {}", a.status),
        ));
    }
    let caps = String::from_utf8_lossy(&a.body);
    Ok(caps
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The CA certificate and the certificate requests are encrypted to (an RA certificate when
/// the CA answers CA + RA, else the CA certificate), DER.
#[derive(Debug)]
pub struct CaCerts {
    pub ca_der: Vec<u8>,
    pub recipient_der: Vec<u8>,
}

/// `GetCACert`: every certificate of the answer (one CA, CA + RA, or a chain), DER.
pub async fn get_ca_cert(transport: &Transport) -> Result<Vec<Vec<u8>>, CoreError> {
    let url = &transport.url;
    let a = exchange(
        transport,
        Method::GET,
        query_path(url, "GetCACert", Some("ferrocore")),
        None,
        Vec::new(),
    )
    .await?;
    if a.status != 200 {
        return Err(unreachable(
            url,
            format!("GetCACert answered HTTP {}", a.status),
        ));
    }
    ferrocore_pki::scep::parse_get_ca_cert(&a.content_type, &a.body)
        .map_err(|e| unreachable(url, format!("GetCACert answer: {e}")))
}

/// The pinned CA of a GetCACert answer and the certificate requests are encrypted to.
///
/// The configured fingerprint names the *issuing* CA (an intermediate when the external CA
/// is one): it must be one of the answer's CA certificates. Requests go to the RA certificate
/// (not a CA) when the answer has one, else to the pinned CA. When no certificate matches, the
/// mismatch names the issuing CA of the answer (the CA certificate that issued no other CA
/// certificate of the answer).
pub fn select_ca(certs: Vec<Vec<u8>>, expected: &str) -> Result<CaCerts, CoreError> {
    let info = |d: &[u8]| ferrocore_pki::cert_info(d).ok();
    let is_ca = |d: &[u8]| info(d).is_some_and(|i| i.is_ca);
    let recipient = certs.iter().find(|c| !is_ca(c)).cloned();
    let cas: Vec<&Vec<u8>> = certs
        .iter()
        .filter(|c| is_ca(c) || certs.len() == 1)
        .collect();
    if let Some(ca) = cas.iter().find(|c| sha256_hex(c) == expected) {
        return Ok(CaCerts {
            ca_der: (*ca).clone(),
            recipient_der: recipient.unwrap_or_else(|| (*ca).clone()),
        });
    }
    use x509_parser::prelude::{FromDer, X509Certificate};
    let subject_issuer = |d: &[u8]| {
        X509Certificate::from_der(d)
            .ok()
            .map(|(_, c)| (c.subject().as_raw().to_vec(), c.issuer().as_raw().to_vec()))
    };
    let issuing = cas
        .iter()
        .find(|c| {
            let Some((subject, _)) = subject_issuer(c) else {
                return false;
            };
            !cas.iter().any(|o| {
                o != *c && subject_issuer(o).is_some_and(|(os, oi)| oi == subject && os != subject)
            })
        })
        .or(cas.first());
    let actual = match issuing {
        Some(c) => sha256_hex(c),
        None => {
            return Err(CoreError::ExternalCaUnreachable(
                "GetCACert answer: no CA certificate".into(),
            ));
        }
    };
    Err(CoreError::CaFingerprintMismatch {
        expected: expected.to_owned(),
        actual,
    })
}

/// Normalises an administrator's fingerprint (`AB:CD:..`, spaces, any case) to lowercase hex.
pub fn normalise_fingerprint(s: &str) -> Result<String, CoreError> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CoreError::BadRequest(
            "ca_fingerprint: the CA certificate's SHA-256 as 64 hex digits (colons allowed)".into(),
        ));
    }
    Ok(hex)
}

/// An external SCEP CA Ferrocore is a registration authority for.
pub struct ScepCa {
    name: String,
    transport: Transport,
    poll: Polling,
    challenge: String,
    ca_der: Vec<u8>,
    ca_pem: String,
    recipient_der: Vec<u8>,
    ra_cert_der: Vec<u8>,
    ra_key: RsaKey,
    caps: CaCaps,
    caps_text: String,
}

/// PENDING handling: GetCertInitial every `interval`, at most `polls` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    pub interval: Duration,
    pub polls: u32,
}

/// `options.json` of a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScepOptions {
    pub poll_interval_secs: u64,
    pub poll_max_wait_secs: u64,
}

impl Default for ScepOptions {
    fn default() -> Self {
        ScepOptions {
            poll_interval_secs: 5,
            poll_max_wait_secs: 30,
        }
    }
}

impl ScepOptions {
    /// The administrator's values (defaults for what is not given), checked: an interval of
    /// 1-300 s, a total wait of 0-600 s (0: no polling, PENDING fails at once).
    pub fn new(interval: Option<u64>, max_wait: Option<u64>) -> Result<ScepOptions, CoreError> {
        let d = ScepOptions::default();
        let o = ScepOptions {
            poll_interval_secs: interval.unwrap_or(d.poll_interval_secs),
            poll_max_wait_secs: max_wait.unwrap_or(d.poll_max_wait_secs),
        };
        if !(1..=300).contains(&o.poll_interval_secs) {
            return Err(CoreError::BadRequest("poll_interval_secs: 1-300".into()));
        }
        if o.poll_max_wait_secs > 600 {
            return Err(CoreError::BadRequest("poll_max_wait_secs: 0-600".into()));
        }
        Ok(o)
    }

    fn polling(&self) -> Polling {
        Polling {
            interval: Duration::from_secs(self.poll_interval_secs),
            polls: u32::try_from(self.poll_max_wait_secs / self.poll_interval_secs.max(1))
                .unwrap_or(u32::MAX),
        }
    }
}

impl ScepCa {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The row recorded for this configuration.
    pub fn params(&self) -> ScepParams {
        ScepParams {
            url: self.transport.url.as_str().to_owned(),
            ca_sha256: sha256_hex(&self.ca_der),
            recipient_cert_pem: der_to_pem(&self.recipient_der),
            caps: self.caps_text.clone(),
        }
    }

    fn directory(data_dir: &Path, name: &str) -> PathBuf {
        data_dir.join("ca").join(name)
    }

    /// Validates a new configuration against the CA (GetCACaps, GetCACert, fingerprint) and
    /// writes its files (RA key and challenge 0600). Nothing is written when a check fails;
    /// the caller removes the directory ([`ScepCa::remove_files`]) if recording fails.
    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        data_dir: &Path,
        name: &str,
        url: &str,
        challenge: &str,
        ca_fingerprint: &str,
        tls_ca_pem: Option<&str>,
        options: ScepOptions,
        now: OffsetDateTime,
    ) -> Result<ScepCa, CoreError> {
        let url = ScepUrl::parse(url)?;
        let transport = Transport::new(url, tls_ca_pem)?;
        let expected = normalise_fingerprint(ca_fingerprint)?;
        if challenge.is_empty() || challenge.len() > 255 || challenge.contains(['\n', '\r']) {
            return Err(CoreError::BadRequest(
                "challenge: 1-255 characters on one line".into(),
            ));
        }
        let caps = get_ca_caps(&transport).await?;
        let certs = select_ca(get_ca_cert(&transport).await?, &expected)?;
        let dir = Self::directory(data_dir, name);
        if dir.exists() {
            return Err(CoreError::Conflict(format!(
                "enrollment configuration {name:?} already exists"
            )));
        }
        let ra = ferrocore_pki::RaIdentity::generate(&format!("Ferrocore RA {name}"), now)?;
        let ca_pem = der_to_pem(&certs.ca_der);
        let written = (|| -> anyhow::Result<()> {
            std::fs::create_dir_all(&dir)?;
            crate::datadir::set_mode(&dir, 0o700)?;
            write_public_file(&dir.join("ca.pem"), ca_pem.as_bytes())?;
            write_public_file(&dir.join("ra.pem"), ra.cert_pem.as_bytes())?;
            write_secret_file(&dir.join("ra.key"), ra.key_pem.as_bytes())?;
            write_secret_file(&dir.join("challenge"), challenge.as_bytes())?;
            if let Some(pem) = tls_ca_pem {
                write_public_file(&dir.join("tls-ca.pem"), pem.as_bytes())?;
            }
            write_public_file(&dir.join("options.json"), &serde_json::to_vec(&options)?)?;
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(CoreError::internal(format!("{}: {e:#}", dir.display())));
        }
        Ok(ScepCa {
            name: name.to_owned(),
            transport,
            poll: options.polling(),
            challenge: challenge.to_owned(),
            ca_der: certs.ca_der,
            ca_pem,
            recipient_der: certs.recipient_der,
            ra_cert_der: ra.cert_der,
            ra_key: RsaKey::from_pkcs8_der(
                &pem_contents(&ra.key_pem, "PRIVATE KEY").map_err(CoreError::internal)?,
            )?,
            caps: CaCaps::parse(&caps),
            caps_text: caps,
        })
    }

    /// Removes the files of a configuration whose creation failed after [`ScepCa::create`].
    pub fn remove_files(data_dir: &Path, name: &str) {
        let _ = std::fs::remove_dir_all(Self::directory(data_dir, name));
    }

    /// Loads a recorded configuration at start-up.
    pub fn load(
        data_dir: &Path,
        name: &str,
        ca_cert_pem: &str,
        params: &ScepParams,
    ) -> anyhow::Result<ScepCa> {
        let dir = Self::directory(data_dir, name);
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .with_context(|| format!("{}: cannot read", dir.join(f).display()))
        };
        let ra_cert_pem = read("ra.pem")?;
        let ra_key_pem = read("ra.key")?;
        let challenge = read("challenge")?.trim_end_matches(['\n', '\r']).to_owned();
        if challenge.is_empty() {
            anyhow::bail!("{}: empty challenge", dir.join("challenge").display());
        }
        let first = |pem: &str| -> anyhow::Result<Vec<u8>> {
            ferrocore_pki::pem_to_der_certs(pem)?
                .into_iter()
                .next()
                .context("no certificate")
        };
        // Both files are optional (configurations made before they existed).
        let tls_ca_pem = match std::fs::read_to_string(dir.join("tls-ca.pem")) {
            Ok(p) => Some(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).context("tls-ca.pem"),
        };
        let options = match std::fs::read(dir.join("options.json")) {
            Ok(b) => serde_json::from_slice::<ScepOptions>(&b).context("options.json")?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ScepOptions::default(),
            Err(e) => return Err(e).context("options.json"),
        };
        let url = ScepUrl::parse(&params.url).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(ScepCa {
            name: name.to_owned(),
            transport: Transport::new(url, tls_ca_pem.as_deref())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            poll: options.polling(),
            challenge,
            ca_der: first(ca_cert_pem).context("CA certificate")?,
            ca_pem: ca_cert_pem.to_owned(),
            recipient_der: first(&params.recipient_cert_pem).context("recipient certificate")?,
            ra_cert_der: first(&ra_cert_pem).context("RA certificate")?,
            ra_key: RsaKey::from_pkcs8_der(&pem_contents(&ra_key_pem, "PRIVATE KEY")?)?,
            caps: CaCaps::parse(&params.caps),
            caps_text: params.caps.clone(),
        })
    }

    /// Sends one request (PKCSReq or GetCertInitial) and verifies and decrypts the CertRep.
    async fn cert_rep(
        &self,
        request: Vec<u8>,
        transaction_id: &str,
        sender_nonce: &[u8],
    ) -> Result<ferrocore_pki::scep::CertRep, CoreError> {
        let answer = self.pki_operation(request).await?;
        if answer.status != 200 {
            let text = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                .trim()
                .to_owned();
            return Err(CoreError::ExternalCaRefused(format!(
                "PKIOperation answered HTTP {} {text}",
                answer.status
            )));
        }
        ferrocore_pki::scep::parse_cert_rep(
            &answer.body,
            &self.ra_cert_der,
            &self.ra_key,
            transaction_id,
            &[self.recipient_der.clone(), self.ca_der.clone()],
            Some(sender_nonce),
        )
        .map_err(|e| CoreError::ExternalCaBadCertificate(format!("CertRep: {e}")))
    }

    /// Sends a PKIOperation message: POST when the CA offers it, else GET.
    async fn pki_operation(&self, message: Vec<u8>) -> Result<Answer, CoreError> {
        if self.caps.has("POSTPKIOperation") {
            exchange(
                &self.transport,
                Method::POST,
                format!("{}?operation=PKIOperation", self.transport.url.url.path),
                Some("application/x-pki-message"),
                message,
            )
            .await
        } else {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(&message);
            exchange(
                &self.transport,
                Method::GET,
                query_path(&self.transport.url, "PKIOperation", Some(&b64)),
                None,
                Vec::new(),
            )
            .await
        }
    }
}

#[async_trait]
impl Issuer for ScepCa {
    fn kind(&self) -> &'static str {
        KIND_SCEP
    }

    /// PKCSReq with the device's CSR, unchanged (the CA reads the subject, key and
    /// challengePassword from it; the lifetime and extensions are the CA's policy).
    async fn issue(
        &self,
        csr: &VerifiedCsr,
        profile: &ClientProfile,
        _now: OffsetDateTime,
    ) -> Result<IssuedCert, CoreError> {
        // The certificate must name the device: the agent's CSR has CN = device UUID.
        let cn = csr.subject_cn().unwrap_or_default();
        if !cn.eq_ignore_ascii_case(&profile.device_uuid) {
            return Err(CoreError::InvalidCsr(format!(
                "for an external CA the CSR's subject CN must be the device UUID {}",
                profile.device_uuid
            )));
        }
        let transaction_id = ferrocore_pki::scep::transaction_id_for(csr.spki_der());
        let (request, sender_nonce) = ferrocore_pki::scep::build_pkcs_req(
            csr.der(),
            &transaction_id,
            &self.ra_cert_der,
            &self.ra_key,
            &self.recipient_der,
            self.caps.cipher(),
            false,
        )
        .map_err(CoreError::internal)?;
        let mut rep = self
            .cert_rep(request, &transaction_id, &sender_nonce)
            .await?;
        // PENDING: poll with GetCertInitial (same transactionID), bounded.
        let mut polls = 0;
        while rep.status == ferrocore_pki::scep::PkiStatus::Pending {
            if polls == self.poll.polls {
                return Err(CoreError::ExternalCaPending(format!(
                    "{polls} GetCertInitial polls, {:?} apart (transactionID {transaction_id})",
                    self.poll.interval
                )));
            }
            polls += 1;
            tokio::time::sleep(self.poll.interval).await;
            let (poll, nonce) = ferrocore_pki::scep::build_get_cert_initial(
                &self.ca_der,
                csr.der(),
                &transaction_id,
                &self.ra_cert_der,
                &self.ra_key,
                &self.recipient_der,
            )
            .map_err(CoreError::internal)?;
            rep = self.cert_rep(poll, &transaction_id, &nonce).await?;
        }
        let der = match rep.status {
            ferrocore_pki::scep::PkiStatus::Success => rep
                .certs
                .into_iter()
                .find(|c| {
                    ferrocore_pki::cert_info(c)
                        .map(|i| !i.is_ca)
                        .unwrap_or(false)
                })
                .ok_or_else(|| {
                    CoreError::ExternalCaBadCertificate("SUCCESS without a certificate".into())
                })?,
            ferrocore_pki::scep::PkiStatus::Pending => {
                return Err(CoreError::internal("PENDING after the polling loop"));
            }
            ferrocore_pki::scep::PkiStatus::Failure => {
                return Err(CoreError::ExternalCaRefused(format!(
                    "FAILURE ({})",
                    rep.fail_info.map(|f| f.name()).unwrap_or("no failInfo")
                )));
            }
        };
        let issued = check_issued(&der, csr, &self.ca_der)?;
        tracing::info!(config = %self.name, serial = %issued.serial_hex, "certificate issued by the external CA");
        Ok(issued)
    }

    fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    fn ca_der(&self) -> Vec<u8> {
        self.ca_der.clone()
    }

    fn csr_requirements(&self) -> CsrRequirements {
        CsrRequirements {
            rsa_min_bits: Some(RSA_MIN_BITS),
            challenge_password: Some(self.challenge.clone()),
        }
    }
}

/// Accepts the certificate the external CA issued only if it is for the CSR's key and
/// subject, issued by the configured CA, and usable for client authentication.
pub fn check_issued(der: &[u8], csr: &VerifiedCsr, ca_der: &[u8]) -> Result<IssuedCert, CoreError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let bad = |m: String| CoreError::ExternalCaBadCertificate(m);
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| bad(format!("not a certificate: {e}")))?;
    let (_, ca) =
        X509Certificate::from_der(ca_der).map_err(|e| bad(format!("CA certificate: {e}")))?;
    if cert.public_key().raw != csr.spki_der() {
        return Err(bad("its public key is not the CSR's".into()));
    }
    if !same_name(cert.subject(), csr.subject_der()) {
        return Err(bad(format!(
            "its subject {} is not the CSR's",
            cert.subject()
        )));
    }
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        return Err(bad(format!(
            "issued by {}, not by the configured CA",
            cert.issuer()
        )));
    }
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|_| bad("its signature does not verify with the CA's key".into()))?;
    // The device authenticates with it as a TLS client: an extended key usage, when
    // present, must name clientAuth (anyExtendedKeyUsage is not enough for rustls).
    match cert.extended_key_usage() {
        Ok(None) => {}
        Ok(Some(eku)) if eku.value.client_auth => {}
        Ok(Some(_)) => {
            return Err(bad(
                "its extended key usage does not include clientAuth".into()
            ));
        }
        Err(e) => return Err(bad(format!("its extended key usage: {e}"))),
    }
    let info = ferrocore_pki::cert_info(der)?;
    Ok(IssuedCert {
        der: der.to_vec(),
        pem: der_to_pem(der),
        serial_hex: info.serial_hex,
        not_before: info.not_before,
        not_after: info.not_after,
        subject: info.subject,
    })
}

/// Whether a certificate's subject names what the CSR's subject names: the same attributes
/// with the same string values in the same order (CAs re-encode strings, e.g. Go writes
/// PrintableString where the CSR had UTF8String, so the DER may differ).
fn same_name(name: &x509_parser::x509::X509Name<'_>, csr_subject_der: &[u8]) -> bool {
    use x509_parser::prelude::FromDer;
    let Ok((_, other)) = x509_parser::x509::X509Name::from_der(csr_subject_der) else {
        return false;
    };
    let flat = |n: &x509_parser::x509::X509Name<'_>| -> Option<Vec<(String, String)>> {
        n.iter_attributes()
            .map(|a| {
                a.as_str()
                    .ok()
                    .map(|v| (a.attr_type().to_id_string(), v.to_owned()))
            })
            .collect()
    };
    matches!((flat(name), flat(&other)), (Some(a), Some(b)) if a == b)
}

pub fn der_to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

fn pem_contents(text: &str, tag: &str) -> anyhow::Result<Vec<u8>> {
    let p = pem::parse(text).context("bad PEM")?;
    if p.tag() != tag {
        anyhow::bail!("expected PEM {tag}, found {}", p.tag());
    }
    Ok(p.into_contents())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;

    #[test]
    fn scep_urls() {
        let u = ScepUrl::parse("http://127.0.0.1:8080/scep").unwrap().url;
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/scep")
        );
        let u = ScepUrl::parse("http://ca.example").unwrap().url;
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = ScepUrl::parse("http://[::1]:9/x").unwrap().url;
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        let u = ScepUrl::parse("HTTPS://ca.example/scep").unwrap();
        assert!(u.https());
        assert_eq!((u.url.port, u.url.path.as_str()), (443, "/scep"));
        assert!(!ScepUrl::parse("http://ca.example").unwrap().https());
        for bad in [
            "ftp://x",
            "https://",
            "http://",
            "http://h:99999/",
            "http://u@h/",
        ] {
            assert_eq!(
                ScepUrl::parse(bad).unwrap_err().code(),
                "bad_request",
                "{bad}"
            );
        }
    }

    #[test]
    fn fingerprints_normalise() {
        let hex = "9B:56:EE:C1:09:03:6E:35:59:25:0D:CA:3D:99:CB:6E:0A:00:47:65:0A:61:46:86:47:A6:C7:E3:0D:2B:72:EB";
        assert_eq!(
            normalise_fingerprint(hex).unwrap(),
            "9b56eec109036e3559250dca3d99cb6e0a0047650a61468647a6c7e30d2b72eb"
        );
        assert!(normalise_fingerprint("abcd").is_err());
        assert!(normalise_fingerprint(&"zz".repeat(32)).is_err());
    }

    const UUID: &str = "514f17df-f7da-484e-a925-6c7114ac88dd";

    fn csr_for(key: &rcgen::KeyPair, cn: &str) -> VerifiedCsr {
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let der = p.serialize_request(key).unwrap().der().to_vec();
        ferrocore_pki::parse_csr(&der).unwrap()
    }

    /// A CA (rcgen) and a certificate it issues for `key` with subject CN = `cn`, written as
    /// a PrintableString (the CSR has a UTF8String, as Go re-encodes it).
    fn external_ca(key: &rcgen::KeyPair, cn: &str) -> (Vec<u8>, Vec<u8>) {
        external_ca_eku(key, cn, Vec::new())
    }

    /// As [`external_ca`], the certificate carrying the extended key usages `eku` (none:
    /// no extension).
    fn external_ca_eku(
        key: &rcgen::KeyPair,
        cn: &str,
        eku: Vec<rcgen::ExtendedKeyUsagePurpose>,
    ) -> (Vec<u8>, Vec<u8>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::default();
        ca.distinguished_name = rcgen::DistinguishedName::new();
        ca.distinguished_name
            .push(rcgen::DnType::OrganizationName, "scep-ca");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let mut leaf = rcgen::CertificateParams::default();
        leaf.distinguished_name = rcgen::DistinguishedName::new();
        leaf.distinguished_name.push(
            rcgen::DnType::CommonName,
            rcgen::DnValue::PrintableString(cn.try_into().unwrap()),
        );
        leaf.extended_key_usages = eku;
        let cert = leaf.signed_by(key, &issuer).unwrap();
        (ca_cert.der().to_vec(), cert.der().to_vec())
    }

    fn refusal(r: Result<IssuedCert, CoreError>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code(), "external_ca_bad_certificate", "{e}");
        e.to_string()
    }

    #[test]
    fn issued_certificate_must_match_the_request() {
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = csr_for(&key, UUID);
        let (ca, cert) = external_ca(&key, UUID);
        let ok = check_issued(&cert, &csr, &ca).unwrap();
        assert!(ok.subject.contains(UUID), "{}", ok.subject);
        assert!(ok.pem.starts_with("-----BEGIN CERTIFICATE-----"));

        // Another key: the device could not use it.
        let other = rcgen::KeyPair::generate().unwrap();
        let (ca2, cert2) = external_ca(&other, UUID);
        assert!(refusal(check_issued(&cert2, &csr, &ca2)).contains("public key"));
        // Another subject.
        let (ca3, cert3) = external_ca(&key, "someone-else");
        assert!(refusal(check_issued(&cert3, &csr, &ca3)).contains("subject"));
        // Not signed by the configured CA (same name, another key).
        assert!(refusal(check_issued(&cert, &csr, &ca3)).contains("signature"));
        // Not a certificate at all.
        assert!(refusal(check_issued(b"garbage", &csr, &ca)).contains("not a certificate"));
    }

    #[test]
    fn issued_certificate_must_allow_client_authentication() {
        use rcgen::ExtendedKeyUsagePurpose as Eku;
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = csr_for(&key, UUID);
        // A server-only certificate cannot authenticate the device.
        let (ca, cert) = external_ca_eku(&key, UUID, vec![Eku::ServerAuth]);
        assert!(refusal(check_issued(&cert, &csr, &ca)).contains("clientAuth"));
        let (ca, cert) = external_ca_eku(&key, UUID, vec![Eku::Any]);
        assert!(refusal(check_issued(&cert, &csr, &ca)).contains("clientAuth"));
        // clientAuth among others, or no extended key usage at all: accepted.
        let (ca, cert) = external_ca_eku(&key, UUID, vec![Eku::ServerAuth, Eku::ClientAuth]);
        assert!(check_issued(&cert, &csr, &ca).is_ok());
        let (ca, cert) = external_ca_eku(&key, UUID, vec![]);
        assert!(check_issued(&cert, &csr, &ca).is_ok());
    }

    #[test]
    fn the_ca_and_ra_certificates_of_a_getcacert_answer() {
        let key = rcgen::KeyPair::generate().unwrap();
        let (ca, leaf) = external_ca(&key, "ra");
        let fp = sha256_hex(&ca);
        let both = select_ca(vec![leaf.clone(), ca.clone()], &fp).unwrap();
        assert_eq!(
            (both.ca_der, both.recipient_der),
            (ca.clone(), leaf.clone())
        );
        let alone = select_ca(vec![ca.clone()], &fp).unwrap();
        assert_eq!(
            (alone.ca_der, alone.recipient_der),
            (ca.clone(), ca.clone())
        );
        // The RA certificate is never the pinned CA.
        let e = select_ca(vec![leaf.clone(), ca.clone()], &sha256_hex(&leaf)).unwrap_err();
        assert_eq!(e.code(), "ca_fingerprint_mismatch", "{e}");
    }

    /// A root and an intermediate CA (rcgen), the intermediate issuing nothing yet.
    fn root_and_intermediate() -> (Vec<u8>, Vec<u8>) {
        let ca_params = |cn: &str| {
            let mut p = rcgen::CertificateParams::default();
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p
        };
        let root_key = rcgen::KeyPair::generate().unwrap();
        let root = ca_params("root").self_signed(&root_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params("root"), root_key);
        let int_key = rcgen::KeyPair::generate().unwrap();
        let int = ca_params("intermediate")
            .signed_by(&int_key, &issuer)
            .unwrap();
        (root.der().to_vec(), int.der().to_vec())
    }

    #[test]
    fn an_intermediate_ca_is_pinned_in_a_chain_answer() {
        let (root, int) = root_and_intermediate();
        for chain in [
            vec![int.clone(), root.clone()],
            vec![root.clone(), int.clone()],
        ] {
            // The issuing CA (the intermediate) is pinned; requests go to it (no RA).
            let c = select_ca(chain.clone(), &sha256_hex(&int)).unwrap();
            assert_eq!((&c.ca_der, &c.recipient_der), (&int, &int));
            // Another fingerprint: the mismatch names the intermediate, the one to pin.
            let e = select_ca(chain, &"00".repeat(32)).unwrap_err();
            assert_eq!(e.code(), "ca_fingerprint_mismatch");
            assert!(e.to_string().contains(&sha256_hex(&int)), "{e}");
        }
        // An answer with the intermediate alone does not contain the root.
        let e = select_ca(vec![int.clone()], &sha256_hex(&root)).unwrap_err();
        assert_eq!(e.code(), "ca_fingerprint_mismatch");
    }

    #[test]
    fn polling_options_are_bounded() {
        let d = ScepOptions::new(None, None).unwrap();
        assert_eq!(d.polling().polls, 6);
        assert_eq!(
            ScepOptions::new(Some(10), Some(0)).unwrap().polling().polls,
            0
        );
        for (i, w) in [(Some(0), None), (Some(301), None), (None, Some(601))] {
            assert_eq!(ScepOptions::new(i, w).unwrap_err().code(), "bad_request");
        }
    }

    /// A stand-in SCEP responder for the answers micromdm's scepserver never gives (PENDING,
    /// a certificate for another key): it decrypts the request with the codec and answers
    /// `reply` (`None`: SUCCESS with its own certificate, which is not the requester's key)
    /// signed by its CA key. The interop test (`extca_e2e`) uses the real peer.
    async fn responder(reply: Option<ferrocore_pki::scep::CertRepBody>) -> (ScepUrl, Vec<u8>) {
        let (url, ca, _) = counting_responder(reply).await;
        (url, ca)
    }

    /// [`responder`], also returning the message types it was sent, in order.
    async fn counting_responder(
        reply: Option<ferrocore_pki::scep::CertRepBody>,
    ) -> (
        ScepUrl,
        Vec<u8>,
        std::sync::Arc<std::sync::Mutex<Vec<ferrocore_pki::scep::MessageType>>>,
    ) {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen_out = seen.clone();
        use ferrocore_pki::scep::{RaKey, build_cert_rep, parse_request};
        let now = OffsetDateTime::now_utc();
        let key = RsaKey::generate_2048().unwrap();
        let cert_der = ferrocore_pki::scep::self_signed_rsa(&key, "Stand-in CA", now).unwrap();
        let reply = reply
            .unwrap_or_else(|| ferrocore_pki::scep::CertRepBody::Success(vec![cert_der.clone()]));
        let ca = std::sync::Arc::new(RaKey {
            cert_der: cert_der.clone(),
            key,
            enc_cert_der: None,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (ca, reply, seen) = (ca.clone(), reply.clone(), seen.clone());
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (ca, reply, seen) = (ca.clone(), reply.clone(), seen.clone());
                        async move {
                            // PKIOperation by POST (body) or GET (`message`: percent-encoded
                            // base64).
                            let query = req.uri().query().unwrap_or_default().to_owned();
                            let mut body =
                                req.into_body().collect().await.unwrap().to_bytes().to_vec();
                            if let Some(m) =
                                query.split('&').find_map(|kv| kv.strip_prefix("message="))
                            {
                                use base64::Engine;
                                body = base64::engine::general_purpose::STANDARD
                                    .decode(percent::decode(m).unwrap())
                                    .unwrap();
                            }
                            let msg = parse_request(&body, &ca).unwrap();
                            seen.lock().unwrap().push(msg.message_type);
                            let rep = build_cert_rep(
                                &ca,
                                &msg.reply_to,
                                &reply,
                                CaCaps::parse("AES").cipher(),
                            )
                            .unwrap();
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(rep),
                            )))
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc),
                );
            }
        });
        (
            ScepUrl::parse(&format!("http://127.0.0.1:{port}/scep")).unwrap(),
            cert_der,
            seen_out,
        )
    }

    fn scep_ca(url: ScepUrl, ca_der: Vec<u8>) -> ScepCa {
        let ra = ferrocore_pki::RaIdentity::generate("RA", OffsetDateTime::now_utc()).unwrap();
        ScepCa {
            name: "ext".into(),
            transport: Transport::new(url, None).unwrap(),
            // No wait between polls in unit tests: the count is what is checked.
            poll: Polling {
                interval: Duration::ZERO,
                polls: 3,
            },
            challenge: "secret".into(),
            ca_pem: der_to_pem(&ca_der),
            recipient_der: ca_der.clone(),
            ca_der,
            ra_cert_der: ra.cert_der,
            ra_key: RsaKey::from_pkcs8_der(&pem_contents(&ra.key_pem, "PRIVATE KEY").unwrap())
                .unwrap(),
            caps: CaCaps::parse("POSTPKIOperation\nAES"),
            caps_text: String::new(),
        }
    }

    async fn issue_via(ca: &ScepCa) -> Result<IssuedCert, CoreError> {
        let key =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .unwrap();
        let csr = csr_for(&key, UUID);
        let profile = ClientProfile {
            device_uuid: UUID.into(),
            username: "alice".into(),
            email: None,
            upn: None,
            lifetime: time::Duration::days(365),
            crl_url: None,
            ocsp_url: None,
        };
        ca.issue(&csr, &profile, OffsetDateTime::now_utc()).await
    }

    #[tokio::test]
    async fn external_ca_answers_map_to_stable_codes() {
        use ferrocore_pki::scep::MessageType;
        use ferrocore_pki::scep::{CertRepBody, FailInfo};
        // PENDING: the request, then the configured number of GetCertInitial polls.
        let (url, ca, seen) = counting_responder(Some(CertRepBody::Pending)).await;
        let e = issue_via(&scep_ca(url.clone(), ca.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "external_ca_pending", "{e}");
        assert!(e.to_string().contains("3 GetCertInitial polls"), "{e}");
        assert_eq!(
            *seen.lock().unwrap(),
            [
                MessageType::PkcsReq,
                MessageType::CertPoll,
                MessageType::CertPoll,
                MessageType::CertPoll
            ]
        );
        // A CA that does not offer POSTPKIOperation is asked by GET.
        let mut by_get = scep_ca(url, ca);
        by_get.caps = CaCaps::parse("AES");
        let e = issue_via(&by_get).await.unwrap_err();
        assert_eq!(e.code(), "external_ca_pending", "{e}");

        let (url, ca) = responder(Some(CertRepBody::Failure(FailInfo::BadRequest))).await;
        let e = issue_via(&scep_ca(url, ca)).await.unwrap_err();
        assert_eq!(e.code(), "external_ca_refused", "{e}");
        assert!(e.to_string().contains("badRequest"), "{e}");

        // SUCCESS, but with a certificate for another key (the CA's own).
        let (url, ca) = responder(None).await;
        let e = issue_via(&scep_ca(url, ca)).await.unwrap_err();
        assert_eq!(e.code(), "external_ca_bad_certificate", "{e}");
        assert!(e.to_string().contains("public key"), "{e}");

        // Nobody listening.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = ScepUrl::parse(&format!("http://127.0.0.1:{port}/scep")).unwrap();
        let (_, some_ca) = responder(None).await;
        let e = issue_via(&scep_ca(url, some_ca)).await.unwrap_err();
        assert_eq!(e.code(), "external_ca_unreachable", "{e}");

        // A CSR that does not name the device is not sent.
        let (url, ca) = responder(Some(CertRepBody::Pending)).await;
        let key = rcgen::KeyPair::generate().unwrap();
        let profile = ClientProfile {
            device_uuid: UUID.into(),
            username: "alice".into(),
            email: None,
            upn: None,
            lifetime: time::Duration::days(1),
            crl_url: None,
            ocsp_url: None,
        };
        let e = scep_ca(url, ca)
            .issue(
                &csr_for(&key, "not-the-device"),
                &profile,
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_csr", "{e}");
    }

    #[test]
    fn query_messages_are_percent_encoded() {
        let url = ScepUrl::parse("http://ca.example/scep").unwrap();
        assert_eq!(
            query_path(&url, "PKIOperation", Some("a+b/c==")),
            "/scep?operation=PKIOperation&message=a%2Bb%2Fc%3D%3D"
        );
    }
}
