//! The portal HTTPS certificate an administrator uploads: parsing (PEM chain + key, or
//! PKCS#12 with a password), validation, and the facts shown by `portal-cert show`.
//!
//! [`validate`] is a pure function of its inputs (the upload, `server.hostnames`, the trust
//! anchors and `now`): it refuses, with a stable code, a malformed upload, a key that does not
//! match the leaf, a chain that does not reach a root (missing intermediate), a certificate
//! outside its validity period, or one that does not cover every configured hostname. A chain
//! that ends at a root outside the system trust store is only a warning (and only while mutual
//! authentication is enabled: the spec wants a publicly trusted certificate then). Storage and
//! the swap on the listeners are done by the caller (`http::portal`, `datadir`, `tls`).

use ferrocore_core::CoreError;
use ferrocore_proto::{PortalCert, codes};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, TrustAnchor, UnixTime};
use time::OffsetDateTime;

/// Where the publicly trusted roots are read from (Debian/Ubuntu layout); the environment
/// variable `FERROCORE_PUBLIC_ROOTS` names another PEM bundle.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Largest PEM chain, key or PKCS#12 accepted.
pub const MAX_INPUT: usize = 256 * 1024;

fn refuse(code: &'static str, message: impl Into<String>) -> CoreError {
    CoreError::PortalCert {
        code,
        message: message.into(),
    }
}

/// A certificate chain and key that passed [`validate`].
pub struct ValidIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// PEM forms, as stored in the data directory.
    pub chain_pem: String,
    pub key_pem: String,
    pub publicly_trusted: bool,
    pub warnings: Vec<String>,
}

/// Parses a PEM chain (leaf first) and a PEM private key.
pub fn parse_pem(
    chain_pem: &str,
    key_pem: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CoreError> {
    if chain_pem.len() > MAX_INPUT || key_pem.len() > MAX_INPUT {
        return Err(refuse(codes::PORTAL_CERT_MALFORMED, "input too large"));
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| {
            tracing::debug!(error = %e, "portal certificate chain refused");
            refuse(
                codes::PORTAL_CERT_MALFORMED,
                "the certificate chain is not valid PEM (CERTIFICATE blocks)",
            )
        })?;
    if chain.is_empty() {
        return Err(refuse(
            codes::PORTAL_CERT_MALFORMED,
            "certificate chain: no CERTIFICATE block found",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
        tracing::debug!(error = %e, "portal certificate key refused");
        refuse(
            codes::PORTAL_CERT_MALFORMED,
            "the private key is not a PEM PKCS#8, PKCS#1 or SEC1 key",
        )
    })?;
    Ok((chain, key))
}

/// Parses a PKCS#12 file (modern PBES2/AES or legacy 3DES/RC2) with its password.
pub fn parse_pkcs12(
    der: &[u8],
    password: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CoreError> {
    if der.len() > MAX_INPUT {
        return Err(refuse(codes::PORTAL_CERT_MALFORMED, "input too large"));
    }
    let store = p12_keystore::KeyStore::from_pkcs12(der, password).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => refuse(
            codes::PKCS12_BAD_PASSWORD,
            "the PKCS#12 password is wrong (integrity check failed)",
        ),
        other => {
            tracing::debug!(error = %other, "PKCS#12 upload refused");
            refuse(codes::PORTAL_CERT_MALFORMED, "not a readable PKCS#12 file")
        }
    })?;
    let Some((_, entry)) = store.private_key_chain() else {
        return Err(refuse(
            codes::PORTAL_CERT_MALFORMED,
            "the PKCS#12 file holds no private key with its certificate",
        ));
    };
    let chain: Vec<CertificateDer<'static>> = entry
        .chain()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    if chain.is_empty() {
        return Err(refuse(
            codes::PORTAL_CERT_MALFORMED,
            "the PKCS#12 file holds no certificate",
        ));
    }
    let key = PrivateKeyDer::Pkcs8(entry.key().to_vec().into());
    Ok((chain, key))
}

/// Reads a PEM bundle of trust anchors; unreadable entries are skipped.
pub fn anchors_from_pem(pem: &[u8]) -> Vec<TrustAnchor<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .filter_map(|c| {
            webpki::anchor_from_trusted_cert(&c)
                .ok()
                .map(|a| a.to_owned())
        })
        .collect()
}

