//! OCSP (RFC 6960): the request parser ([`parse_ocsp_request`], exposed for fuzzing), the
//! per-CA delegated responder ([`OcspResponder`]: matches CertIDs against its CA, signs
//! `BasicOCSPResponse`s with its own P-256 key) and the unsigned error answers.
//!
//! Types come from `x509-ocsp` 0.2 (RustCrypto, `der` 0.7). Raw DER stays at the boundary:
//! the request's CertID is echoed as it was decoded, the nonce extension is copied byte for
//! byte, and the response is assembled around the `ResponseData` DER that aws-lc-rs signs.
//!
//! Hash algorithms accepted in CertIDs: SHA-1, SHA-256, SHA-384, SHA-512. A CertID with any
//! other hash cannot match one of our CAs and is answered `unknown`.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use der_07 as der;
use x509_cert_02 as x509_cert;

use der::asn1::{GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::CrlReason;
use x509_ocsp::{
    CertId, CertStatus, OcspGeneralizedTime, OcspRequest, ResponderId, ResponseData, RevokedInfo,
    SingleResponse, Version,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::der::tlv;
use crate::{PkiError, RevocationReason, serial_hex_from_bytes};

/// Largest OCSP request body accepted (a request for a few certificates is ~100 bytes).
pub const OCSP_REQUEST_MAX_BYTES: usize = 16 * 1024;
/// Most CertIDs answered in one request.
pub const OCSP_MAX_CERT_IDS: usize = 32;

const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const OID_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-basic
const OID_BASIC_DER: [u8; 11] = [
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01,
];
/// AlgorithmIdentifier ecdsa-with-SHA256 (parameters absent).
const ECDSA_SHA256_ALG_DER: [u8; 12] = [
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

/// CertID hash algorithms we can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl OcspHash {
    const ALL: [OcspHash; 4] = [
        OcspHash::Sha1,
        OcspHash::Sha256,
        OcspHash::Sha384,
        OcspHash::Sha512,
    ];
    fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Some(match *oid {
            OID_SHA1 => OcspHash::Sha1,
            OID_SHA256 => OcspHash::Sha256,
            OID_SHA384 => OcspHash::Sha384,
            OID_SHA512 => OcspHash::Sha512,
            _ => return None,
        })
    }
    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            OcspHash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            OcspHash::Sha256 => &digest::SHA256,
            OcspHash::Sha384 => &digest::SHA384,
            OcspHash::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// One certificate asked about.
#[derive(Debug, Clone)]
pub struct OcspCertRequest {
    /// The CertID as decoded (echoed in the answer).
    pub cert_id: CertId,
    /// `None` for a hash algorithm we do not support.
    pub hash: Option<OcspHash>,
    /// Canonical serial hex (the store's form).
    pub serial_hex: String,
}

/// A decoded OCSP request.
#[derive(Debug, Clone)]
pub struct ParsedOcspRequest {
    pub certs: Vec<OcspCertRequest>,
    /// The request's nonce extension, to be echoed unchanged.
    pub nonce: Option<Extension>,
}

fn malformed(reason: impl Into<String>) -> PkiError {
    PkiError::input("ocsp request", reason)
}

/// Decodes a DER `OCSPRequest`. Any decoding problem, trailing bytes, an empty request list
/// or more than [`OCSP_MAX_CERT_IDS`] CertIDs is an `invalid_input` error (answered with
/// `malformedRequest`). Request signatures are not required and not checked.
pub fn parse_ocsp_request(der: &[u8]) -> Result<ParsedOcspRequest, PkiError> {
    if der.len() > OCSP_REQUEST_MAX_BYTES {
        return Err(malformed(format!(
            "larger than {OCSP_REQUEST_MAX_BYTES} bytes"
        )));
    }
    let req = OcspRequest::from_der(der).map_err(|e| malformed(e.to_string()))?;
    let tbs = req.tbs_request;
    if tbs.request_list.is_empty() {
        return Err(malformed("no certificate requested"));
    }
    if tbs.request_list.len() > OCSP_MAX_CERT_IDS {
        return Err(malformed(format!(
            "more than {OCSP_MAX_CERT_IDS} certificates requested"
        )));
    }
    let nonce = tbs
        .request_extensions
        .as_ref()
        .and_then(|exts| exts.iter().find(|e| e.extn_id == OID_NONCE).cloned());
    if let Some(n) = &nonce
        && (n.extn_value.as_bytes().is_empty() || n.extn_value.as_bytes().len() > 128)
    {
        return Err(malformed("nonce must be 1 to 128 bytes"));
    }
    let certs = tbs
        .request_list
        .into_iter()
        .map(|r| {
            let id = r.req_cert;
            OcspCertRequest {
                hash: OcspHash::from_oid(&id.hash_algorithm.oid),
                serial_hex: serial_hex_from_bytes(id.serial_number.as_bytes()),
                cert_id: id,
            }
        })
        .collect();
    Ok(ParsedOcspRequest { certs, nonce })
}

/// What the responder says about one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspStatus {
    Good,
    Revoked {
        at: OffsetDateTime,
        reason: RevocationReason,
    },
    Unknown,
}

/// One answer to sign: the CertID as asked, its status and validity interval.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    pub cert_id: CertId,
    pub status: OcspStatus,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
}

