//! TLS for the listeners, and the one place a client certificate becomes a [`ClientCert`].
//!
//! The device listener asks for a client certificate but does not fail the handshake on it:
//! rustls checks only that the client holds the key of the certificate it sent (the
//! CertificateVerify signature). The chain, validity and EKU are then checked by
//! [`TrustStore::verify`] before any request reaches a handler, so a foreign, expired or
//! malformed certificate gets a JSON error with a stable code instead of a TLS alert.
//! A certificate that fails verification never yields an identity (defaults deny).

use arc_swap::ArcSwap;
use ferrocore_core::CoreError;
use ferrocore_core::service::PresentedCert;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::ServerConfig;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use std::sync::Arc;

/// The aws-lc-rs provider, the only one Ferrocore uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Outcome of checking the certificate a client presented.
#[derive(Debug, Clone)]
pub enum ClientCert {
    /// No certificate was presented.
    None,
    /// Chains to a trusted CA with clientAuth usage, and was valid at its `not_after` (it may
    /// have expired since: the domain enforces expiry and the renewal grace).
    Verified(PresentedCert),
    /// Presented but not acceptable; the error says why.
    Rejected(Arc<CoreError>),
}

/// Trust anchors for device certificates (the local CA; external CAs later).
pub struct TrustStore {
    anchors: ArcSwap<Vec<rustls_pki_types::TrustAnchor<'static>>>,
    subjects: ArcSwap<Vec<DistinguishedName>>,
    algs: WebPkiSupportedAlgorithms,
}

impl TrustStore {
    pub fn new(ca_ders: &[Vec<u8>]) -> anyhow::Result<Self> {
        let store = TrustStore {
            anchors: ArcSwap::from_pointee(Vec::new()),
            subjects: ArcSwap::from_pointee(Vec::new()),
            algs: provider().signature_verification_algorithms,
        };
        store.set(ca_ders)?;
        Ok(store)
    }

    pub fn set(&self, ca_ders: &[Vec<u8>]) -> anyhow::Result<()> {
        let mut anchors = Vec::new();
        let mut subjects = Vec::new();
        for der in ca_ders {
            let cert = CertificateDer::from(der.clone());
            let anchor = webpki::anchor_from_trusted_cert(&cert)
                .map_err(|e| anyhow::anyhow!("trust anchor: {e}"))?
                .to_owned();
            subjects.push(DistinguishedName::in_sequence(anchor.subject.as_ref()));
            anchors.push(anchor);
        }
        self.anchors.store(Arc::new(anchors));
        self.subjects.store(Arc::new(subjects));
        Ok(())
    }

    /// Verifies a presented chain at `now` for client authentication.
    pub fn verify(&self, chain: &[CertificateDer<'_>], now: time::OffsetDateTime) -> ClientCert {
        let Some(ee) = chain.first() else {
            return ClientCert::None;
        };
        let reject = |e: CoreError| ClientCert::Rejected(Arc::new(e));
        let info = match ferrocore_pki::cert_info(ee.as_ref()) {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!(error = %e, "client certificate does not parse");
                return reject(CoreError::CertUnknown(MALFORMED.into()));
            }
        };
        let cert = match webpki::EndEntityCert::try_from(ee) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = ?e, "client certificate does not parse");
                return reject(CoreError::CertUnknown(
                    certificate_problem(&e, Usage::Client).into(),
                ));
            }
        };
        let anchors = self.anchors.load();
        let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let res = cert.verify_for_usage(
            self.algs.all,
            &anchors,
            &chain[1..],
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs)),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        );
        let res = match res {
            // Expired: check the chain as of the certificate's last valid second. The domain
            // decides what an expired certificate may still do (renewal within the grace).
            Err(webpki::Error::CertExpired { .. }) => {
                let at = u64::try_from(info.not_after.unix_timestamp()).unwrap_or(0);
                cert.verify_for_usage(
                    self.algs.all,
                    &anchors,
                    &chain[1..],
                    UnixTime::since_unix_epoch(std::time::Duration::from_secs(at)),
                    webpki::KeyUsage::client_auth(),
                    None,
                    None,
                )
            }
            other => other,
        };
        match res {
            Ok(_) => ClientCert::Verified(PresentedCert {
                serial: info.serial_hex,
                not_after: info.not_after.unix_timestamp(),
                // `cert_info` hashed the DER already.
                sha256: Some(info.sha256_hex),
            }),
            Err(webpki::Error::CertExpired { .. }) => reject(CoreError::CertExpired {
                not_after: info.not_after.unix_timestamp(),
            }),
            Err(webpki::Error::UnknownIssuer) => reject(CoreError::CertUnknown(
                "not issued by a CA this server trusts".into(),
            )),
            Err(e) => {
                tracing::debug!(error = ?e, "client certificate refused");
                reject(CoreError::CertUnknown(
                    certificate_problem(&e, Usage::Client).into(),
                ))
            }
        }
    }
}

