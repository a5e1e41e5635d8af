//! One device: key and CSR generation, registration, check-in and status.

use crate::state::{DeviceFiles, DeviceState, Registration, StateDir};
use anyhow::{Context, Result, bail};
use ferrocore_client::{ClientError, ClientIdentity, ClientOptions, TlsClient, Url};
use ferrocore_proto::{
    AuthMode, CheckinRequest, CheckinResponse, ClientKind, CsrAttributes, CsrAttributesRequest,
    CsrRequest, IssuedIdentity, Platform, RegisterRequest, RegisterResponse, codes, paths,
};

/// Inputs of a registration.
#[derive(Debug, Clone)]
pub struct RegisterParams {
    /// `https://HOST:PORT` of the device listener.
    pub url: String,
    pub username: String,
    pub password: String,
    pub platform: Platform,
    pub client_kind: ClientKind,
    pub client_version: String,
    /// Explicit device uuid; otherwise the stored one, otherwise a fresh v4 uuid.
    pub device_uuid: Option<String>,
}

/// A freshly generated device key and its PKCS#10 request.
pub struct KeyAndCsr {
    pub key_pem: String,
    pub csr_pem: String,
}

/// Generate an ECDSA P-256 key and a CSR with `CN = device_uuid`.
pub fn generate_key_and_csr(device_uuid: &str) -> Result<KeyAndCsr> {
    generate_key_and_csr_for(device_uuid, &CsrAttributes::default())
}

/// Generate a key and a CSR with `CN = device_uuid` carrying what the server's enrollment
/// configuration asks for (`/api/v1/csr-attributes`): an RSA-2048 key instead of P-256, and
/// the external CA's challengePassword attribute.
pub fn generate_key_and_csr_for(device_uuid: &str, attrs: &CsrAttributes) -> Result<KeyAndCsr> {
    let key = match attrs.key.as_deref() {
        None => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        Some("rsa-2048") => {
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        }
        Some(other) => {
            anyhow::bail!("the server asks for a {other:?} key, which this agent cannot make")
        }
    }
    .context("generating the device key")?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, device_uuid);
    let mut extra = Vec::new();
    if let Some(challenge) = &attrs.challenge_password {
        extra.push(rcgen::Attribute {
            oid: &[1, 2, 840, 113549, 1, 9, 7],
            values: challenge_password_values(challenge)?,
        });
    }
    let csr_pem = params
        .serialize_request_with_attributes(&key, extra)
        .and_then(|csr| csr.pem())
        .context("building the CSR")?;
    Ok(KeyAndCsr {
        key_pem: key.serialize_pem(),
        csr_pem,
    })
}

/// `SET { PrintableString | UTF8String }` of a PKCS#9 challengePassword.
fn challenge_password_values(c: &str) -> Result<Vec<u8>> {
    let printable = c
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
    let value = der_tlv(if printable { 0x13 } else { 0x0c }, c.as_bytes())?;
    der_tlv(0x31, &value)
}

fn der_tlv(tag: u8, content: &[u8]) -> Result<Vec<u8>> {
    let mut out = vec![tag];
    match content.len() {
        n @ 0..=127 => out.push(u8::try_from(n)?),
        n @ 128..=255 => out.extend([0x81, u8::try_from(n)?]),
        n => out.extend([0x82, u8::try_from(n >> 8)?, u8::try_from(n & 0xff)?]),
    }
    if content.len() > 0xffff {
        anyhow::bail!("challenge password too long");
    }
    out.extend_from_slice(content);
    Ok(out)
}

/// A client for registrations: trusts `ca_pem`, no client certificate.
pub fn registration_client(ca_pem: &str) -> Result<TlsClient> {
    Ok(TlsClient::new(ca_pem, None, ClientOptions::default())?)
}

