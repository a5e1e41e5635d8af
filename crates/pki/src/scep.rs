//! SCEP (RFC 8894) messages in both directions, on top of [`crate::cms`].
//!
//! Server side:
//! - [`parse_request`]`(der, &RaKey) -> Result<PkiMessage, ScepError>`: verifies
//!   the signer (signature over the signed attributes, messageDigest), reads
//!   messageType / transactionID / senderNonce and decrypts the
//!   pkcsPKIEnvelope with the RA key. The transactionID is taken in any string type and
//!   kept as sent ([`ReplyTo::transaction_id_der`]), so a CertRep can be built for every
//!   request accepted here. [`ScepError::Malformed`] means there is
//!   nothing to answer with a CertRep (answer with an HTTP error);
//!   [`ScepError::Refused`] carries what a FAILURE CertRep needs ([`ReplyTo`]).
//! - [`build_cert_rep`]`(&RaKey, &ReplyTo, CertRepBody, cipher)`: SUCCESS with a
//!   certs-only SignedData encrypted to the requester's signer certificate,
//!   FAILURE with failInfo, or PENDING; signed by the RA; the transactionID echoed byte
//!   for byte.
//! - [`csr_challenge_password`], [`parse_issuer_and_subject`] (GetCertInitial content),
//!   [`parse_issuer_and_serial`] (GetCert / GetCRL content; a GetCRL answer is
//!   [`CertRepBody::Crl`]).
//!
//! Client side:
//! - [`build_pkcs_req`]`(&ClientRequest) -> (der, sender_nonce)`: PKCSReq or
//!   RenewalReq (CSR enveloped to the CA/RA certificate, signed with the
//!   requester's certificate and RSA key: self-signed for a first enrollment,
//!   the current certificate for renewal); [`build_get_cert_initial`] for polling.
//! - [`parse_cert_rep`]`(der, our cert, our key, transaction, RA certs, nonce) -> CertRep`.
//! - [`parse_get_ca_cert`] (`application/x-x509-ca-cert` single DER or
//!   `application/x-x509-ca-ra-cert` certs-only) and [`CaCaps::parse`].
//! - Helpers: [`self_signed_rsa`] (the throw-away signer certificate of a
//!   first enrollment), [`rsa_csr`] (a PKCS#10 request with a challengePassword),
//!   [`transaction_id_for`].
//!
//! Digests: SHA-1, SHA-256 and SHA-512 are accepted from peers; replies and
//! requests are signed with SHA-256 (or SHA-512 when the peer used it).
//! Ciphers: AES-128/192/256-CBC and DES-EDE3-CBC are accepted; the caller
//! chooses the reply cipher (the server answers with AES).

use der::asn1::{OctetString, PrintableString};
use der::{Any, Decode, Encode};
use time::OffsetDateTime;

use crate::PkiError;
use crate::cms::{self, ContentCipher, DigestAlg, RsaKey, SignedAttr};

/// Largest PKIOperation message accepted (DER).
pub const SCEP_MAX_BYTES: usize = cms::CMS_MAX_BYTES;

const OID_MESSAGE_TYPE: &str = "2.16.840.1.113733.1.9.2";
const OID_PKI_STATUS: &str = "2.16.840.1.113733.1.9.3";
const OID_FAIL_INFO: &str = "2.16.840.1.113733.1.9.4";
const OID_SENDER_NONCE: &str = "2.16.840.1.113733.1.9.5";
const OID_RECIPIENT_NONCE: &str = "2.16.840.1.113733.1.9.6";
const OID_TRANSACTION_ID: &str = "2.16.840.1.113733.1.9.7";
const OID_CHALLENGE_PASSWORD: &[u64] = &[1, 2, 840, 113549, 1, 9, 7];

/// SCEP messageType.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    CertRep,
    RenewalReq,
    PkcsReq,
    CertPoll,
    GetCert,
    GetCrl,
}

impl MessageType {
    pub fn number(self) -> u8 {
        match self {
            MessageType::CertRep => 3,
            MessageType::RenewalReq => 17,
            MessageType::PkcsReq => 19,
            MessageType::CertPoll => 20,
            MessageType::GetCert => 21,
            MessageType::GetCrl => 22,
        }
    }