/// `OCSPResponse` with status malformedRequest (1), unsigned.
pub fn malformed_request_response() -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, 0x01]
}

/// `OCSPResponse` with status unauthorized (6), unsigned: the request names a CA this
/// responder is not authoritative for (RFC 6960 2.3).
pub fn unauthorized_response() -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, 0x06]
}

/// `OCSPResponse` with status internalError (2), unsigned.
pub fn internal_error_response() -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, 0x02]
}

/// The delegated OCSP responder of one CA: the CA's name and key hashes (for matching
/// CertIDs) and the OCSP-signing certificate and key.
pub struct OcspResponder {
    /// `[name hash, key hash]` per [`OcspHash`].
    ca_hashes: [(Vec<u8>, Vec<u8>); 4],
    signer_cert_der: Vec<u8>,
    signer_not_after: OffsetDateTime,
    key: EcdsaKeyPair,
    responder_key_hash: Vec<u8>,
    rng: SystemRandom,
}

impl std::fmt::Debug for OcspResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspResponder")
            .field("responder_key_hash", &hex::encode(&self.responder_key_hash))
            .field("signer_not_after", &self.signer_not_after)
            .finish_non_exhaustive()
    }
}

fn parse_x509(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::InvalidCertificate {
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidCertificate {
            reason: "trailing bytes".into(),
        });
    }
    Ok(cert)
}

