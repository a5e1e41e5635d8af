//! PKCS#10 CSR intake: decoding (PEM or DER, size-capped), key policy
//! (P-256/P-384 EC, RSA >= 2048), and self-signature verification with
//! aws-lc-rs. SHA-1 and unknown signature algorithms are refused. Requested
//! extensions are ignored: the CA sets its own.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::PkiError;

/// Largest CSR (PEM or DER) accepted by [`parse_csr`].
pub const CSR_MAX_BYTES: usize = 64 * 1024;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// Public key type of a verified CSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// RSA with the given modulus size in bits (>= 2048).
    Rsa { bits: usize },
}

impl KeyAlgorithm {
    /// Whether this is an RSA key (gets keyEncipherment in issued certificates).
    pub fn is_rsa(&self) -> bool {
        matches!(self, KeyAlgorithm::Rsa { .. })
    }
}

/// A CSR whose encoding, key and self-signature have been checked.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    der: Vec<u8>,
    spki_der: Vec<u8>,
    key_algorithm: KeyAlgorithm,
    subject_cn: Option<String>,
    subject_serial_number: Option<String>,
    subject_der: Vec<u8>,
    challenge_password: Option<String>,
}

impl VerifiedCsr {
    /// The full CSR, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The requester's SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
    /// Lowercase hex SHA-256 of the SubjectPublicKeyInfo DER.
    pub fn spki_sha256_hex(&self) -> String {
        crate::sha256_hex(&self.spki_der)
    }
    /// The first subject commonName, when present and a string.
    pub fn subject_cn(&self) -> Option<String> {
        self.subject_cn.clone()
    }
    /// The first subject serialNumber (2.5.4.5), when present and a string.
    pub fn subject_serial_number(&self) -> Option<String> {
        self.subject_serial_number.clone()
    }
    /// The public key type.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.key_algorithm
    }
    /// The subject Name, DER (compared with the subject of a certificate an external CA
    /// issued for this request).
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }
    /// The PKCS#9 challengePassword attribute, when the request carries one.
    pub fn challenge_password(&self) -> Option<&str> {
        self.challenge_password.as_deref()
    }
}

fn invalid(reason: impl Into<String>) -> PkiError {
    PkiError::InvalidCsr {
        reason: reason.into(),
    }
}

/// What is wrong with a PEM block, in words (not the parser's type names).
fn pem_problem(e: &pem::PemError) -> &'static str {
    match e {
        pem::PemError::MismatchedTags(..) => "BEGIN and END labels differ",
        pem::PemError::MissingBeginTag | pem::PemError::MissingEndTag => {
            "missing BEGIN or END line"
        }
        pem::PemError::InvalidData(_) => "the content is not base64",
        _ => "malformed block",
    }
}

/// Decode PEM (`CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`) or DER input.
fn decode(input: &[u8]) -> Result<Vec<u8>, PkiError> {
    if input.len() > CSR_MAX_BYTES {
        return Err(invalid(format!("larger than {CSR_MAX_BYTES} bytes")));
    }
    let trimmed = input.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let pem = pem::parse(trimmed)
            .map_err(|e| invalid(format!("not valid PEM ({})", pem_problem(&e))))?;
        match pem.tag() {
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Ok(pem.into_contents()),
            other => Err(invalid(format!(
                "unexpected PEM label {:?} (CERTIFICATE REQUEST expected)",
                other.chars().take(40).collect::<String>()
            ))),
        }
    } else {
        Ok(input.to_vec())
    }
}