    fn from_number(n: &str) -> Option<Self> {
        Some(match n {
            "3" => MessageType::CertRep,
            "17" => MessageType::RenewalReq,
            "19" => MessageType::PkcsReq,
            "20" => MessageType::CertPoll,
            "21" => MessageType::GetCert,
            "22" => MessageType::GetCrl,
            _ => return None,
        })
    }
}

/// SCEP pkiStatus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkiStatus {
    Success,
    Failure,
    Pending,
}

/// SCEP failInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailInfo {
    BadAlg,
    BadMessageCheck,
    BadRequest,
    BadTime,
    BadCertId,
}

impl FailInfo {
    pub fn number(self) -> u8 {
        match self {
            FailInfo::BadAlg => 0,
            FailInfo::BadMessageCheck => 1,
            FailInfo::BadRequest => 2,
            FailInfo::BadTime => 3,
            FailInfo::BadCertId => 4,
        }
    }

    fn from_number(n: &str) -> Option<Self> {
        Some(match n {
            "0" => FailInfo::BadAlg,
            "1" => FailInfo::BadMessageCheck,
            "2" => FailInfo::BadRequest,
            "3" => FailInfo::BadTime,
            "4" => FailInfo::BadCertId,
            _ => return None,
        })
    }

    /// RFC 8894 name (`badAlg`, ...), for logs.
    pub fn name(self) -> &'static str {
        match self {
            FailInfo::BadAlg => "badAlg",
            FailInfo::BadMessageCheck => "badMessageCheck",
            FailInfo::BadRequest => "badRequest",
            FailInfo::BadTime => "badTime",
            FailInfo::BadCertId => "badCertId",
        }
    }
}

/// The RA: its certificate (issued by the CA) and RSA key. Decrypts requests
/// and signs replies.
#[derive(Debug)]
pub struct RaKey {
    pub cert_der: Vec<u8>,
    pub key: RsaKey,
    /// A second certificate for the same key with keyUsage keyEncipherment only, served
    /// by GetCACert for clients that pick the recipient by key usage (PyScep). Requests
    /// encrypted to it open with `key` ([`cms::open_envelope`] falls back to the first
    /// key-transport recipient).
    pub enc_cert_der: Option<Vec<u8>>,
}

/// What a CertRep needs to answer a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    pub transaction_id: String,
    /// The transactionID attribute value exactly as the requester encoded it (DER, any
    /// string type): the CertRep echoes it byte for byte, so a reply can be built for every
    /// transactionID [`parse_request`] accepted (a UTF8String `a_b` is not a PrintableString).
    pub transaction_id_der: Vec<u8>,
    pub sender_nonce: Vec<u8>,
    /// The requester's signer certificate (replies are encrypted to it).
    pub signer_cert_der: Vec<u8>,
    pub digest: DigestAlg,
}

/// A verified, decrypted request.
#[derive(Clone, Debug)]
pub struct PkiMessage {
    pub message_type: MessageType,
    pub reply_to: ReplyTo,
    /// The cipher of the pkcsPKIEnvelope.
    pub cipher: ContentCipher,
    /// The decrypted messageData: a PKCS#10 CSR (PKCSReq, RenewalReq) or an
    /// IssuerAndSubject (CertPoll), or IssuerAndSerialNumber (GetCert/GetCRL).
    pub content: Vec<u8>,
}

impl PkiMessage {
    pub fn transaction_id(&self) -> &str {
        &self.reply_to.transaction_id
    }
}

/// Why a request is not answered with a certificate.
#[derive(Debug, thiserror::Error)]
pub enum ScepError {
    /// Not a usable SCEP message: no CertRep can be built (HTTP error).
    #[error("malformed SCEP message: {0}")]
    Malformed(PkiError),
    /// A SCEP message that must be refused with a FAILURE CertRep.
    #[error("SCEP request refused ({}): {reason}", fail_info.name())]
    Refused {
        fail_info: FailInfo,
        reason: String,
        reply_to: Box<ReplyTo>,
    },
}

