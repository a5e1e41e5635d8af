//! The crate's error type, [`PkiError`], and its stable machine-readable codes.

use thiserror::Error;

/// Everything that can go wrong in this crate. Each variant has a stable
/// [`code`](PkiError::code) that callers may expose in APIs and logs.
#[derive(Debug, Error)]
pub enum PkiError {
    /// The CSR could not be decoded (not PEM/DER, truncated, trailing data, too large).
    #[error("invalid CSR: {reason}")]
    InvalidCsr { reason: String },
    /// The CSR's self-signature does not verify against its own public key.
    #[error("CSR signature does not verify: {reason}")]
    CsrSignature { reason: String },
    /// The CSR is signed with an algorithm we refuse (SHA-1, unknown, mismatched key).
    #[error("unsupported signature algorithm: {algorithm}")]
    UnsupportedSignature { algorithm: String },
    /// The public key type or size is not accepted (only P-256/P-384 EC and RSA >= 2048).
    #[error("unsupported key: {reason}")]
    UnsupportedKey { reason: String },
    /// A certificate could not be parsed or is unfit for its role.
    #[error("invalid certificate: {reason}")]
    InvalidCertificate { reason: String },
    /// A private key could not be parsed.
    #[error("invalid private key: {reason}")]
    InvalidKey { reason: String },
    /// The private key does not belong to the certificate.
    #[error("private key does not match the certificate")]
    KeyMismatch,
    /// A caller-supplied value (profile field, hostname, serial, date) is unusable.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    /// A CMS / PKCS#7 message could not be decoded or is structurally unusable.
    #[error("invalid CMS message: {reason}")]
    InvalidCms { reason: String },
    /// A CMS signature (or its messageDigest) does not verify.
    #[error("CMS signature does not verify: {reason}")]
    CmsSignature { reason: String },
    /// A CMS algorithm (digest, signature, key transport, cipher) we do not support.
    #[error("unsupported algorithm: {algorithm}")]
    UnsupportedAlgorithm { algorithm: String },
    /// Reading or writing a file failed.
    #[error("i/o error on {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// An unexpected failure inside the certificate machinery (e.g. signing failed).
    #[error("internal PKI error: {context}")]
    Internal { context: String },
}

impl PkiError {
    /// Stable, snake_case code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            PkiError::InvalidCsr { .. } => "invalid_csr",
            PkiError::CsrSignature { .. } => "csr_signature",
            PkiError::UnsupportedSignature { .. } => "unsupported_signature",
            PkiError::UnsupportedKey { .. } => "unsupported_key",
            PkiError::InvalidCertificate { .. } => "invalid_certificate",
            PkiError::InvalidKey { .. } => "invalid_key",
            PkiError::KeyMismatch => "key_mismatch",
            PkiError::InvalidInput { .. } => "invalid_input",
            PkiError::InvalidCms { .. } => "invalid_cms",
            PkiError::CmsSignature { .. } => "cms_signature",
            PkiError::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            PkiError::Io { .. } => "io",
            PkiError::Internal { .. } => "internal",
        }
    }

    pub(crate) fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        PkiError::Internal {
            context: format!("{context}: {err}"),
        }
    }

    pub(crate) fn input(field: &'static str, reason: impl Into<String>) -> Self {
        PkiError::InvalidInput {
            field,
            reason: reason.into(),
        }
    }
}
