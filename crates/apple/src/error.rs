//! Errors of this crate, each with a stable `code()`.

use thiserror::Error;

/// Why a device's plist (check-in, report, command) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("empty body")]
    Empty,
    #[error("body of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("not an XML property list")]
    NotXml,
    #[error("malformed property list: {0}")]
    Malformed(String),
    #[error("property list nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("the top level is not a dictionary")]
    NotADictionary,
    #[error("missing key {0}")]
    MissingKey(&'static str),
    #[error("key {key}: expected {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
    },
    #[error("neither UDID nor EnrollmentID")]
    NoEnrollmentId,
    #[error("unknown Status {0:?}")]
    UnknownStatus(String),
    #[error("unknown RequestType {0:?}")]
    UnknownRequestType(String),
}

impl ParseError {
    /// Stable code in the protocol's terms.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty_body",
            ParseError::TooLarge { .. } => "body_too_large",
            ParseError::NotXml | ParseError::Malformed(_) | ParseError::TooDeep(_) => {
                "malformed_plist"
            }
            ParseError::NotADictionary => "not_a_dictionary",
            ParseError::MissingKey(_) => "missing_key",
            ParseError::WrongType { .. } => "wrong_type",
            ParseError::NoEnrollmentId => "no_enrollment_id",
            ParseError::UnknownStatus(_) => "unknown_status",
            ParseError::UnknownRequestType(_) => "unknown_request_type",
        }
    }
}

/// Why a profile could not be built or signed.
#[derive(Debug, Error)]
pub enum ProfileError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("plist encoding: {0}")]
    Encoding(String),
    #[error("signing: {0}")]
    Signing(#[from] ferrocore_pki::PkiError),
}

impl ProfileError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ProfileError::Invalid { .. } => "invalid_profile",
            ProfileError::Encoding(_) => "profile_encoding",
            ProfileError::Signing(_) => "profile_signing",
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ProfileError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