fn printable(attr: &SignedAttr) -> Option<String> {
    let v = attr.single_value()?;
    // PrintableString normally; some clients use UTF8String or IA5String.
    let any = Any::from_der(v).ok()?;
    std::str::from_utf8(any.value()).ok().map(str::to_owned)
}

fn octet_attr(attr: &SignedAttr) -> Option<Vec<u8>> {
    let v = attr.single_value()?;
    OctetString::from_der(v).ok().map(|o| o.as_bytes().to_vec())
}

fn printable_attr(oid: &str, value: &str) -> Result<SignedAttr, PkiError> {
    let s = PrintableString::new(value)
        .map_err(|e| PkiError::input("SCEP attribute", e.to_string()))?;
    Ok(SignedAttr {
        oid: oid.into(),
        values: vec![
            s.to_der()
                .map_err(|e| PkiError::internal("SCEP attribute", e))?,
        ],
    })
}

fn octet_string_attr(oid: &str, value: &[u8]) -> Result<SignedAttr, PkiError> {
    let s =
        OctetString::new(value.to_vec()).map_err(|e| PkiError::internal("SCEP attribute", e))?;
    Ok(SignedAttr {
        oid: oid.into(),
        values: vec![
            s.to_der()
                .map_err(|e| PkiError::internal("SCEP attribute", e))?,
        ],
    })
}

fn nonce() -> Result<Vec<u8>, PkiError> {
    use aws_lc_rs::rand::SecureRandom;
    let mut n = vec![0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut n)
        .map_err(|e| PkiError::internal("random", e))?;
    Ok(n)
}

fn malformed(reason: impl Into<String>) -> ScepError {
    ScepError::Malformed(PkiError::InvalidCms {
        reason: reason.into(),
    })
}

/// Server side: verify and decrypt a PKIOperation message.
pub fn parse_request(der: &[u8], ra: &RaKey) -> Result<PkiMessage, ScepError> {
    let msg = cms::inspect_signed(der).map_err(ScepError::Malformed)?;
    let tx_attr = msg.attr(OID_TRANSACTION_ID);
    let transaction_id = tx_attr
        .and_then(printable)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed("no transactionID"))?;
    let transaction_id_der = tx_attr
        .and_then(SignedAttr::single_value)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| malformed("no transactionID"))?;
    let sender_nonce = msg
        .attr(OID_SENDER_NONCE)
        .and_then(octet_attr)
        .ok_or_else(|| malformed("no senderNonce"))?;
    let reply_to = ReplyTo {
        transaction_id,
        transaction_id_der,
        sender_nonce,
        signer_cert_der: msg.signer_cert_der.clone(),
        digest: msg.digest,
    };
    let refuse = |fail_info: FailInfo, reason: String| ScepError::Refused {
        fail_info,
        reason,
        reply_to: Box::new(reply_to.clone()),
    };
    let message_type = msg
        .attr(OID_MESSAGE_TYPE)
        .and_then(printable)
        .and_then(|t| MessageType::from_number(&t))
        .ok_or_else(|| {
            refuse(
                FailInfo::BadRequest,
                "missing or unknown messageType".into(),
            )
        })?;
    if message_type == MessageType::CertRep {
        return Err(refuse(
            FailInfo::BadRequest,
            "a CertRep is not a request".into(),
        ));
    }
    let verified = cms::verify(der).map_err(|e| match e {
        PkiError::UnsupportedAlgorithm { .. } => refuse(FailInfo::BadAlg, e.to_string()),
        other => refuse(FailInfo::BadMessageCheck, other.to_string()),
    })?;
    if !verified.has_content {
        return Err(refuse(FailInfo::BadRequest, "no pkcsPKIEnvelope".into()));
    }
    let (content, cipher) =
        cms::open_envelope(&verified.content, &ra.cert_der, &ra.key).map_err(|e| match e {
            PkiError::UnsupportedAlgorithm { .. } => refuse(FailInfo::BadAlg, e.to_string()),
            other => refuse(FailInfo::BadMessageCheck, other.to_string()),
        })?;
    Ok(PkiMessage {
        message_type,
        reply_to,
        cipher,
        content,
    })
}

