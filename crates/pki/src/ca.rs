//! The local issuing CA ([`LocalCa`]): generation and loading, and issuance of
//! client identity certificates (from verified CSRs) and TLS server
//! certificates.
//!
//! Client certificate profile (what other crates can rely on):
//! - serial: 16 random bytes, first byte in `0x40..=0x7f` (positive, never
//!   shortened), so `serial_hex` is always 32 lowercase hex digits;
//! - subject: `CN=<username>, O=Ferrocore device, serialNumber=<device uuid>`
//!   (uuid lowercased, PrintableString);
//! - SAN: URI `urn:uuid:<device uuid>`, plus rfc822Name (email) and otherName
//!   UPN (1.3.6.1.4.1.311.20.2.3, UTF8String) when given;
//! - basicConstraints CA:false (critical), keyUsage digitalSignature
//!   (+keyEncipherment for RSA keys), EKU clientAuth only, AKI, SKI,
//!   CRL distribution point and AIA/OCSP when configured;
//! - validity: `now - 5 min ..= min(now + lifetime, CA notAfter)`.

use std::net::IpAddr;

use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    OtherNameValue, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::ParsedExtension;

use crate::info::{cert_info, parse_cert, pem_to_der_certs};
use crate::{PkiError, VerifiedCsr};

const OID_SUBJECT_SERIAL_NUMBER: [u64; 4] = [2, 5, 4, 5];
const OID_UPN: [u64; 10] = [1, 3, 6, 1, 4, 1, 311, 20, 2, 3];
const OID_AIA: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1): relying parties do not check the responder.
const OID_OCSP_NOCHECK: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 5];

/// Client certificate contents requested by the server for one device/user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientProfile {
    /// Device UUID (canonical 8-4-4-4-12 hex): SAN URI `urn:uuid:<uuid>` and subject serialNumber.
    pub device_uuid: String,
    /// Subject CN (1..=64 characters).
    pub username: String,
    /// SAN rfc822Name when present (ASCII).
    pub email: Option<String>,
    /// SAN otherName UPN when present.
    pub upn: Option<String>,
    /// notAfter = now + lifetime (clamped to the CA's notAfter).
    pub lifetime: Duration,
    /// CRL distribution point URL (http/https/ldap).
    pub crl_url: Option<String>,
    /// OCSP responder URL for the AIA extension.
    pub ocsp_url: Option<String>,
}

/// A freshly issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub der: Vec<u8>,
    pub pem: String,
    /// Canonical serial hex, identical to `cert_info(&der).serial_hex`.
    pub serial_hex: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Subject DN as rendered by [`crate::cert_info`].
    pub subject: String,
}

