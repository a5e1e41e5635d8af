//! EST (RFC 7030) wire forms: the request body parser ([`parse_est_body`], exposed for
//! fuzzing) and the CSR attributes answer. The certs-only PKCS#7 answers come from
//! [`crate::cms::certs_only`].

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::{CSR_MAX_BYTES, PkiError, VerifiedCsr, parse_csr};

/// Largest EST request body accepted: a base64 CSR of [`CSR_MAX_BYTES`] plus line breaks.
pub const EST_BODY_MAX_BYTES: usize = CSR_MAX_BYTES / 3 * 4 + CSR_MAX_BYTES / 32 + 64;

const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why an EST body was refused.
#[derive(Debug, thiserror::Error)]
pub enum EstBodyError {
    /// Empty, oversized, or not base64 (after removing whitespace).
    #[error("the body is not a base64 PKCS#10 request: {0}")]
    NotBase64(String),
    /// Base64 that does not hold an acceptable, self-signed PKCS#10 request.
    #[error(transparent)]
    Csr(#[from] PkiError),
}

/// Decodes an EST `simpleenroll` / `simplereenroll` body: base64 DER PKCS#10
/// (`application/pkcs10`), whitespace and CRLF line breaks allowed anywhere, padding
/// optional; then verifies the CSR like [`parse_csr`].
pub fn parse_est_body(body: &[u8]) -> Result<VerifiedCsr, EstBodyError> {
    if body.len() > EST_BODY_MAX_BYTES {
        return Err(EstBodyError::NotBase64(format!(
            "larger than {EST_BODY_MAX_BYTES} bytes"
        )));
    }
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(EstBodyError::NotBase64("empty body".into()));
    }
    let der = B64.decode(&compact).map_err(|e| {
        EstBodyError::NotBase64(match e {
            base64::DecodeError::InvalidByte(at, _) => {
                format!("character {} (whitespace ignored) is not base64", at + 1)
            }
            _ => "not base64".into(),
        })
    })?;
    // parse_csr also takes PEM; EST carries DER only.
    if der.first() != Some(&0x30) {
        return Err(EstBodyError::Csr(PkiError::InvalidCsr {
            reason: "not a DER SEQUENCE".into(),
        }));
    }
    Ok(parse_csr(&der)?)
}

/// DER `CsrAttrs` (RFC 7030 4.5.2) Ferrocore answers: ecdsa-with-SHA256, the signature
/// it prefers (P-256 keys). RSA (2048+) and P-384 keys are accepted too.
pub fn csr_attrs_der() -> Vec<u8> {
    // SEQUENCE { OBJECT IDENTIFIER ecdsa-with-SHA256 (1.2.840.10045.4.3.2) }
    vec![
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ]
}

/// An EST answer body: base64 (RFC 4648 alphabet, as RFC 8951 asks instead of MIME's
/// Content-Transfer-Encoding) in lines of 64 characters ended by LF, which GNU `base64 -d`,
/// `openssl base64 -d` (which needs lines) and RFC 7030 clients all decode. CRLF line breaks,
/// as sent before, make GNU `base64 -d` fail with "invalid input".
pub fn est_base64(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 1);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}
