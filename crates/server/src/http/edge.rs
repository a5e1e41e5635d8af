//! What every router does around its handlers (one middleware, [`edge`]):
//! - a request with more than one `Authorization` header is refused
//!   (`ambiguous_authorization`) before any handler reads one of them;
//! - every refused authentication (wrong password or token, unknown or revoked certificate,
//!   untrusted forwarded certificate, ...) is logged once at `info` with the source address,
//!   the listener, the path and the stable code, never a credential; a token bucket (burst
//!   [`REFUSAL_BURST`], then one line a second) keeps a flood from filling the disk, and the
//!   next line logged says how many were suppressed.
//!
//! - an error answer that did not come from [`error_response`] (an extractor's rejection in
//!   axum's plain text, e.g. a path parameter that is not UTF-8) is rewritten as the standard
//!   JSON body with a stable code for its status; the original text goes to the debug log.
//!
//! It also holds the 404 and 405 fallbacks every router uses.

use super::error::{ErrorCode, error_response};
use super::{ConnInfo, auth};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ferrocore_proto::codes;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Refusals logged in a burst before the rate limit applies.
pub const REFUSAL_BURST: f64 = 20.0;
/// Refusal lines per second once the burst is spent.
const REFUSAL_RATE: f64 = 1.0;

/// Codes that mean "authentication refused".
const AUTH_REFUSALS: &[&str] = &[
    codes::UNAUTHORIZED,
    codes::INVALID_CREDENTIALS,
    codes::EST_TOKEN_INVALID,
    codes::CERT_UNKNOWN,
    codes::CERT_REVOKED,
    codes::CERT_EXPIRED,
    codes::CERT_SUPERSEDED,
    codes::DEVICE_RETIRED,
    codes::UNTRUSTED_FORWARDED_CERT,
    codes::AMBIGUOUS_CLIENT_CERT,
    codes::MALFORMED_FORWARDED_CERT,
    codes::AMBIGUOUS_AUTHORIZATION,
];

/// Whether `code` is a refused authentication.
pub fn is_auth_refusal(code: &str) -> bool {
    AUTH_REFUSALS.contains(&code)
}

struct Bucket {
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

static REFUSALS: Mutex<Option<Bucket>> = Mutex::new(None);

/// Logs one refused authentication, within the rate limit.
fn log_refusal(info: Option<&ConnInfo>, path: &str, code: &str) {
    let Ok(mut guard) = REFUSALS.lock() else {
        return;
    };
    let now = Instant::now();
    let b = guard.get_or_insert(Bucket {
        tokens: REFUSAL_BURST,
        last: now,
        suppressed: 0,
    });
    b.tokens =
        (b.tokens + now.duration_since(b.last).as_secs_f64() * REFUSAL_RATE).min(REFUSAL_BURST);
    b.last = now;
    if b.tokens < 1.0 {
        b.suppressed += 1;
        return;
    }
    b.tokens -= 1.0;
    if b.suppressed > 0 {
        tracing::info!(
            suppressed = b.suppressed,
            "suppressed {} refused authentications (log rate limit)",
            b.suppressed
        );
        b.suppressed = 0;
    }
    // Paths are the caller's input: keep the line short.
    let path: String = path.chars().take(120).collect();
    match info {
        Some(i) => tracing::info!(
            peer = %i.peer,
            listener = i.kind.name(),
            path,
            code,
            "authentication refused"
        ),
        None => tracing::info!(path, code, "authentication refused"),
    }
}

/// The middleware of every router (see the module docs).
pub async fn edge(req: Request, next: Next) -> Response {
    let info = req.extensions().get::<Arc<ConnInfo>>().cloned();
    // Kept for the log line (a cheap clone of shared bytes).
    let uri = req.uri().clone();
    let twice = req
        .headers()
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some();
    let response = if twice {
        auth::AuthorizationError::Duplicate.into_response()
    } else {
        next.run(req).await
    };
    let response = if (response.status().is_client_error() || response.status().is_server_error())
        && response.extensions().get::<ErrorCode>().is_none()
    {
        standard_error(response).await
    } else {
        response
    };
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>()
        && is_auth_refusal(code)
    {
        log_refusal(info.as_deref(), uri.path(), code);
    }
    response
}

/// Longest foreign error text read for the log.
const FOREIGN_TEXT_MAX: usize = 4096;

/// The standard JSON error for an error answer produced outside [`error_response`], keeping
/// its status and headers (e.g. `Allow`).
async fn standard_error(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, FOREIGN_TEXT_MAX)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    tracing::debug!(status = parts.status.as_u16(), %text, "error answer rewritten as JSON");
    let (code, message) = match parts.status {
        StatusCode::NOT_FOUND => (codes::NOT_FOUND, "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => (
            codes::METHOD_NOT_ALLOWED,
            "this path does not take this method (see the Allow header)",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (codes::BODY_TOO_LARGE, "request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            codes::UNSUPPORTED_MEDIA_TYPE,
            "this endpoint does not take this content type",
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            codes::HEADERS_TOO_LARGE,
            "too many request headers, or request headers too large",
        ),
        s if s.is_server_error() => (codes::INTERNAL, "internal error"),
        _ => (
            codes::BAD_REQUEST,
            "the request could not be read (path, query string or body)",
        ),
    };
    let mut out = error_response(parts.status, code, message.into());
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

pub async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        "no such endpoint".into(),
    )
}

/// Wrong method on an existing path (axum adds the `Allow` header).
pub async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        "this path does not take this method (see the Allow header)".into(),
    )
}