/// What a CertRep says.
#[derive(Clone, Debug)]
pub enum CertRepBody {
    /// The issued certificate first, then any chain certificates (DER).
    Success(Vec<Vec<u8>>),
    Failure(FailInfo),
    Pending,
    /// SUCCESS answering a GetCRL: the CRL (DER) in the degenerate SignedData's `crls`.
    Crl(Vec<u8>),
}

/// Server side: a CertRep signed by the RA. SUCCESS content is encrypted to
/// the requester's signer certificate with `cipher`.
pub fn build_cert_rep(
    ra: &RaKey,
    to: &ReplyTo,
    body: &CertRepBody,
    cipher: ContentCipher,
) -> Result<Vec<u8>, PkiError> {
    let mut attrs = vec![
        // Echoed as received (RFC 8894 3.2.1.1 names PrintableString; clients also send
        // UTF8String or IA5String, and characters PrintableString lacks).
        SignedAttr {
            oid: OID_TRANSACTION_ID.into(),
            values: vec![to.transaction_id_der.clone()],
        },
        printable_attr(OID_MESSAGE_TYPE, &MessageType::CertRep.number().to_string())?,
        octet_string_attr(OID_SENDER_NONCE, &nonce()?)?,
        octet_string_attr(OID_RECIPIENT_NONCE, &to.sender_nonce)?,
    ];
    // FAILURE and PENDING carry an empty eContent rather than none: OpenSSL's
    // PKCS7_verify (certmonger) refuses a SignedData without content ("no content").
    let (status, content) = match body {
        CertRepBody::Success(certs) => {
            let inner = cms::certs_only(certs)?;
            ("0", cms::envelope(&inner, &to.signer_cert_der, cipher)?)
        }
        CertRepBody::Crl(crl) => {
            let inner = cms::crls_only(crl)?;
            ("0", cms::envelope(&inner, &to.signer_cert_der, cipher)?)
        }
        CertRepBody::Failure(fi) => {
            attrs.push(printable_attr(OID_FAIL_INFO, &fi.number().to_string())?);
            ("2", Vec::new())
        }
        CertRepBody::Pending => ("3", Vec::new()),
    };
    attrs.push(printable_attr(OID_PKI_STATUS, status)?);
    let digest = match to.digest {
        DigestAlg::Sha512 => DigestAlg::Sha512,
        _ => DigestAlg::Sha256,
    };
    cms::sign(
        Some(&content),
        &ra.cert_der,
        &ra.key,
        digest,
        &attrs,
        std::slice::from_ref(&ra.cert_der),
    )
}

/// The challengePassword attribute of a PKCS#10 request, if any.
pub fn csr_challenge_password(csr_der: &[u8]) -> Option<String> {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::cri_attributes::ParsedCriAttribute;
    use x509_parser::prelude::FromDer;
    let (_, csr) = X509CertificationRequest::from_der(csr_der).ok()?;
    csr.certification_request_info
        .iter_attributes()
        .find_map(|a| match a.parsed_attribute() {
            ParsedCriAttribute::ChallengePassword(p) => Some(p.0.clone()),
            _ => None,
        })
}

/// GetCertInitial content: (issuer Name DER, subject Name DER).
pub fn parse_issuer_and_subject(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    let bad = |e: der::Error| PkiError::InvalidCms {
        reason: format!("IssuerAndSubject: {e}"),
    };
    let (issuer, subject): (Any, Any) = Any::from_der(der)
        .map_err(bad)?
        .sequence(|r| Ok::<_, der::Error>((Any::decode(r)?, Any::decode(r)?)))
        .map_err(bad)?;
    Ok((
        issuer.to_der().map_err(bad)?,
        subject.to_der().map_err(bad)?,
    ))
}