/// An issuing CA: certificate plus signing key (ECDSA P-256 when generated here).
pub struct LocalCa {
    cert_der: Vec<u8>,
    pub(crate) issuer: Issuer<'static, KeyPair>,
    pub(crate) ski: Vec<u8>,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("ski", &hex::encode(&self.ski))
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

pub(crate) fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|e| PkiError::internal("random serial", e))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn pem_encode(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

fn issued(der: Vec<u8>) -> Result<IssuedCert, PkiError> {
    let info = cert_info(&der)?;
    Ok(IssuedCert {
        pem: pem_encode("CERTIFICATE", &der),
        serial_hex: info.serial_hex,
        not_before: info.not_before,
        not_after: info.not_after,
        subject: info.subject,
        der,
    })
}

fn check_text(field: &'static str, value: &str, max_chars: usize) -> Result<(), PkiError> {
    let n = value.chars().count();
    if n == 0 || n > max_chars {
        return Err(PkiError::input(
            field,
            format!("length must be 1..={max_chars}"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(PkiError::input(field, "contains control characters"));
    }
    Ok(())
}

fn ia5(field: &'static str, value: &str) -> Result<Ia5String, PkiError> {
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(PkiError::input(
            field,
            "must be printable ASCII without spaces",
        ));
    }
    Ia5String::try_from(value).map_err(|e| PkiError::input(field, e.to_string()))
}

fn check_url(field: &'static str, url: &str) -> Result<Ia5String, PkiError> {
    check_text(field, url, 2048)?;
    let lower = url.to_ascii_lowercase();
    if !["http://", "https://", "ldap://"]
        .iter()
        .any(|p| lower.starts_with(p) && lower.len() > p.len())
    {
        return Err(PkiError::input(field, "must be an http, https or ldap URL"));
    }
    ia5(field, url)
}

/// Validate and lowercase a canonical 8-4-4-4-12 UUID.
fn canonical_uuid(value: &str) -> Result<String, PkiError> {
    let ok = value.len() == 36
        && value.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if !ok {
        return Err(PkiError::input("device_uuid", "not a canonical UUID"));
    }
    Ok(value.to_ascii_lowercase())
}

fn check_hostname(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let body = name.strip_prefix("*.").unwrap_or(name);
    let valid = !body.is_empty()
        && name.len() <= 253
        && body.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(PkiError::input(
            "hostname",
            format!("not a DNS name or IP: {name:?}"),
        ));
    }
    Ok(SanType::DnsName(ia5(
        "hostname",
        &name.to_ascii_lowercase(),
    )?))
}

impl LocalCa {
    /// New self-signed CA: ECDSA P-256, `CN=<common_name>, O=Ferrocore`,
    /// valid `now - 1h .. now + 3653 days`, basicConstraints CA:true pathlen 0
    /// (critical), keyUsage keyCertSign + cRLSign, SKI, random serial.
    pub fn generate(common_name: &str, now: OffsetDateTime) -> Result<Self, PkiError> {
        check_text("common_name", common_name, 64)?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::internal("generating CA key", e))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "Ferrocore");
        params.distinguished_name = dn;
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(3653);
        params.serial_number = Some(random_serial()?);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params
            .self_signed(&key)
            .map_err(|e| PkiError::internal("self-signing CA", e))?;
        Self::from_parts(cert.der().to_vec(), key)
    }

    /// Load a CA from its certificate PEM (first CERTIFICATE block) and
    /// PKCS#8 private key PEM. Refuses a non-CA certificate (`invalid_certificate`)
    /// and a key that does not match the certificate (`key_mismatch`).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let cert_der = pem_to_der_certs(cert_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| PkiError::InvalidCertificate {
                reason: "no certificate".into(),
            })?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::InvalidKey {
            reason: e.to_string(),
        })?;
        Self::from_parts(cert_der, key)
    }

    fn from_parts(cert_der: Vec<u8>, key: KeyPair) -> Result<Self, PkiError> {
        use rcgen::PublicKeyData;
        let invalid = |reason: String| PkiError::InvalidCertificate { reason };
        let cert = parse_cert(&cert_der)?;
        let is_ca = cert
            .basic_constraints()
            .map_err(|e| invalid(format!("bad basicConstraints: {e}")))?
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(invalid("certificate is not a CA (basicConstraints)".into()));
        }
        if key.subject_public_key_info() != cert.public_key().raw {
            return Err(PkiError::KeyMismatch);
        }
        let ski = cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            })
            .unwrap_or_else(|| {
                // Same derivation rcgen falls back to for the AKI of issued certs.
                let d =
                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.public_key().raw);
                d.as_ref()[..20].to_vec()
            });
        let not_after = cert.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), key)
            .map_err(|e| invalid(format!("unusable as issuer: {e}")))?;
        Ok(LocalCa {
            cert_der,
            issuer,
            ski,
            not_after,
        })
    }

    /// CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.cert_der)
    }

    /// CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// CA private key, PKCS#8 PEM (`PRIVATE KEY`). Secret: store with
    /// [`crate::write_secret_file`].
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The CA's subject key identifier (also the AKI of everything it issues).
    pub fn key_id(&self) -> &[u8] {
        &self.ski
    }

    /// The CA certificate's notAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    fn leaf_params(
        &self,
        lifetime: Duration,
        now: OffsetDateTime,
    ) -> Result<CertificateParams, PkiError> {
        if lifetime <= Duration::ZERO {
            return Err(PkiError::input("lifetime", "must be positive"));
        }
        let not_after = (now + lifetime).min(self.not_after);
        if not_after <= now {
            return Err(PkiError::input("lifetime", "CA certificate has expired"));
        }
        let mut params = CertificateParams::default();
        params.not_before = now - Duration::minutes(5);
        params.not_after = not_after;
        params.serial_number = Some(random_serial()?);
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }

    /// Issue a client identity certificate for a verified CSR (see the module
    /// docs for the exact profile).
    pub fn issue_client(
        &self,
        csr: &VerifiedCsr,
        profile: &ClientProfile,
        now: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        let uuid = canonical_uuid(&profile.device_uuid)?;
        check_text("username", &profile.username, 64)?;
        let mut params = self.leaf_params(profile.lifetime, now)?;

        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, profile.username.as_str());
        dn.push(DnType::OrganizationName, "Ferrocore device");
        let uuid_ps = PrintableString::try_from(uuid.as_str())
            .map_err(|e| PkiError::input("device_uuid", e.to_string()))?;
        dn.push(
            DnType::CustomDnType(OID_SUBJECT_SERIAL_NUMBER.to_vec()),
            DnValue::PrintableString(uuid_ps),
        );
        params.distinguished_name = dn;

        params.subject_alt_names.push(SanType::URI(ia5(
            "device_uuid",
            &format!("urn:uuid:{uuid}"),
        )?));
        if let Some(email) = &profile.email {
            check_text("email", email, 254)?;
            if !email.contains('@') {
                return Err(PkiError::input("email", "missing '@'"));
            }
            params
                .subject_alt_names
                .push(SanType::Rfc822Name(ia5("email", email)?));
        }
        if let Some(upn) = &profile.upn {
            check_text("upn", upn, 256)?;
            params.subject_alt_names.push(SanType::OtherName((
                OID_UPN.to_vec(),
                OtherNameValue::Utf8String(upn.clone()),
            )));
        }

        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if csr.key_algorithm().is_rsa() {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if let Some(url) = &profile.crl_url {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![check_url("crl_url", url)?.as_str().to_owned()],
            }];
        }
        if let Some(url) = &profile.ocsp_url {
            let url = check_url("ocsp_url", url)?;
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &OID_AIA,
                    crate::der::aia_ocsp(url.as_str()),
                ));
        }

        let spki = rcgen::SubjectPublicKeyInfo::from_der(csr.spki_der()).map_err(|e| {
            PkiError::UnsupportedKey {
                reason: e.to_string(),
            }
        })?;
        let cert = params
            .signed_by(&spki, &self.issuer)
            .map_err(|e| PkiError::internal("signing client certificate", e))?;
        issued(cert.der().to_vec())
    }

    /// Issue the CA's delegated OCSP-signing certificate with a fresh P-256 key:
    /// `CN=<CA CN> OCSP Responder, O=Ferrocore`, keyUsage digitalSignature, EKU
    /// OCSPSigning only, id-pkix-ocsp-nocheck, AKI. Returns the certificate and the key
    /// as PKCS#8 PEM (secret: store with [`crate::write_secret_file`]).
    pub fn issue_ocsp_signer(
        &self,
        lifetime: Duration,
        now: OffsetDateTime,
    ) -> Result<(IssuedCert, String), PkiError> {
        let mut params = self.leaf_params(lifetime, now)?;
        let ca = parse_cert(&self.cert_der)?;
        let ca_cn = ca
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("Ferrocore CA")
            .to_owned();
        let mut dn = DistinguishedName::new();
        let cn: String = format!("{ca_cn} OCSP Responder").chars().take(64).collect();
        dn.push(DnType::CommonName, cn);
        dn.push(DnType::OrganizationName, "Ferrocore");
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &OID_OCSP_NOCHECK,
                vec![0x05, 0x00],
            ));
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::internal("generating OCSP signing key", e))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| PkiError::internal("signing OCSP signing certificate", e))?;
        Ok((issued(cert.der().to_vec())?, key.serialize_pem()))
    }

    /// Issue a TLS server certificate for `hostnames` (DNS names, `*.` wildcards
    /// or IP addresses; the first is also the subject CN) with a fresh P-256
    /// key. Returns the certificate and the key as PKCS#8 PEM.
    pub fn issue_server(
        &self,
        hostnames: &[String],
        lifetime: Duration,
        now: OffsetDateTime,
    ) -> Result<(IssuedCert, String), PkiError> {
        let first = hostnames
            .first()
            .ok_or_else(|| PkiError::input("hostnames", "at least one is required"))?;
        if hostnames.len() > 100 {
            return Err(PkiError::input("hostnames", "too many"));
        }
        let mut params = self.leaf_params(lifetime, now)?;
        params.subject_alt_names = hostnames
            .iter()
            .map(|h| check_hostname(h))
            .collect::<Result<_, _>>()?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, first.as_str());
        dn.push(DnType::OrganizationName, "Ferrocore");
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::internal("generating server key", e))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| PkiError::internal("signing server certificate", e))?;
        Ok((issued(cert.der().to_vec())?, key.serialize_pem()))
    }

    /// Issue the SCEP RA certificate for an RSA public key (SubjectPublicKeyInfo
    /// DER): subject `CN=<common_name>, O=Ferrocore`, keyUsage digitalSignature
    /// + keyEncipherment (it decrypts requests and signs replies), no EKU.
    pub fn issue_ra(
        &self,
        spki_der: &[u8],
        common_name: &str,
        lifetime: Duration,
        now: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        check_text("common_name", common_name, 64)?;
        let mut params = self.leaf_params(lifetime, now)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "Ferrocore");
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let spki = rcgen::SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| {
            PkiError::UnsupportedKey {
                reason: e.to_string(),
            }
        })?;
        let cert = params
            .signed_by(&spki, &self.issuer)
            .map_err(|e| PkiError::internal("signing RA certificate", e))?;
        issued(cert.der().to_vec())
    }
}