/// Register the device of `dir` (generating a new key) and store the result.
///
/// `ca_pem` is the trust anchor used for the server (`--ca`); it is stored as
/// `server-ca.pem` and trusted on check-ins along with the answer's `ca_pem`.
pub async fn register(
    dir: &StateDir,
    params: &RegisterParams,
    client: &TlsClient,
    ca_pem: &str,
) -> Result<DeviceState> {
    let url = Url::parse_https(&params.url)?;
    let device_uuid = match &params.device_uuid {
        Some(u) => u.clone(),
        None => dir
            .stored_uuid()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    };
    let KeyAndCsr { key_pem, csr_pem } = generate_key_and_csr(&device_uuid)?;
    let mut request = RegisterRequest {
        username: params.username.clone(),
        password: params.password.clone(),
        platform: params.platform,
        client_kind: params.client_kind,
        client_version: params.client_version.clone(),
        device_uuid: device_uuid.clone(),
        csr_pem: Some(csr_pem),
    };
    let base = params.url.trim_end_matches('/');
    let register_url = format!("{base}{}", paths::REGISTER);
    let mut key_pem = key_pem;
    let resp: RegisterResponse = match client.post_json(&register_url, &request).await {
        // The selected enrollment configuration (an external SCEP CA) needs more in the CSR:
        // ask what, make a new key and CSR with it, and register again.
        Err(ClientError::Api { code, .. }) if code == codes::CSR_ATTRIBUTES_REQUIRED => {
            let attrs: CsrAttributes = client
                .post_json(
                    &format!("{base}{}", paths::CSR_ATTRIBUTES),
                    &CsrAttributesRequest {
                        username: Some(params.username.clone()),
                        password: Some(params.password.clone()),
                    },
                )
                .await?;
            let fresh = generate_key_and_csr_for(&device_uuid, &attrs)?;
            key_pem = fresh.key_pem;
            request.csr_pem = Some(fresh.csr_pem);
            client.post_json(&register_url, &request).await?
        }
        other => other?,
    };

    let (cert_pem, secret) = match resp.mode {
        AuthMode::Mutual => (
            Some(
                resp.certificate_pem
                    .as_deref()
                    .context("server answered mode=mutual without certificate_pem")?,
            ),
            None,
        ),
        AuthMode::Legacy => (
            None,
            Some(
                resp.device_secret
                    .as_deref()
                    .context("server answered mode=legacy without device_secret")?,
            ),
        ),
    };
    let state = DeviceState {
        server_url: params.url.clone(),
        host: url.host,
        checkin: resp.checkin.clone(),
        device_id: resp.device_id.clone(),
        device_uuid,
        mode: resp.mode,
        platform: params.platform,
        client_kind: params.client_kind,
        client_version: params.client_version.clone(),
        policy: resp.policy.clone(),
        registered_at: now(),
        last_checkin_at: None,
        renews: None,
    };
    dir.save_registration(&Registration {
        state: &state,
        key_pem: &key_pem,
        cert_pem,
        ca_pem: &resp.ca_pem,
        server_ca_pem: Some(ca_pem),
        secret,
    })?;
    Ok(state)
}

/// `uuid:secret` for the legacy header.
pub fn secret_header_value(files: &DeviceFiles) -> Option<String> {
    files
        .secret
        .as_ref()
        .map(|s| format!("{}:{s}", files.state.device_uuid))
}

/// How a device authenticates a check-in.
#[derive(Debug, Clone)]
pub struct CheckinCredentials {
    /// Mutual mode: the TLS client identity (`cert.pem` + `key.pem`).
    pub identity: Option<ClientIdentity>,
    /// Legacy mode: the `x-ferrocore-device-secret` header.
    pub headers: Vec<(String, String)>,
}

/// The client identity (mutual mode) or secret header (legacy mode) a device checks in with.
pub fn checkin_credentials(files: &DeviceFiles) -> Result<CheckinCredentials> {
    match files.state.mode {
        AuthMode::Mutual => {
            let cert = files
                .cert_pem
                .clone()
                .context("mutual mode but no client certificate; register again")?;
            Ok(CheckinCredentials {
                identity: Some(ClientIdentity {
                    cert_chain_pem: cert,
                    key_pem: files.key_pem.clone(),
                }),
                headers: Vec::new(),
            })
        }
        AuthMode::Legacy => {
            let Some(value) = secret_header_value(files) else {
                bail!("legacy mode but no device secret; register again");
            };
            Ok(CheckinCredentials {
                identity: None,
                headers: vec![(paths::DEVICE_SECRET_HEADER.to_string(), value)],
            })
        }
    }
}

/// Check in once and follow the server's instructions (port, listener, mode, policy,
/// renewal, migration). A certificate that expired less than 30 days ago is renewed first
/// (the server accepts it on the renewal endpoint only), then the check-in is repeated —
/// unless the server's last answer said this client does not renew (then: register again).
pub async fn checkin(dir: &StateDir) -> Result<CheckinResponse> {
    checkin_with(dir, None).await.map(|(resp, _)| resp)
}

/// TLS sessions a long-running agent keeps between check-ins: the client (its rustls
/// configuration and session cache) is kept while trust anchors, identity and headers stay
/// the same. rustls resumes a session only with the configuration that made it, so a new
/// certificate (after renewal or migration) always starts with a full handshake.
#[derive(Default)]
pub struct Sessions {
    current: std::sync::Mutex<Option<(String, TlsClient)>>,
}