const MALFORMED: &str = "the certificate is not a well-formed X.509 certificate";

/// What a certificate is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Client,
    Server,
}

/// A certificate verification failure in the caller's terms (never webpki's enum names; the
/// details go to the log where the caller decides).
pub fn certificate_problem(e: &webpki::Error, usage: Usage) -> &'static str {
    use webpki::Error as E;
    match (e, usage) {
        (E::CaUsedAsEndEntity, Usage::Client) => {
            "the certificate is a CA certificate, not a client certificate"
        }
        (E::CaUsedAsEndEntity, Usage::Server) => {
            "the certificate is a CA certificate, not a server certificate"
        }
        (E::EndEntityUsedAsCa, _) => {
            "a certificate of the chain that issued another one is not a CA certificate"
        }
        (E::RequiredEkuNotFoundContext(_), Usage::Client) => {
            "the certificate's extended key usage does not allow client authentication"
        }
        (E::RequiredEkuNotFoundContext(_), Usage::Server) => {
            "the certificate's extended key usage does not allow TLS server authentication"
        }
        (E::EmptyEkuExtension, _) => "the certificate's extended key usage extension is empty",
        (E::UnsupportedCertVersion, _) => "the certificate is not an X.509 version 3 certificate",
        (E::CertExpired { .. }, _) => "a certificate of the chain has expired",
        (E::CertNotValidYet { .. }, _) => "a certificate of the chain is not valid yet",
        (E::InvalidCertValidity, _) => "the certificate's validity period is invalid",
        (E::UnknownIssuer, _) => "the certificate is not issued by a trusted CA",
        (E::InvalidSignatureForPublicKey, _) => "a signature of the chain does not verify",
        (
            E::UnsupportedSignatureAlgorithmContext(_)
            | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
            | E::SignatureAlgorithmMismatch,
            _,
        ) => "the certificate is signed with an unsupported algorithm",
        (E::UnsupportedCriticalExtension, _) => {
            "the certificate has a critical extension this server does not understand"
        }
        (E::PathLenConstraintViolated | E::NameConstraintViolation, _) => {
            "the chain violates a CA's path length or name constraints"
        }
        (E::CertNotValidForName(_), _) => "the certificate does not name this host",
        _ => MALFORMED,
    }
}

