//! `Mdm-Signature`: base64 of a detached CMS SignedData over the exact request
//! body, the signer certificate embedded (profiles with `SignMessage` = true).
//! Verification proves possession of the key of the embedded certificate only;
//! the caller validates that certificate against its trust store.

use base64::Engine;
use ferrocore_pki::cms;
use thiserror::Error;

/// The request header carrying the signature.
pub const HEADER: &str = "Mdm-Signature";

/// Largest header value accepted (a signature with one certificate is ~2 KiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Why an `Mdm-Signature` was refused.
#[derive(Debug, Error)]
pub enum SignatureError {
    #[error("the Mdm-Signature header is too large")]
    TooLarge,
    #[error("the Mdm-Signature header is not base64")]
    NotBase64,
    #[error("the Mdm-Signature is not a detached CMS SignedData: {0}")]
    Malformed(String),
    #[error("the Mdm-Signature does not verify over the body: {0}")]
    BadSignature(String),
}

impl SignatureError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::TooLarge | SignatureError::NotBase64 | SignatureError::Malformed(_) => {
                "malformed_signature"
            }
            SignatureError::BadSignature(_) => "bad_signature",
        }
    }
}

/// A verified signature.
#[derive(Debug, Clone)]
pub struct MdmSignature {
    /// The signer's certificate (DER): validate it against the trust store.
    pub signer_cert_der: Vec<u8>,
    /// Every certificate the message carries (DER), the signer's included.
    pub certs_der: Vec<Vec<u8>>,
    /// DER of the `signingTime` attribute value, if the device sent one.
    pub signing_time_der: Option<Vec<u8>>,
}

/// Verifies the `Mdm-Signature` header value over `body` (the raw bytes as
/// received, never a re-serialisation).
pub fn verify_mdm_signature(header: &str, body: &[u8]) -> Result<MdmSignature, SignatureError> {
    let header = header.trim();
    if header.len() > MAX_HEADER_BYTES {
        return Err(SignatureError::TooLarge);
    }
    // Standard alphabet; some clients wrap or omit padding.
    let compact: String = header.split_ascii_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&compact))
        .map_err(|_| SignatureError::NotBase64)?;
    let v = cms::verify_detached(&der, body).map_err(|e| match e.code() {
        "cms_signature" => SignatureError::BadSignature(e.to_string()),
        _ => SignatureError::Malformed(e.to_string()),
    })?;
    Ok(MdmSignature {
        signing_time_der: v
            .attr("1.2.840.113549.1.9.5")
            .and_then(|a| a.single_value())
            .map(<[u8]>::to_vec),
        signer_cert_der: v.signer_cert_der,
        certs_der: v.certs,
    })
}