impl Sessions {
    fn client(&self, key: String, make: impl FnOnce() -> Result<TlsClient>) -> Result<TlsClient> {
        let mut current = self
            .current
            .lock()
            .map_err(|_| anyhow::anyhow!("session cache poisoned"))?;
        if let Some((k, client)) = &*current
            && *k == key
        {
            return Ok(client.clone());
        }
        let client = make()?;
        *current = Some((key, client.clone()));
        Ok(client)
    }
}

/// [`checkin`] keeping TLS sessions in `sessions`; also says whether the check-in's TLS
/// handshake resumed a session.
pub async fn checkin_with(
    dir: &StateDir,
    sessions: Option<&Sessions>,
) -> Result<(CheckinResponse, bool)> {
    match checkin_once(dir, sessions).await {
        Err(e)
            if is_api_error(&e, ferrocore_proto::codes::CERT_EXPIRED)
                && dir.load().is_ok_and(|f| f.state.renews == Some(false)) =>
        {
            eprintln!(
                "note: the certificate has expired and this client version does not renew it \
                 (the server's last answer): register again"
            );
            Err(e)
        }
        Err(e) if is_api_error(&e, ferrocore_proto::codes::CERT_EXPIRED) => {
            eprintln!("note: the certificate has expired; trying to renew within the grace period");
            if let Err(renew_err) = renew(dir).await {
                eprintln!("note: renewal failed: {renew_err:#}");
                return Err(e);
            }
            checkin_once(dir, sessions).await
        }
        other => other,
    }
}

fn is_api_error(e: &anyhow::Error, wanted: &str) -> bool {
    matches!(
        e.downcast_ref::<ferrocore_client::ClientError>(),
        Some(ferrocore_client::ClientError::Api { code, .. }) if code == wanted
    )
}

async fn checkin_once(
    dir: &StateDir,
    sessions: Option<&Sessions>,
) -> Result<(CheckinResponse, bool)> {
    let files = dir.load()?;
    let creds = checkin_credentials(&files)?;
    let trust = files.trust_pem();
    let key = format!(
        "{trust}\n{}\n{:?}",
        creds
            .identity
            .as_ref()
            .map_or("", |i| i.cert_chain_pem.as_str()),
        creds.headers
    );
    let make = || -> Result<TlsClient> {
        Ok(TlsClient::new(
            &trust,
            creds.identity.clone(),
            ClientOptions {
                default_headers: creds.headers.clone(),
                ..ClientOptions::default()
            },
        )?)
    };
    let client = match sessions {
        Some(s) => s.client(key, make)?,
        None => make()?,
    };
    let request = CheckinRequest {
        client_version: Some(files.state.client_version.clone()),
    };
    let resp: CheckinResponse = client
        .post_json(&files.state.checkin_url(), &request)
        .await?;

    let mut state = files.state;
    if state.checkin != resp.checkin {
        eprintln!(
            "note: check-in endpoint changed to {} port {}",
            resp.checkin.listener, resp.checkin.port
        );
        state.checkin = resp.checkin.clone();
    }
    if state.mode != resp.mode {
        eprintln!("note: authentication mode changed to {}", resp.mode);
        state.mode = resp.mode;
    }
    state.device_id.clone_from(&resp.device_id);
    state.policy = resp.policy.clone();
    if let Some(c) = &resp.certificate {
        state.renews = Some(c.supports_renewal);
    }
    state.last_checkin_at = Some(now());
    dir.save_state(&state)?;
    for action in &resp.actions {
        match action {
            ferrocore_proto::Action::Reregister { reason } => {
                eprintln!("note: the server asks this device to register again: {reason}");
            }
            ferrocore_proto::Action::Renew { .. } if state.renews == Some(false) => {
                eprintln!("note: renewal is not supported for this client version: not renewing");
            }
            ferrocore_proto::Action::Renew { not_after } => {
                eprintln!(
                    "note: renewal window open (certificate expires at {not_after}); renewing"
                );
                renew(dir).await?;
            }
            ferrocore_proto::Action::Migrate => {
                eprintln!("note: the server migrates this device to mutual authentication");
                migrate(dir).await?;
            }
        }
    }
    Ok((resp, client.last_handshake_resumed()))
}