impl OcspResponder {
    /// Builds the responder of the CA `ca_cert_der` from its OCSP-signing certificate (DER,
    /// issued by that CA) and PKCS#8 P-256 key (PEM). Refuses a key that is not the
    /// certificate's (`key_mismatch`) and a certificate the CA did not issue.
    pub fn new(
        ca_cert_der: &[u8],
        signer_cert_der: &[u8],
        signer_key_pem: &str,
    ) -> Result<Self, PkiError> {
        let ca = parse_x509(ca_cert_der)?;
        let signer = parse_x509(signer_cert_der)?;
        if signer.issuer().as_raw() != ca.subject().as_raw()
            || signer.verify_signature(Some(ca.public_key())).is_err()
        {
            return Err(PkiError::InvalidCertificate {
                reason: "the OCSP signing certificate was not issued by this CA".into(),
            });
        }
        let name = ca.subject().as_raw();
        let key_bits = &ca.public_key().subject_public_key.data;
        let ca_hashes = OcspHash::ALL.map(|h| (h.digest(name), h.digest(key_bits)));
        let pem = pem::parse(signer_key_pem).map_err(|e| PkiError::InvalidKey {
            reason: e.to_string(),
        })?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pem.contents())
            .map_err(|e| PkiError::InvalidKey {
                reason: e.to_string(),
            })?;
        let signer_bits = &signer.public_key().subject_public_key.data;
        if key.public_key().as_ref() != signer_bits.as_ref() {
            return Err(PkiError::KeyMismatch);
        }
        Ok(OcspResponder {
            ca_hashes,
            responder_key_hash: OcspHash::Sha1.digest(signer_bits),
            signer_not_after: signer.validity().not_after.to_datetime(),
            signer_cert_der: signer_cert_der.to_vec(),
            key,
            rng: SystemRandom::new(),
        })
    }

    /// Whether a CertID names this responder's CA (issuer name and key hash).
    pub fn matches(&self, req: &OcspCertRequest) -> bool {
        let Some(h) = req.hash else {
            return false;
        };
        let (name, key) = &self.ca_hashes[h.index()];
        req.cert_id.issuer_name_hash.as_bytes() == name.as_slice()
            && req.cert_id.issuer_key_hash.as_bytes() == key.as_slice()
    }

    /// The OCSP-signing certificate's notAfter (re-issue before it).
    pub fn signer_not_after(&self) -> OffsetDateTime {
        self.signer_not_after
    }

    /// The OCSP-signing certificate, DER.
    pub fn signer_cert_der(&self) -> &[u8] {
        &self.signer_cert_der
    }

    /// Signs a successful `OCSPResponse` (basic) with these answers, the nonce echoed, the
    /// responder identified by key hash and its certificate included.
    pub fn sign(
        &self,
        answers: &[OcspAnswer],
        nonce: Option<&Extension>,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        let enc = |e: der::Error| PkiError::internal("encoding OCSP response", e);
        let responses = answers
            .iter()
            .map(|a| {
                Ok(SingleResponse {
                    cert_id: a.cert_id.clone(),
                    cert_status: match a.status {
                        OcspStatus::Good => CertStatus::Good(Null),
                        OcspStatus::Unknown => CertStatus::Unknown(Null),
                        OcspStatus::Revoked { at, reason } => CertStatus::Revoked(RevokedInfo {
                            revocation_time: gtime(at)?,
                            revocation_reason: Some(crl_reason(reason)),
                        }),
                    },
                    this_update: gtime(a.this_update)?,
                    next_update: a.next_update.map(gtime).transpose()?,
                    single_extensions: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let data = ResponseData {
            version: Version::V1,
            responder_id: ResponderId::ByKey(
                OctetString::new(self.responder_key_hash.clone()).map_err(enc)?,
            ),
            produced_at: gtime(now)?,
            responses,
            response_extensions: nonce.map(|n| vec![n.clone()]),
        };
        let tbs = data.to_der().map_err(enc)?;
        let sig = self
            .key
            .sign(&self.rng, &tbs)
            .map_err(|e| PkiError::internal("signing OCSP response", e))?;
        // BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm,
        //   signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate }
        let mut bits = Vec::with_capacity(sig.as_ref().len() + 1);
        bits.push(0);
        bits.extend_from_slice(sig.as_ref());
        let mut basic = tbs;
        basic.extend_from_slice(&ECDSA_SHA256_ALG_DER);
        basic.extend(tlv(0x03, &bits));
        basic.extend(tlv(0xa0, &tlv(0x30, &self.signer_cert_der)));
        let basic = tlv(0x30, &basic);
        // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED successful,
        //   responseBytes [0] EXPLICIT SEQUENCE { id-pkix-ocsp-basic, OCTET STRING } }
        let mut rb = OID_BASIC_DER.to_vec();
        rb.extend(tlv(0x04, &basic));
        let mut out = vec![0x0a, 0x01, 0x00];
        out.extend(tlv(0xa0, &tlv(0x30, &rb)));
        Ok(tlv(0x30, &out))
    }
}

fn gtime(t: OffsetDateTime) -> Result<OcspGeneralizedTime, PkiError> {
    let secs =
        u64::try_from(t.unix_timestamp()).map_err(|_| PkiError::input("time", "before 1970"))?;
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map(OcspGeneralizedTime)
        .map_err(|e| PkiError::internal("OCSP time", e))
}

fn crl_reason(r: RevocationReason) -> CrlReason {
    match r {
        RevocationReason::Unspecified => CrlReason::Unspecified,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
    }
}

/// DER of a request for tests and tools: one CertID for `serial` issued by `ca_cert_der`,
/// hashed with `hash`, with an optional nonce.
pub fn build_ocsp_request(
    ca_cert_der: &[u8],
    serial: &[u8],
    hash: OcspHash,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, PkiError> {
    let ca = parse_x509(ca_cert_der)?;
    let oid = match hash {
        OcspHash::Sha1 => OID_SHA1,
        OcspHash::Sha256 => OID_SHA256,
        OcspHash::Sha384 => OID_SHA384,
        OcspHash::Sha512 => OID_SHA512,
    };
    let enc = |e: der::Error| PkiError::internal("encoding OCSP request", e);
    let cert_id = CertId {
        hash_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
            oid,
            parameters: Some(Null.into()),
        },
        issuer_name_hash: OctetString::new(hash.digest(ca.subject().as_raw())).map_err(enc)?,
        issuer_key_hash: OctetString::new(hash.digest(&ca.public_key().subject_public_key.data))
            .map_err(enc)?,
        serial_number: x509_cert::serial_number::SerialNumber::new(serial).map_err(enc)?,
    };
    let request_extensions = match nonce {
        Some(n) => Some(vec![Extension {
            extn_id: OID_NONCE,
            critical: false,
            extn_value: OctetString::new(
                OctetString::new(n.to_vec())
                    .map_err(enc)?
                    .to_der()
                    .map_err(enc)?,
            )
            .map_err(enc)?,
        }]),
        None => None,
    };
    let req = OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    };
    req.to_der().map_err(enc)
}