/// Parse a PEM or DER PKCS#10 CSR, apply the key policy and verify its
/// self-signature.
///
/// Error codes: `invalid_csr` (encoding), `unsupported_key`,
/// `unsupported_signature` (SHA-1, unknown, or not matching the key type),
/// `csr_signature` (signature does not verify).
pub fn parse_csr(input: &[u8]) -> Result<VerifiedCsr, PkiError> {
    let der = decode(input)?;
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|_| invalid("not a DER or PEM PKCS#10 certificate signing request"))?;
    if !rest.is_empty() {
        return Err(invalid("trailing bytes after the request"));
    }
    let info = &csr.certification_request_info;
    if info.version.0 != 0 {
        return Err(invalid(format!("unsupported version {}", info.version.0)));
    }
    let spki = &info.subject_pki;
    let key_algorithm = key_policy(spki)?;
    let verifier = verification_algorithm(&csr, key_algorithm)?;
    if csr.signature_value.unused_bits != 0 {
        return Err(PkiError::CsrSignature {
            reason: "signature bit string has unused bits".into(),
        });
    }
    UnparsedPublicKey::new(verifier, &*spki.subject_public_key.data)
        .verify(info.raw, &csr.signature_value.data)
        .map_err(|_| PkiError::CsrSignature {
            reason: "self-signature is invalid".into(),
        })?;
    // rcgen must be able to re-encode this key when issuing.
    rcgen::SubjectPublicKeyInfo::from_der(spki.raw).map_err(|_| PkiError::UnsupportedKey {
        reason: "the public key cannot be used for issuance".into(),
    })?;
    let subject_cn = info
        .subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let subject_serial_number = info
        .subject
        .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned);
    let challenge_password = info
        .iter_attributes()
        .find_map(|a| match a.parsed_attribute() {
            x509_parser::cri_attributes::ParsedCriAttribute::ChallengePassword(p) => {
                Some(p.0.clone())
            }
            _ => None,
        });
    Ok(VerifiedCsr {
        subject_serial_number,
        spki_der: spki.raw.to_vec(),
        key_algorithm,
        subject_cn,
        subject_der: info.subject.as_raw().to_vec(),
        challenge_password,
        der,
    })
}

fn key_policy(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> Result<KeyAlgorithm, PkiError> {
    let unsupported = |reason: String| PkiError::UnsupportedKey { reason };
    match spki.algorithm.algorithm.to_id_string().as_str() {
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string())
                .ok_or_else(|| unsupported("EC key without a named curve".into()))?;
            let (alg, point_len) = match curve.as_str() {
                OID_P256 => (KeyAlgorithm::EcP256, 65),
                OID_P384 => (KeyAlgorithm::EcP384, 97),
                other => return Err(unsupported(format!("EC curve {other} not accepted"))),
            };
            let point = &spki.subject_public_key.data;
            if point.len() != point_len || point.first() != Some(&0x04) {
                return Err(unsupported("EC point is not an uncompressed point".into()));
            }
            Ok(alg)
        }
        OID_RSA_ENCRYPTION => match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => {
                let bits = rsa.key_size();
                if !(2048..=8192).contains(&bits) {
                    return Err(unsupported(format!(
                        "RSA-{bits} not accepted (2048..=8192)"
                    )));
                }
                Ok(KeyAlgorithm::Rsa { bits })
            }
            _ => Err(unsupported("malformed RSA public key".into())),
        },
        other => Err(unsupported(format!("key algorithm {other} not accepted"))),
    }
}

fn verification_algorithm(
    csr: &X509CertificationRequest<'_>,
    key: KeyAlgorithm,
) -> Result<&'static dyn VerificationAlgorithm, PkiError> {
    let oid = csr.signature_algorithm.algorithm.to_id_string();
    let alg: &'static dyn VerificationAlgorithm = match (oid.as_str(), key) {
        ("1.2.840.10045.4.3.2", KeyAlgorithm::EcP256) => &signature::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", KeyAlgorithm::EcP256) => &signature::ECDSA_P256_SHA384_ASN1,
        ("1.2.840.10045.4.3.4", KeyAlgorithm::EcP256) => &signature::ECDSA_P256_SHA512_ASN1,
        ("1.2.840.10045.4.3.2", KeyAlgorithm::EcP384) => &signature::ECDSA_P384_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", KeyAlgorithm::EcP384) => &signature::ECDSA_P384_SHA384_ASN1,
        ("1.2.840.10045.4.3.4", KeyAlgorithm::EcP384) => &signature::ECDSA_P384_SHA512_ASN1,
        ("1.2.840.113549.1.1.11", KeyAlgorithm::Rsa { .. }) => {
            &signature::RSA_PKCS1_2048_8192_SHA256
        }
        ("1.2.840.113549.1.1.12", KeyAlgorithm::Rsa { .. }) => {
            &signature::RSA_PKCS1_2048_8192_SHA384
        }
        ("1.2.840.113549.1.1.13", KeyAlgorithm::Rsa { .. }) => {
            &signature::RSA_PKCS1_2048_8192_SHA512
        }
        (other, _) => {
            let name = match other {
                "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => "sha1WithRSAEncryption",
                "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
                "1.2.840.10040.4.3" => "dsa-with-sha1",
                _ => other,
            };
            return Err(PkiError::UnsupportedSignature {
                algorithm: format!("{name} with {key:?} key"),
            });
        }
    };
    Ok(alg)
}