/// Renews the identity certificate: a new key, a CSR sent over mutual TLS with the current
/// certificate. The new key and certificate replace the old ones in the state dir.
pub async fn renew(dir: &StateDir) -> Result<IssuedIdentity> {
    let files = dir.load()?;
    let creds = checkin_credentials(&files)?;
    if creds.identity.is_none() {
        bail!("only a device in mutual mode renews its certificate");
    }
    let client = TlsClient::new(&files.trust_pem(), creds.identity, ClientOptions::default())?;
    let (fresh, resp) = post_new_csr(&client, &files, paths::RENEW).await?;
    store_identity(dir, files, &fresh.key_pem, &resp)?;
    eprintln!(
        "note: certificate renewed (serial {}, expires {})",
        resp.serial, resp.not_after
    );
    Ok(resp)
}

/// Posts a CSR for a new key to `path` (renewal, migration). When the device's enrollment
/// configuration needs more in the CSR (`csr_attributes_required`: an external SCEP CA), asks
/// `/api/v1/csr-attributes` with the same credentials and posts a new one.
async fn post_new_csr(
    client: &TlsClient,
    files: &DeviceFiles,
    path: &str,
) -> Result<(KeyAndCsr, IssuedIdentity)> {
    let url = files.state.endpoint_url(path);
    let fresh = generate_key_and_csr(&files.state.device_uuid)?;
    let request = CsrRequest {
        csr_pem: fresh.csr_pem.clone(),
    };
    match client.post_json(&url, &request).await {
        Err(ClientError::Api { code, .. }) if code == codes::CSR_ATTRIBUTES_REQUIRED => {
            let attrs: CsrAttributes = client
                .post_json(
                    &files.state.endpoint_url(paths::CSR_ATTRIBUTES),
                    &CsrAttributesRequest::default(),
                )
                .await?;
            let fresh = generate_key_and_csr_for(&files.state.device_uuid, &attrs)?;
            let request = CsrRequest {
                csr_pem: fresh.csr_pem.clone(),
            };
            let resp = client.post_json(&url, &request).await?;
            Ok((fresh, resp))
        }
        other => Ok((fresh, other?)),
    }
}

/// Obtains a mutual-auth identity certificate for a legacy device (migration), then uses the
/// device listener from the next check-in on.
pub async fn migrate(dir: &StateDir) -> Result<IssuedIdentity> {
    let files = dir.load()?;
    let creds = checkin_credentials(&files)?;
    let client = TlsClient::new(
        &files.trust_pem(),
        None,
        ClientOptions {
            default_headers: creds.headers,
            ..ClientOptions::default()
        },
    )?;
    let (fresh, resp) = post_new_csr(&client, &files, paths::MIGRATE).await?;
    store_identity(dir, files, &fresh.key_pem, &resp)?;
    eprintln!(
        "note: migrated: check-ins now use mutual TLS on port {}",
        resp.checkin.port
    );
    Ok(resp)
}

fn store_identity(
    dir: &StateDir,
    files: DeviceFiles,
    key_pem: &str,
    resp: &IssuedIdentity,
) -> Result<()> {
    let mut state = files.state;
    state.mode = resp.mode;
    state.checkin = resp.checkin.clone();
    dir.save_registration(&Registration {
        state: &state,
        key_pem,
        cert_pem: Some(&resp.certificate_pem),
        ca_pem: &resp.ca_pem,
        server_ca_pem: files.server_ca_pem.as_deref(),
        secret: None,
    })
}

/// `state.json` plus facts about the certificate (no network).
pub fn status(dir: &StateDir) -> Result<serde_json::Value> {
    let state = dir.load_state()?;
    let mut value = serde_json::to_value(&state)?;
    let cert_path = dir.path().join(crate::state::CERT_FILE);
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("state_dir".into(), dir.path().display().to_string().into());
        if let Ok(pem) = std::fs::read(&cert_path) {
            let info =
                cert_info(&pem).with_context(|| format!("parsing {}", cert_path.display()))?;
            map.insert("cert_not_after".into(), info.not_after_rfc3339.into());
            map.insert("cert_not_after_unix".into(), info.not_after.into());
            map.insert("cert_serial".into(), info.serial.into());
            map.insert("cert_subject".into(), info.subject.into());
        }
    }
    Ok(value)
}

/// A few facts about a PEM certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub not_after: i64,
    pub not_after_rfc3339: String,
    pub serial: String,
    pub subject: String,
}

