//! The one mapping from domain errors to HTTP: status code plus the JSON error body
//! `{"error": {"code", "message"}}`. Internal detail goes to the log, never to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrocore_core::CoreError;
use ferrocore_proto::{ErrorBody, ErrorDetail};
use std::sync::Arc;

/// An error answer.
#[derive(Debug)]
pub struct ApiError(pub Arc<CoreError>);

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError(Arc::new(e))
    }
}

pub fn status_of(e: &CoreError) -> StatusCode {
    use CoreError::*;
    match e {
        BadRequest(_)
        | InvalidCsr(_)
        | CsrRequired
        | InvalidDeviceUuid(_)
        | InvalidVersion(_)
        | UnsupportedClient { .. }
        | InvalidSetting(_) => StatusCode::BAD_REQUEST,
        InvalidCredentials
        | ClientCertRequired
        | DeviceSecretRequired
        | CertUnknown(_)
        | CertExpired { .. } => StatusCode::UNAUTHORIZED,
        CertRevoked { .. }
        | CertSuperseded
        | DeviceRetired
        | MutualAuthRequired
        | RenewalNotSupported
        | DeviceOfAnotherUser
        | MigrationNotAllowed(_) => StatusCode::FORBIDDEN,
        CertificateNotUsed { .. } | StorefrontIdentityNotNeeded(_) => StatusCode::CONFLICT,
        WrongListener(_) => StatusCode::MISDIRECTED_REQUEST,
        DeviceUnknown | NotFound(_) => StatusCode::NOT_FOUND,
        MutualAuthIrreversible
        | LegacyDevicesExist { .. }
        | UserExists(_)
        | Conflict(_)
        | AlreadyRevoked(_)
        | GrantConsumed(_)
        | RenewalNotDue { .. } => StatusCode::CONFLICT,
        Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        PortalCert { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        StorefrontPasswordRequired | EstTokenInvalid => StatusCode::UNAUTHORIZED,
        AppWrongPlatform { .. } => StatusCode::FORBIDDEN,
        InvalidAppId(_) => StatusCode::BAD_REQUEST,
        CsrAttributesRequired(_) => StatusCode::CONFLICT,
        ExternalCaUnreachable(_) | ExternalCaTlsUntrusted(_) => StatusCode::BAD_GATEWAY,
        ExternalCaRefused(_) | ExternalCaPending(_) | ExternalCaBadCertificate(_) => {
            StatusCode::BAD_GATEWAY
        }
        CaFingerprintMismatch { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        DirectoryUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        AccountLocked
        | AccountDisabled
        | PasswordExpired
        | PasswordMustChange
        | AccountExpired
        | EnrollmentNotAllowed
        | DirectoryUserBlocked(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The stable code of an error answer, kept on the response for the edge middleware
/// (`http::edge`, which logs refused authentications).
#[derive(Debug, Clone)]
pub struct ErrorCode(pub String);

pub fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let mut r = (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
            },
        }),
    )
        .into_response();
    r.extensions_mut().insert(ErrorCode(code.to_owned()));
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = &*self.0;
        let status = status_of(e);
        let message = match e {
            CoreError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error".to_owned()
            }
            other => {
                tracing::debug!(code = other.code(), %other, "request refused");
                other.to_string()
            }
        };
        let mut response = error_response(status, e.code(), message);
        if let CoreError::TooManyAttempts { retry_after_secs } = e
            && let Ok(v) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        response
    }
}

impl IntoResponse for super::client_identity::ClientIdentityError {
    fn into_response(self) -> Response {
        use super::client_identity::ClientIdentityError::*;
        let status = match &self {
            Untrusted { .. } => StatusCode::FORBIDDEN,
            Ambiguous(_) | Malformed { .. } => StatusCode::BAD_REQUEST,
            NoConnection => StatusCode::INTERNAL_SERVER_ERROR,
        };
        tracing::debug!(code = self.code(), error = %self, "client identity refused");
        error_response(status, self.code(), self.to_string())
    }
}