/// The system's publicly trusted roots (empty when the bundle is missing).
pub fn public_roots() -> Vec<TrustAnchor<'static>> {
    let path = std::env::var("FERROCORE_PUBLIC_ROOTS").unwrap_or_else(|_| SYSTEM_ROOTS.into());
    match std::fs::read(&path) {
        Ok(pem) => anchors_from_pem(&pem),
        Err(e) => {
            tracing::warn!(path, error = %e, "cannot read the system trust store");
            Vec::new()
        }
    }
}

/// What [`validate`] checks against.
pub struct Checks<'a> {
    /// `server.hostnames`: every one must be covered (DNS or IP SAN, wildcards per RFC 6125).
    pub hostnames: &'a [String],
    /// Publicly trusted roots (the system store).
    pub public_roots: &'a [TrustAnchor<'static>],
    /// Private roots the server also accepts as the end of the chain (the local CAs).
    pub private_roots: &'a [TrustAnchor<'static>],
    /// Whether mutual authentication is enabled (a private root is then a warning).
    pub mutual_auth_enabled: bool,
    pub now: OffsetDateTime,
}

/// Validates a chain and key; see the module docs.
pub fn validate(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    checks: &Checks<'_>,
) -> Result<ValidIdentity, CoreError> {
    let provider = crate::tls::provider();
    // 1. The key parses and matches the leaf.
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| {
            tracing::debug!(error = %e, "portal certificate key refused");
            refuse(
                codes::PORTAL_CERT_MALFORMED,
                "the private key is malformed or of an unsupported type (ECDSA P-256/P-384, RSA, Ed25519)",
            )
        })?;
    let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(refuse(
                codes::PORTAL_CERT_KEY_MISMATCH,
                "the private key does not belong to the first certificate of the chain",
            ));
        }
        Err(e) => {
            tracing::debug!(error = %e, "portal certificate key check failed");
            return Err(refuse(
                codes::PORTAL_CERT_MALFORMED,
                "the key and the first certificate of the chain cannot be compared (unreadable public key)",
            ));
        }
    }
    let leaf_info = ferrocore_pki::cert_info(chain[0].as_ref()).map_err(|e| {
        tracing::debug!(error = %e, "portal certificate refused");
        refuse(
            codes::PORTAL_CERT_MALFORMED,
            "the first certificate of the chain is not a well-formed X.509 certificate",
        )
    })?;
    for (i, c) in chain.iter().enumerate().skip(1) {
        ferrocore_pki::cert_info(c.as_ref()).map_err(|e| {
            tracing::debug!(error = %e, "portal certificate chain refused");
            refuse(
                codes::PORTAL_CERT_MALFORMED,
                format!(
                    "certificate {} of the chain is not a well-formed X.509 certificate",
                    i + 1
                ),
            )
        })?;
    }
    if leaf_info.is_ca {
        return Err(refuse(
            codes::PORTAL_CERT_IS_CA,
            "the certificate is a CA certificate, not a server certificate: upload the server's own certificate first, then its chain",
        ));
    }
    // 2. Validity period (reported before chain problems: the clearest message first).
    if checks.now > leaf_info.not_after {
        return Err(refuse(
            codes::PORTAL_CERT_EXPIRED,
            format!(
                "the certificate expired at {}",
                fmt_time(leaf_info.not_after)
            ),
        ));
    }
    if checks.now < leaf_info.not_before {
        return Err(refuse(
            codes::PORTAL_CERT_NOT_YET_VALID,
            format!(
                "the certificate is not valid before {}",
                fmt_time(leaf_info.not_before)
            ),
        ));
    }
    // 3. The chain reaches a root: one it carries (self-signed), a public one or a local CA.
    let ee = webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| {
        tracing::debug!(error = ?e, "portal certificate refused");
        refuse(
            codes::PORTAL_CERT_MALFORMED,
            crate::tls::certificate_problem(&e, crate::tls::Usage::Server),
        )
    })?;
    let mut anchors: Vec<TrustAnchor<'static>> = checks.public_roots.to_vec();
    anchors.extend(checks.private_roots.iter().cloned());
    for c in &chain[1..] {
        if let Ok(info) = ferrocore_pki::cert_info(c.as_ref())
            && info.is_ca
            && info.subject == info.issuer
            && let Ok(a) = webpki::anchor_from_trusted_cert(c)
        {
            anchors.push(a.to_owned());
        }
    }
    let algs = provider.signature_verification_algorithms.all;
    let secs = u64::try_from(checks.now.unix_timestamp()).unwrap_or(0);
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    let verify = |anchors: &[TrustAnchor<'_>]| {
        ee.verify_for_usage(
            algs,
            anchors,
            &chain[1..],
            at,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
    };
    match verify(&anchors) {
        Ok(()) => {}
        Err(webpki::Error::UnknownIssuer) => {
            return Err(refuse(
                codes::PORTAL_CERT_CHAIN_INCOMPLETE,
                format!(
                    "the chain does not reach a root: no certificate of the upload issued {:?} \
                     (add the intermediate certificates after the leaf)",
                    leaf_issuer_of_gap(&chain)
                ),
            ));
        }
        Err(webpki::Error::CertExpired { .. }) => {
            return Err(refuse(
                codes::PORTAL_CERT_EXPIRED,
                "a certificate of the chain (an intermediate or the root) has expired",
            ));
        }
        Err(webpki::Error::CertNotValidYet { .. }) => {
            return Err(refuse(
                codes::PORTAL_CERT_NOT_YET_VALID,
                "a certificate of the chain is not valid yet",
            ));
        }
        Err(e @ webpki::Error::RequiredEkuNotFoundContext(_)) => {
            tracing::debug!(error = ?e, "portal certificate refused");
            return Err(refuse(
                codes::PORTAL_CERT_NOT_SERVER_AUTH,
                crate::tls::certificate_problem(&e, crate::tls::Usage::Server),
            ));
        }
        Err(webpki::Error::CaUsedAsEndEntity) => {
            return Err(refuse(
                codes::PORTAL_CERT_IS_CA,
                crate::tls::certificate_problem(
                    &webpki::Error::CaUsedAsEndEntity,
                    crate::tls::Usage::Server,
                ),
            ));
        }
        Err(e) => {
            tracing::debug!(error = ?e, "portal certificate chain refused");
            return Err(refuse(
                codes::PORTAL_CERT_CHAIN_INCOMPLETE,
                format!(
                    "the chain does not verify: {}",
                    crate::tls::certificate_problem(&e, crate::tls::Usage::Server)
                ),
            ));
        }
    }
    // 4. Every configured hostname is covered.
    for h in checks.hostnames {
        let covered = ServerName::try_from(h.as_str())
            .ok()
            .is_some_and(|name| ee.verify_is_valid_for_subject_name(&name).is_ok());
        if !covered {
            return Err(refuse(
                codes::PORTAL_CERT_HOSTNAME_NOT_COVERED,
                format!(
                    "server.hostnames entry {h:?} is not covered by the certificate \
                     (DNS names {:?}, IP addresses {:?})",
                    leaf_info.san_dns, leaf_info.san_ips
                ),
            ));
        }
    }
    // 5. Public trust: a warning only.
    let publicly_trusted = verify(checks.public_roots).is_ok();
    let mut warnings = Vec::new();
    if !publicly_trusted && checks.mutual_auth_enabled {
        warnings.push(
            "mutual authentication is enabled and this chain does not end at a publicly trusted \
             root: the spec requires a certificate from a well-known CA"
                .to_owned(),
        );
    }
    let chain_pem = chain
        .iter()
        .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.as_ref().to_vec())))
        .collect::<String>();
    let key_pem = key_to_pem(&key);
    Ok(ValidIdentity {
        chain,
        key,
        chain_pem,
        key_pem,
        publicly_trusted,
        warnings,
    })
}