pub fn cert_info(pem: &[u8]) -> Result<CertInfo> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).context("not a PEM certificate")?;
    let cert = pem.parse_x509().context("not an X.509 certificate")?;
    let not_after = cert.validity().not_after.timestamp();
    let not_after_rfc3339 = time::OffsetDateTime::from_unix_timestamp(not_after)?
        .format(&time::format_description::well_known::Rfc3339)?;
    Ok(CertInfo {
        not_after,
        not_after_rfc3339,
        serial: cert.raw_serial_as_string(),
        subject: cert.subject().to_string(),
    })
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// An AppConnect check-in of app `app_id` with this device's identity (its certificate in
/// mutual mode, its secret in legacy mode), on the device's check-in listener.
pub async fn appconnect_checkin(
    dir: &StateDir,
    app_id: &str,
) -> Result<ferrocore_proto::AppConnectCheckin> {
    let files = dir.load()?;
    let creds = checkin_credentials(&files)?;
    let client = TlsClient::new(
        &files.trust_pem(),
        creds.identity,
        ClientOptions {
            default_headers: creds.headers,
            ..ClientOptions::default()
        },
    )?;
    let url = files
        .state
        .endpoint_url(ferrocore_proto::storefront_paths::APPCONNECT_CHECKIN);
    let request = ferrocore_proto::AppConnectCheckinRequest {
        app_id: app_id.to_owned(),
    };
    Ok(client.post_json(&url, &request).await?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use x509_parser::prelude::FromDer;

    #[test]
    fn csr_for_an_external_ca_has_an_rsa_key_and_the_challenge() {
        use x509_parser::cri_attributes::ParsedCriAttribute;
        let uuid = "0b7e6c1a-1f2d-4e3c-9a8b-7c6d5e4f3a2b";
        for challenge in ["secret", "not printable: ü & *"] {
            let attrs = CsrAttributes {
                key: Some("rsa-2048".into()),
                challenge_password: Some(challenge.into()),
            };
            let k = generate_key_and_csr_for(uuid, &attrs).unwrap();
            let (_, pem) = x509_parser::pem::parse_x509_pem(k.csr_pem.as_bytes()).unwrap();
            let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(
                &pem.contents,
            )
            .unwrap();
            csr.verify_signature().unwrap();
            let info = &csr.certification_request_info;
            assert_eq!(
                info.subject_pki.algorithm.algorithm.to_id_string(),
                "1.2.840.113549.1.1.1"
            );
            let found = info
                .iter_attributes()
                .find_map(|a| match a.parsed_attribute() {
                    ParsedCriAttribute::ChallengePassword(p) => Some(p.0.clone()),
                    _ => None,
                });
            assert_eq!(found.as_deref(), Some(challenge));
        }
        let odd = CsrAttributes {
            key: Some("ed25519".into()),
            challenge_password: None,
        };
        assert!(generate_key_and_csr_for(uuid, &odd).is_err());
    }

    #[test]
    fn csr_has_device_uuid_as_cn_and_p256_key() {
        let uuid = "0b7e6c1a-1f2d-4e3c-9a8b-7c6d5e4f3a2b";
        let k = generate_key_and_csr(uuid).unwrap();
        assert!(k.key_pem.contains("PRIVATE KEY"));
        let (_, pem) = x509_parser::pem::parse_x509_pem(k.csr_pem.as_bytes()).unwrap();
        assert_eq!(pem.label, "CERTIFICATE REQUEST");
        let (_, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
                .unwrap();
        csr.verify_signature().unwrap();
        let info = &csr.certification_request_info;
        assert_eq!(info.subject.to_string(), format!("CN={uuid}"));
        let cn = info.subject.iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), uuid);
        // The key in key.pem is the one in the CSR.
        let key = rcgen::KeyPair::from_pem(&k.key_pem).unwrap();
        assert_eq!(
            key.public_key_raw(),
            info.subject_pki.subject_public_key.data.as_ref()
        );
    }

    #[test]
    fn cert_info_reads_not_after() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.not_after = time::OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let info = cert_info(cert.pem().as_bytes()).unwrap();
        assert_eq!(info.not_after, 2_000_000_000);
        assert_eq!(info.not_after_rfc3339, "2033-05-18T03:33:20Z");
    }

    #[test]
    fn status_includes_cert_not_after() {
        use crate::state::{Registration, StateDir};
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let state = crate::state::tests_support::sample_state(AuthMode::Mutual);
        dir.save_registration(&Registration {
            state: &state,
            key_pem: &key.serialize_pem(),
            cert_pem: Some(&cert.pem()),
            ca_pem: &cert.pem(),
            server_ca_pem: None,
            secret: None,
        })
        .unwrap();
        let v = status(&dir).unwrap();
        assert_eq!(v["device_id"], "dev-1");
        assert_eq!(v["cert_not_after"], "4096-01-01T00:00:00Z");
    }
}