/// GetCert / GetCRL content (RFC 8894 3.3.3, 3.3.4): IssuerAndSerialNumber as (issuer Name
/// DER, canonical serial hex).
pub fn parse_issuer_and_serial(der: &[u8]) -> Result<(Vec<u8>, String), PkiError> {
    let bad = |e: der::Error| PkiError::InvalidCms {
        reason: format!("IssuerAndSerialNumber: {e}"),
    };
    let (issuer, serial): (Any, der::asn1::Int) = Any::from_der(der)
        .map_err(bad)?
        .sequence(|r| Ok::<_, der::Error>((Any::decode(r)?, der::asn1::Int::decode(r)?)))
        .map_err(bad)?;
    if der::Tagged::tag(&issuer) != der::Tag::Sequence {
        return Err(PkiError::InvalidCms {
            reason: "IssuerAndSerialNumber: issuer is not a Name".into(),
        });
    }
    Ok((
        issuer.to_der().map_err(bad)?,
        crate::serial_hex_from_bytes(serial.as_bytes()),
    ))
}

// --------------------------------------------------------------- client side

/// A client's PKCSReq / RenewalReq / CertPoll.
pub struct ClientRequest<'a> {
    pub message_type: MessageType,
    /// The CSR (PKCSReq, RenewalReq) or IssuerAndSubject (CertPoll).
    pub content: &'a [u8],
    pub transaction_id: &'a str,
    /// Signer: self-signed certificate of the new key, or the current certificate for renewal.
    pub signer_cert_der: &'a [u8],
    pub signer_key: &'a RsaKey,
    /// The CA or RA certificate the content is encrypted to.
    pub recipient_cert_der: &'a [u8],
    pub cipher: ContentCipher,
    pub digest: DigestAlg,
}

/// Client side: the signed, enveloped request and its senderNonce.
pub fn build_request(req: &ClientRequest<'_>) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    let envelope = cms::envelope(req.content, req.recipient_cert_der, req.cipher)?;
    let sender_nonce = nonce()?;
    let attrs = [
        printable_attr(OID_TRANSACTION_ID, req.transaction_id)?,
        printable_attr(OID_MESSAGE_TYPE, &req.message_type.number().to_string())?,
        octet_string_attr(OID_SENDER_NONCE, &sender_nonce)?,
    ];
    let der = cms::sign(
        Some(&envelope),
        req.signer_cert_der,
        req.signer_key,
        req.digest,
        &attrs,
        &[req.signer_cert_der.to_vec()],
    )?;
    Ok((der, sender_nonce))
}

/// Client side: a RenewalReq for `csr_der` signed with the current certificate and its
/// key, RSA or EC (an ECDSA identity from registration); the CSR is enveloped to the
/// RA with RSA key transport as always. The CertRep comes back encrypted to the signer
/// certificate: for an EC key by key agreement ([`cms::open_kari`]).
pub fn build_renewal_req(
    csr_der: &[u8],
    transaction_id: &str,
    signer_cert_der: &[u8],
    signer_key: cms::SignerKey<'_>,
    recipient_cert_der: &[u8],
    cipher: ContentCipher,
) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    let envelope = cms::envelope(csr_der, recipient_cert_der, cipher)?;
    let sender_nonce = nonce()?;
    let attrs = [
        printable_attr(OID_TRANSACTION_ID, transaction_id)?,
        printable_attr(
            OID_MESSAGE_TYPE,
            &MessageType::RenewalReq.number().to_string(),
        )?,
        octet_string_attr(OID_SENDER_NONCE, &sender_nonce)?,
    ];
    let der = cms::sign_with(
        Some(&envelope),
        signer_cert_der,
        signer_key,
        &attrs,
        &[signer_cert_der.to_vec()],
    )?;
    Ok((der, sender_nonce))
}

/// Client side: a PKCSReq (or RenewalReq with `renewal`) for `csr_der`.
#[allow(clippy::too_many_arguments)]
pub fn build_pkcs_req(
    csr_der: &[u8],
    transaction_id: &str,
    signer_cert_der: &[u8],
    signer_key: &RsaKey,
    recipient_cert_der: &[u8],
    cipher: ContentCipher,
    renewal: bool,
) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    build_request(&ClientRequest {
        message_type: if renewal {
            MessageType::RenewalReq
        } else {
            MessageType::PkcsReq
        },
        content: csr_der,
        transaction_id,
        signer_cert_der,
        signer_key,
        recipient_cert_der,
        cipher,
        digest: DigestAlg::Sha256,
    })
}