/// Asks for a client certificate, checks possession of its key, defers the chain check.
#[derive(Debug)]
struct DeferredClientVerifier {
    subjects: Vec<DistinguishedName>,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for DeferredClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Chain, validity and usage are verified by TrustStore::verify right after the
        // handshake, before any request is served; see the module docs.
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Parses the portal certificate chain and key.
pub fn parse_identity(
    chain_pem: &str,
    key_pem: &str,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    use rustls_pki_types::pem::PemObject;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("server certificate chain: {e}"))?;
    if chain.is_empty() {
        anyhow::bail!("server certificate chain: no certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("server key: {e}"))?;
    Ok((chain, key))
}

/// Server configs for the listeners: the device listener asks for client certificates.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: Option<&TrustStore>,
    tickets: Option<&crate::tickets::TicketKeys>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("tls: {e}"))?;
    let builder = match client_auth {
        Some(trust) => builder.with_client_cert_verifier(Arc::new(DeferredClientVerifier {
            subjects: trust.subjects.load().as_ref().clone(),
            algs: trust.algs,
        })),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("server certificate: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    match tickets {
        // TLS 1.3 tickets: resumption on any node holding the same ticket secret; the
        // restored client certificate is verified and looked up per request like a new one.
        Some(tickets) => {
            config.ticketer = match client_auth {
                Some(_) => tickets.client_auth.clone(),
                None => tickets.plain.clone(),
            };
        }
        // Switched off: no resumption at all (no tickets, no per-process session cache).
        None => {
            config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
    }
    Ok(Arc::new(config))
}

/// The listeners' current TLS configurations, swapped without restart when the trust
/// anchors (a new enrollment configuration) or the portal certificate change. A connection
/// keeps the configuration it was accepted with.
pub struct TlsState {
    /// Device listener (asks for client certificates).
    pub device: Arc<ArcSwap<ServerConfig>>,
    /// Sync-TLS and admin listeners.
    pub plain: Arc<ArcSwap<ServerConfig>>,
    identity: std::sync::Mutex<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Storefront listener: like `plain`, or like `device` (asks for client certificates)
    /// while storefront authentication is `certificate`.
    pub storefront: Arc<ArcSwap<ServerConfig>>,
    storefront_client_auth: std::sync::atomic::AtomicBool,
    tickets: Option<crate::tickets::TicketKeys>,
}

impl TlsState {
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        trust: &TrustStore,
        tickets: Option<crate::tickets::TicketKeys>,
    ) -> anyhow::Result<Self> {
        let t = tickets.as_ref();
        let device = server_config(chain.clone(), key.clone_key(), Some(trust), t)?;
        let plain = server_config(chain.clone(), key.clone_key(), None, t)?;
        Ok(TlsState {
            device: Arc::new(ArcSwap::new(device)),
            storefront: Arc::new(ArcSwap::new(plain.clone())),
            plain: Arc::new(ArcSwap::new(plain)),
            identity: std::sync::Mutex::new((chain, key)),
            storefront_client_auth: std::sync::atomic::AtomicBool::new(false),
            tickets,
        })
    }

    /// Replaces the portal certificate on every listener. The new configurations are built
    /// first, so an error leaves the current ones in place; connections already accepted
    /// keep the configuration they were accepted with (keep-alive is not interrupted).
    pub fn set_identity(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        trust: &TrustStore,
    ) -> anyhow::Result<()> {
        let mut guard = self
            .identity
            .lock()
            .map_err(|_| anyhow::anyhow!("tls state poisoned"))?;
        let t = self.tickets.as_ref();
        let device = server_config(chain.clone(), key.clone_key(), Some(trust), t)?;
        let plain = server_config(chain.clone(), key.clone_key(), None, t)?;
        let storefront = self.storefront_config(&device, &plain);
        *guard = (chain, key);
        self.device.store(device);
        self.plain.store(plain);
        self.storefront.store(storefront);
        Ok(())
    }

    /// Rebuilds both configurations from the current identity and trust anchors.
    pub fn rebuild(&self, trust: &TrustStore) -> anyhow::Result<()> {
        let guard = self
            .identity
            .lock()
            .map_err(|_| anyhow::anyhow!("tls state poisoned"))?;
        let (chain, key) = &*guard;
        let t = self.tickets.as_ref();
        let device = server_config(chain.clone(), key.clone_key(), Some(trust), t)?;
        let plain = server_config(chain.clone(), key.clone_key(), None, t)?;
        let storefront = self.storefront_config(&device, &plain);
        self.device.store(device);
        self.plain.store(plain);
        self.storefront.store(storefront);
        Ok(())
    }

    /// Makes the storefront listener ask for client certificates (`true`, storefront
    /// authentication `certificate`) or not; new connections only.
    pub fn set_storefront_client_auth(&self, on: bool, trust: &TrustStore) -> anyhow::Result<()> {
        let guard = self
            .identity
            .lock()
            .map_err(|_| anyhow::anyhow!("tls state poisoned"))?;
        let (chain, key) = &*guard;
        let config = server_config(
            chain.clone(),
            key.clone_key(),
            on.then_some(trust),
            self.tickets.as_ref(),
        )?;
        self.storefront_client_auth
            .store(on, std::sync::atomic::Ordering::SeqCst);
        self.storefront.store(config);
        Ok(())
    }

    fn storefront_config(
        &self,
        device: &Arc<ServerConfig>,
        plain: &Arc<ServerConfig>,
    ) -> Arc<ServerConfig> {
        if self
            .storefront_client_auth
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            device.clone()
        } else {
            plain.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocore_pki::{ClientProfile, LocalCa, parse_csr};
    use time::{Duration, OffsetDateTime};

    const UUID: &str = "5b0c3f1e-8a2d-4c6b-9e7f-1a2b3c4d5e6f";

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    /// A client identity from `ca`, issued at `at` for `days`.
    fn client(ca: &LocalCa, at: OffsetDateTime, days: i64) -> ferrocore_pki::IssuedCert {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap();
        let csr = parse_csr(csr.der()).unwrap();
        let profile = ClientProfile {
            device_uuid: UUID.into(),
            username: "alice".into(),
            email: None,
            upn: None,
            lifetime: Duration::days(days),
            crl_url: None,
            ocsp_url: None,
        };
        ca.issue_client(&csr, &profile, at).unwrap()
    }

    fn der(d: &[u8]) -> CertificateDer<'static> {
        CertificateDer::from(d.to_vec())
    }

    /// The stable code and message of a rejection; panics on anything else.
    fn rejected(c: ClientCert) -> (&'static str, String) {
        match c {
            ClientCert::Rejected(e) => (e.code(), e.to_string()),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_current_identity_of_a_trusted_ca_is_verified() {
        let ca = LocalCa::generate("Trusted", t0() - Duration::days(1)).unwrap();
        let store = TrustStore::new(&[ca.cert_der().to_vec()]).unwrap();
        let cert = client(&ca, t0(), 30);
        match store.verify(&[der(&cert.der)], t0() + Duration::days(1)) {
            ClientCert::Verified(p) => {
                assert_eq!(p.serial, cert.serial_hex);
                assert_eq!(p.not_after, cert.not_after.unix_timestamp());
                assert_eq!(
                    p.sha256.as_deref(),
                    Some(
                        ferrocore_pki::cert_info(&cert.der)
                            .unwrap()
                            .sha256_hex
                            .as_str()
                    )
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(store.verify(&[], t0()), ClientCert::None));
    }

    /// An expired identity of a trusted CA is passed on as verified with its notAfter, the
    /// chain checked as of that second: the domain decides (renewal grace, or
    /// `certificate_expired`). One from a foreign CA stays refused (below).
    #[test]
    fn expired_is_verified_as_of_its_not_after_for_the_domain_to_judge() {
        let ca = LocalCa::generate("Trusted", t0() - Duration::days(1)).unwrap();
        let store = TrustStore::new(&[ca.cert_der().to_vec()]).unwrap();
        let cert = client(&ca, t0(), 30);
        for at in [cert.not_after, cert.not_after + Duration::days(400)] {
            match store.verify(&[der(&cert.der)], at) {
                ClientCert::Verified(p) => {
                    assert_eq!(p.serial, cert.serial_hex);
                    assert_eq!(p.not_after, cert.not_after.unix_timestamp());
                }
                other => panic!("{other:?}"),
            }
        }
        // Expired, and also signed by the wrong key: the chain check as of notAfter refuses.
        let impostor = LocalCa::generate("Trusted", t0() - Duration::days(1)).unwrap();
        let forged = client(&impostor, t0(), 30);
        let (code, _) =
            rejected(store.verify(&[der(&forged.der)], forged.not_after + Duration::days(1)));
        assert_eq!(code, "certificate_unknown");
    }

    #[test]
    fn not_yet_valid_is_refused() {
        let ca = LocalCa::generate("Trusted", t0() - Duration::days(1)).unwrap();
        let store = TrustStore::new(&[ca.cert_der().to_vec()]).unwrap();
        // notBefore is five minutes before issuance.
        let cert = client(&ca, t0(), 30);
        let (code, msg) = rejected(store.verify(&[der(&cert.der)], t0() - Duration::minutes(6)));
        assert_eq!(code, "certificate_unknown");
        assert_eq!(
            msg,
            "the client certificate is not known to this server: a certificate of the chain is not valid yet"
        );
    }

    #[test]
    fn a_server_certificate_is_not_a_client_identity() {
        let ca = LocalCa::generate("Trusted", t0() - Duration::days(1)).unwrap();
        let store = TrustStore::new(&[ca.cert_der().to_vec()]).unwrap();
        let (server, _key) = ca
            .issue_server(&["device.example.test".into()], Duration::days(30), t0())
            .unwrap();
        let (code, msg) = rejected(store.verify(&[der(&server.der)], t0() + Duration::days(1)));
        assert_eq!(code, "certificate_unknown");
        assert!(
            msg.contains("extended key usage does not allow client authentication"),
            "{msg}"
        );
    }

    #[test]
    fn a_foreign_chain_is_refused_even_with_its_ca_attached() {
        let ca = LocalCa::generate("Trusted", t0() - Duration::days(1)).unwrap();
        let foreign = LocalCa::generate("Foreign", t0() - Duration::days(1)).unwrap();
        let store = TrustStore::new(&[ca.cert_der().to_vec()]).unwrap();
        let cert = client(&foreign, t0(), 30);
        let at = t0() + Duration::days(1);
        // A CA with the trusted CA's name but another key is foreign too.
        let impostor = LocalCa::generate("Trusted", t0() - Duration::days(1)).unwrap();
        let forged = client(&impostor, t0(), 30);
        let (code, _) = rejected(store.verify(&[der(&forged.der)], at));
        assert_eq!(code, "certificate_unknown");
        for chain in [
            vec![der(&cert.der)],
            vec![der(&cert.der), der(foreign.cert_der())],
        ] {
            let (code, msg) = rejected(store.verify(&chain, at));
            assert_eq!(code, "certificate_unknown");
            assert!(
                msg.contains("not issued by a CA this server trusts"),
                "{msg}"
            );
        }
        // Expired as well: still foreign, never "expired" (which would admit renewal).
        let (code, _) =
            rejected(store.verify(&[der(&cert.der)], cert.not_after + Duration::days(1)));
        assert_eq!(code, "certificate_unknown");
        // The same CA trusted: verified.
        store
            .set(&[ca.cert_der().to_vec(), foreign.cert_der().to_vec()])
            .unwrap();
        assert!(matches!(
            store.verify(&[der(&cert.der)], at),
            ClientCert::Verified(_)
        ));
    }

    #[test]
    fn the_ca_itself_is_not_a_client_identity() {
        let ca = LocalCa::generate("Trusted", t0() - Duration::days(1)).unwrap();
        let store = TrustStore::new(&[ca.cert_der().to_vec()]).unwrap();
        let (code, msg) = rejected(store.verify(&[der(ca.cert_der())], t0()));
        assert_eq!(code, "certificate_unknown");
        assert!(
            msg.contains("is a CA certificate, not a client certificate"),
            "{msg}"
        );
        let (code, _) = rejected(store.verify(&[der(b"\x30\x03\x02\x01\x00")], t0()));
        assert_eq!(code, "certificate_unknown");
    }
}
