//! Reading certificates: [`cert_info`] facts about any DER certificate, the
//! canonical serial-number hex form, and PEM bundle splitting.

use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::PkiError;

/// Facts about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Canonical serial: lowercase hex of the unsigned big-endian value, no
    /// leading zero bytes (`"00"` for zero). Same form as [`crate::IssuedCert::serial_hex`].
    pub serial_hex: String,
    /// Subject DN, RFC 4514-like (`CN=alice, O=Ferrocore device, ...`).
    pub subject: String,
    /// Issuer DN, same format.
    pub issuer: String,
    /// First subject commonName, when present.
    pub subject_cn: Option<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Lowercase hex SHA-256 of the SubjectPublicKeyInfo DER.
    pub spki_sha256_hex: String,
    /// Lowercase hex SHA-256 of the whole certificate DER.
    pub sha256_hex: String,
    /// Whether basicConstraints says CA:true.
    pub is_ca: bool,
    /// SAN uniformResourceIdentifier entries.
    pub san_uris: Vec<String>,
    /// SAN dNSName entries.
    pub san_dns: Vec<String>,
    /// SAN rfc822Name entries.
    pub san_emails: Vec<String>,
    /// SAN iPAddress entries, formatted.
    pub san_ips: Vec<String>,
}

/// Canonical hex form of a serial given as big-endian bytes (signed DER content
/// or unsigned): leading zero bytes are stripped, lowercase, `"00"` for zero.
pub fn serial_hex_from_bytes(bytes: &[u8]) -> String {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = &bytes[skip..];
    if significant.is_empty() {
        "00".to_owned()
    } else {
        hex::encode(significant)
    }
}

fn invalid(reason: impl Into<String>) -> PkiError {
    PkiError::InvalidCertificate {
        reason: reason.into(),
    }
}

pub(crate) fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| invalid(format!("cannot parse: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid("trailing bytes after the certificate"));
    }
    Ok(cert)
}

/// SHA-256 of `bytes`, lowercase hex: the project's one digest-to-hex helper.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

/// The issuer and subject Names of a DER certificate, as encoded (DER).
pub fn cert_names_der(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    let cert = parse_cert(der)?;
    Ok((
        cert.issuer().as_raw().to_vec(),
        cert.subject().as_raw().to_vec(),
    ))
}

/// Facts about a DER certificate. Does not verify anything beyond structure.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, PkiError> {
    let cert = parse_cert(der)?;
    let is_ca = cert
        .basic_constraints()
        .map_err(|e| invalid(format!("bad basicConstraints: {e}")))?
        .is_some_and(|bc| bc.value.ca);
    let mut info = CertInfo {
        serial_hex: serial_hex_from_bytes(&cert.serial.to_bytes_be()),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        subject_cn: cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        spki_sha256_hex: sha256_hex(cert.public_key().raw),
        sha256_hex: sha256_hex(der),
        is_ca,
        san_uris: Vec::new(),
        san_dns: Vec::new(),
        san_emails: Vec::new(),
        san_ips: Vec::new(),
    };
    let san = cert
        .subject_alternative_name()
        .map_err(|e| invalid(format!("bad subjectAltName: {e}")))?;
    for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
        match name {
            GeneralName::URI(u) => info.san_uris.push((*u).to_owned()),
            GeneralName::DNSName(d) => info.san_dns.push((*d).to_owned()),
            GeneralName::RFC822Name(e) => info.san_emails.push((*e).to_owned()),
            GeneralName::IPAddress(ip) => info.san_ips.push(format_ip(ip)),
            _ => {}
        }
    }
    Ok(info)
}

fn format_ip(raw: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(raw) {
        std::net::Ipv4Addr::from(v4).to_string()
    } else if let Ok(v6) = <[u8; 16]>::try_from(raw) {
        std::net::Ipv6Addr::from(v6).to_string()
    } else {
        hex::encode(raw)
    }
}

/// All `CERTIFICATE` blocks of a PEM bundle, as DER, in order. Other blocks
/// (keys, CRLs) are skipped. Errors (`invalid_certificate`) when the PEM is
/// malformed or holds no certificate.
pub fn pem_to_der_certs(pem: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    let blocks = pem::parse_many(pem).map_err(|e| invalid(format!("bad PEM: {e}")))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect();
    if certs.is_empty() {
        return Err(invalid("no CERTIFICATE block in PEM"));
    }
    Ok(certs)
}

/// The subjectKeyIdentifier extension's key identifier, when present.
pub(crate) fn subject_key_id(der: &[u8]) -> Option<Vec<u8>> {
    let cert = parse_cert(der).ok()?;
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}