/// Client side: the IssuerAndSubject content of a CertPoll (GetCertInitial)
/// from the CA certificate and the CSR.
pub fn issuer_and_subject(ca_cert_der: &[u8], csr_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::prelude::FromDer;
    let ca = crate::info::parse_cert(ca_cert_der)?;
    let (_, csr) =
        X509CertificationRequest::from_der(csr_der).map_err(|e| PkiError::InvalidCsr {
            reason: e.to_string(),
        })?;
    let mut body = ca.subject().as_raw().to_vec();
    body.extend_from_slice(csr.certification_request_info.subject.as_raw());
    let any = Any::new(der::Tag::Sequence, body).map_err(|e| PkiError::internal("DER", e))?;
    any.to_der().map_err(|e| PkiError::internal("DER", e))
}

/// Client side: a GetCertInitial (CertPoll) request.
pub fn build_get_cert_initial(
    ca_cert_der: &[u8],
    csr_der: &[u8],
    transaction_id: &str,
    signer_cert_der: &[u8],
    signer_key: &RsaKey,
    recipient_cert_der: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    let content = issuer_and_subject(ca_cert_der, csr_der)?;
    build_request(&ClientRequest {
        message_type: MessageType::CertPoll,
        content: &content,
        transaction_id,
        signer_cert_der,
        signer_key,
        recipient_cert_der,
        cipher: ContentCipher::Aes256Cbc,
        digest: DigestAlg::Sha256,
    })
}

/// A parsed CertRep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRep {
    pub status: PkiStatus,
    pub fail_info: Option<FailInfo>,
    /// SUCCESS: the certificates of the certs-only reply (DER), in order.
    pub certs: Vec<Vec<u8>>,
}

/// Client side: verify a CertRep (signed by one of `ra_certs_der`, matching
/// `transaction_id` and, when given, echoing `sender_nonce` as recipientNonce)
/// and decrypt its certificates with our signer certificate and key.
pub fn parse_cert_rep(
    der: &[u8],
    our_cert_der: &[u8],
    our_key: &RsaKey,
    transaction_id: &str,
    ra_certs_der: &[Vec<u8>],
    sender_nonce: Option<&[u8]>,
) -> Result<CertRep, PkiError> {
    let bad = |reason: &str| PkiError::InvalidCms {
        reason: format!("CertRep: {reason}"),
    };
    let v = cms::verify(der)?;
    if !ra_certs_der.contains(&v.signer_cert_der) {
        return Err(PkiError::CmsSignature {
            reason: "the CertRep is not signed by the CA/RA certificate".into(),
        });
    }
    let mt = v.attr(OID_MESSAGE_TYPE).and_then(printable);
    if mt.as_deref() != Some("3") {
        return Err(bad("messageType is not CertRep"));
    }
    if v.attr(OID_TRANSACTION_ID).and_then(printable).as_deref() != Some(transaction_id) {
        return Err(bad("transactionID does not match the request"));
    }
    if let Some(n) = sender_nonce
        && v.attr(OID_RECIPIENT_NONCE).and_then(octet_attr).as_deref() != Some(n)
    {
        return Err(bad("recipientNonce does not match our senderNonce"));
    }
    let status = match v.attr(OID_PKI_STATUS).and_then(printable).as_deref() {
        Some("0") => PkiStatus::Success,
        Some("2") => PkiStatus::Failure,
        Some("3") => PkiStatus::Pending,
        _ => return Err(bad("missing or unknown pkiStatus")),
    };
    let fail_info = v
        .attr(OID_FAIL_INFO)
        .and_then(printable)
        .and_then(|f| FailInfo::from_number(&f));
    let certs = if status == PkiStatus::Success {
        if v.content.is_empty() {
            return Err(bad("SUCCESS without content"));
        }
        let (inner, _) = cms::open_envelope(&v.content, our_cert_der, our_key)?;
        cms::parse_certs_only(&inner)?
    } else {
        Vec::new()
    };
    Ok(CertRep {
        status,
        fail_info,
        certs,
    })
}