fn leaf_issuer_of_gap(chain: &[CertificateDer<'_>]) -> String {
    let infos: Vec<_> = chain
        .iter()
        .filter_map(|c| ferrocore_pki::cert_info(c.as_ref()).ok())
        .collect();
    infos
        .iter()
        .find(|c| !infos.iter().any(|i| i.subject == c.issuer))
        .map(|c| c.issuer.clone())
        .unwrap_or_default()
}

fn key_to_pem(key: &PrivateKeyDer<'_>) -> String {
    let tag = match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    pem::encode(&pem::Pem::new(tag, key.secret_der().to_vec()))
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Facts about a served chain, for `portal-cert show`.
pub fn describe(
    chain_pem: &str,
    auto_issued: bool,
    public_roots: &[TrustAnchor<'static>],
    rollback_available: bool,
    now: OffsetDateTime,
) -> Result<PortalCert, CoreError> {
    let ders = ferrocore_pki::pem_to_der_certs(chain_pem).map_err(CoreError::internal)?;
    let leaf = ders
        .first()
        .ok_or_else(|| CoreError::internal("portal certificate chain is empty"))?;
    let info = ferrocore_pki::cert_info(leaf).map_err(CoreError::internal)?;
    let chain: Vec<CertificateDer<'static>> = ders
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let publicly_trusted = webpki::EndEntityCert::try_from(&chain[0])
        .map(|ee| {
            let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
            ee.verify_for_usage(
                crate::tls::provider().signature_verification_algorithms.all,
                public_roots,
                &chain[1..],
                UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs)),
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .is_ok()
        })
        .unwrap_or(false);
    Ok(PortalCert {
        source: if auto_issued {
            "auto-issued"
        } else {
            "uploaded"
        }
        .to_owned(),
        subject: info.subject,
        issuer: info.issuer,
        serial: info.serial_hex,
        not_before: info.not_before.unix_timestamp(),
        not_after: info.not_after.unix_timestamp(),
        dns_names: info.san_dns,
        ip_addresses: info.san_ips,
        chain_length: ders.len(),
        sha256: info.sha256_hex,
        publicly_trusted,
        warnings: Vec::new(),
        rollback_available,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocore_pki::LocalCa;

    fn anchor(ca: &LocalCa) -> TrustAnchor<'static> {
        webpki::anchor_from_trusted_cert(&CertificateDer::from(ca.cert_der().to_vec()))
            .unwrap()
            .to_owned()
    }

    struct Case {
        ca: LocalCa,
        chain_pem: String,
        key_pem: String,
    }

    fn issue(names: &[&str], issued_at: OffsetDateTime, days: i64) -> Case {
        let ca = LocalCa::generate("Unit Root", issued_at).unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let (cert, key_pem) = ca
            .issue_server(&names, time::Duration::days(days), issued_at)
            .unwrap();
        Case {
            chain_pem: format!("{}{}", cert.pem, ca.cert_pem()),
            key_pem,
            ca,
        }
    }

    fn check(
        case: &Case,
        key_pem: &str,
        hostnames: &[&str],
        public: bool,
        mutual: bool,
        now: OffsetDateTime,
    ) -> Result<ValidIdentity, CoreError> {
        let (chain, key) = parse_pem(&case.chain_pem, key_pem)?;
        let hostnames: Vec<String> = hostnames.iter().map(|s| s.to_string()).collect();
        let roots = vec![anchor(&case.ca)];
        let none = Vec::new();
        validate(
            chain,
            key,
            &Checks {
                hostnames: &hostnames,
                public_roots: if public { &roots } else { &none },
                private_roots: &none,
                mutual_auth_enabled: mutual,
                now,
            },
        )
    }

    fn code(r: Result<ValidIdentity, CoreError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn validation_errors_have_stable_codes() {
        let now = OffsetDateTime::now_utc();
        let good = issue(&["portal.example.test", "127.0.0.1"], now, 30);
        let other = issue(&["portal.example.test"], now, 30);
        let names = ["portal.example.test", "127.0.0.1"];
        assert_eq!(
            code(check(&good, &good.key_pem, &names, true, false, now)),
            "ok"
        );
        assert_eq!(
            code(check(&good, &other.key_pem, &names, true, false, now)),
            codes::PORTAL_CERT_KEY_MISMATCH
        );
        assert_eq!(
            code(check(
                &good,
                &good.key_pem,
                &names,
                true,
                false,
                now + time::Duration::days(31)
            )),
            codes::PORTAL_CERT_EXPIRED
        );
        assert_eq!(
            code(check(
                &good,
                &good.key_pem,
                &names,
                true,
                false,
                now - time::Duration::days(1)
            )),
            codes::PORTAL_CERT_NOT_YET_VALID
        );
        assert_eq!(
            code(check(
                &good,
                &good.key_pem,
                &["other.example.test"],
                true,
                false,
                now
            )),
            codes::PORTAL_CERT_HOSTNAME_NOT_COVERED
        );
        assert_eq!(
            code(check(
                &good,
                &good.key_pem,
                &["127.0.0.2"],
                true,
                false,
                now
            )),
            codes::PORTAL_CERT_HOSTNAME_NOT_COVERED
        );
        // Without the root in the chain and not trusted anywhere: incomplete.
        let leaf_only = Case {
            chain_pem: good
                .chain_pem
                .split_inclusive("-----END CERTIFICATE-----")
                .next()
                .unwrap()
                .to_owned(),
            key_pem: good.key_pem.clone(),
            ca: LocalCa::generate("Unrelated", now).unwrap(),
        };
        assert_eq!(
            code(check(&leaf_only, &good.key_pem, &names, false, false, now)),
            codes::PORTAL_CERT_CHAIN_INCOMPLETE
        );
        assert_eq!(
            code(parse_pem("not pem", &good.key_pem).map(|_| unreachable!())),
            codes::PORTAL_CERT_MALFORMED
        );
        assert_eq!(
            code(
                parse_pem(
                    &good.chain_pem,
                    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
                )
                .and_then(|(c, k)| validate(
                    c,
                    k,
                    &Checks {
                        hostnames: &[],
                        public_roots: &[],
                        private_roots: &[],
                        mutual_auth_enabled: false,
                        now
                    }
                ))
            ),
            codes::PORTAL_CERT_MALFORMED
        );
        assert_eq!(
            code(parse_pkcs12(b"garbage", "x").map(|_| unreachable!())),
            codes::PORTAL_CERT_MALFORMED
        );
    }

    #[test]
    fn public_trust_is_a_warning_only_with_mutual_auth() {
        let now = OffsetDateTime::now_utc();
        let c = issue(&["portal.example.test"], now, 30);
        let names = ["portal.example.test"];
        let v = check(&c, &c.key_pem, &names, false, true, now).unwrap();
        assert!(!v.publicly_trusted);
        assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
        let v = check(&c, &c.key_pem, &names, false, false, now).unwrap();
        assert!(v.warnings.is_empty());
        let v = check(&c, &c.key_pem, &names, true, true, now).unwrap();
        assert!(v.publicly_trusted);
        assert!(v.warnings.is_empty());
    }

    #[test]
    fn wildcards_cover_one_label() {
        let now = OffsetDateTime::now_utc();
        let Ok(ca) = LocalCa::generate("Wild Root", now) else {
            panic!("ca")
        };
        let (cert, key_pem) = ca
            .issue_server(
                &["*.example.test".to_owned()],
                time::Duration::days(30),
                now,
            )
            .unwrap();
        let c = Case {
            chain_pem: format!("{}{}", cert.pem, ca.cert_pem()),
            key_pem,
            ca,
        };
        assert_eq!(
            code(check(&c, &c.key_pem, &["a.example.test"], true, false, now)),
            "ok"
        );
        assert_eq!(
            code(check(
                &c,
                &c.key_pem,
                &["a.b.example.test"],
                true,
                false,
                now
            )),
            codes::PORTAL_CERT_HOSTNAME_NOT_COVERED
        );
        assert_eq!(
            code(check(&c, &c.key_pem, &["example.test"], true, false, now)),
            codes::PORTAL_CERT_HOSTNAME_NOT_COVERED
        );
    }
}