/// Client side: the certificates of a GetCACert answer, by its Content-Type:
/// `application/x-x509-ca-cert` (one DER certificate) or
/// `application/x-x509-ca-ra-cert` (certs-only SignedData).
pub fn parse_get_ca_cert(content_type: &str, body: &[u8]) -> Result<Vec<Vec<u8>>, PkiError> {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "application/x-x509-ca-cert" => {
            crate::info::parse_cert(body)?;
            Ok(vec![body.to_vec()])
        }
        "application/x-x509-ca-ra-cert" | "application/x-x509-ca-ra-cert-chain" => {
            let certs = cms::parse_certs_only(body)?;
            if certs.is_empty() {
                return Err(PkiError::InvalidCms {
                    reason: "GetCACert answer carries no certificate".into(),
                });
            }
            Ok(certs)
        }
        other => Err(PkiError::input(
            "GetCACert content type",
            format!("unexpected {other:?}"),
        )),
    }
}

/// GetCACaps capabilities (case-insensitive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaCaps(pub Vec<String>);

impl CaCaps {
    /// One capability per line; blank lines ignored.
    pub fn parse(text: &str) -> Self {
        CaCaps(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    pub fn has(&self, cap: &str) -> bool {
        self.0.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// The best content cipher both sides support (AES when offered, else 3DES).
    pub fn cipher(&self) -> ContentCipher {
        if self.has("AES") || self.has("SCEPStandard") {
            ContentCipher::Aes256Cbc
        } else {
            ContentCipher::DesEde3Cbc
        }
    }
}

/// Hex SHA-256 of a SubjectPublicKeyInfo: a transactionID as RFC 8894 suggests.
pub fn transaction_id_for(spki_der: &[u8]) -> String {
    crate::sha256_hex(spki_der)
}

fn rcgen_key(key: &RsaKey) -> Result<rcgen::KeyPair, PkiError> {
    let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec());
    rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).map_err(|e| {
        PkiError::InvalidKey {
            reason: e.to_string(),
        }
    })
}

/// A self-signed certificate for `key` with subject `CN=<cn>`, valid from
/// `now` - 1 hour for 30 days: the signer of a first SCEP enrollment.
pub fn self_signed_rsa(key: &RsaKey, cn: &str, now: OffsetDateTime) -> Result<Vec<u8>, PkiError> {
    let kp = rcgen_key(key)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(30);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = params
        .self_signed(&kp)
        .map_err(|e| PkiError::internal("self-signed certificate", e))?;
    Ok(cert.der().to_vec())
}

/// A PKCS#10 request for `key` with subject `CN=<cn>` and, when given, a
/// challengePassword attribute (SHA-256 with RSA).
pub fn rsa_csr(key: &RsaKey, cn: &str, challenge: Option<&str>) -> Result<Vec<u8>, PkiError> {
    let kp = rcgen_key(key)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let mut attrs = Vec::new();
    if let Some(c) = challenge {
        let value = PrintableString::new(c)
            .map(|p| p.to_der())
            .or_else(|_| der::asn1::Utf8StringRef::new(c).map(|u| u.to_der()))
            .map_err(|e| PkiError::input("challenge", e.to_string()))?
            .map_err(|e| PkiError::internal("challenge", e))?;
        // SET OF with one value.
        let set = Any::new(der::Tag::Set, value)
            .and_then(|a| a.to_der())
            .map_err(|e| PkiError::internal("challenge", e))?;
        attrs.push(rcgen::Attribute {
            oid: OID_CHALLENGE_PASSWORD,
            values: set,
        });
    }
    let csr = params
        .serialize_request_with_attributes(&kp, attrs)
        .map_err(|e| PkiError::internal("CSR", e))?;
    Ok(csr.der().to_vec())
}
