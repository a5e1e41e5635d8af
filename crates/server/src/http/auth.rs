//! The `Authorization` header, read the same way on every listener (admin Bearer token, EST
//! Basic or Bearer, storefront Basic): the scheme name is case-insensitive (RFC 9110 11.1),
//! and a request carrying the header more than once is refused with
//! `ambiguous_authorization` rather than judged by one of them.

use super::error::error_response;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ferrocore_proto::codes;

/// One `Authorization` header: its scheme in lower case and its credentials, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub scheme: String,
    pub credentials: String,
}

/// Why the header cannot be used at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationError {
    /// More than one `Authorization` header.
    Duplicate,
    /// Not visible ASCII.
    NotText,
}

impl IntoResponse for AuthorizationError {
    fn into_response(self) -> Response {
        match self {
            AuthorizationError::Duplicate => error_response(
                StatusCode::BAD_REQUEST,
                codes::AMBIGUOUS_AUTHORIZATION,
                "more than one Authorization header: send exactly one".into(),
            ),
            AuthorizationError::NotText => error_response(
                StatusCode::BAD_REQUEST,
                codes::BAD_REQUEST,
                "the Authorization header is not readable text".into(),
            ),
        }
    }
}

impl Authorization {
    /// The request's `Authorization` header, if it has one.
    pub fn of(headers: &HeaderMap) -> Result<Option<Authorization>, AuthorizationError> {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(AuthorizationError::Duplicate);
        }
        let text = value
            .to_str()
            .map_err(|_| AuthorizationError::NotText)?
            .trim();
        let (scheme, credentials) = text.split_once(' ').unwrap_or((text, ""));
        Ok(Some(Authorization {
            scheme: scheme.to_ascii_lowercase(),
            credentials: credentials.trim().to_owned(),
        }))
    }

    /// `Bearer <token>` (any case of the scheme name).
    pub fn bearer(&self) -> Option<&str> {
        (self.scheme == "bearer" && !self.credentials.is_empty()).then_some(&self.credentials)
    }

    /// `Basic <base64 user:password>` (any case): `None` when the scheme is another one,
    /// `Some(Err(()))` when the credentials do not decode.
    pub fn basic(&self) -> Option<Result<(String, String), ()>> {
        if self.scheme != "basic" {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&self.credentials)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        Some(match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((u, p)) => Ok((u.to_owned(), p.to_owned())),
            None => Err(()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn scheme_is_case_insensitive_and_two_headers_are_refused() {
        for v in ["Bearer tok", "bearer tok", "BEARER  tok "] {
            let a = Authorization::of(&headers(&[v])).unwrap().unwrap();
            assert_eq!(a.bearer(), Some("tok"), "{v}");
        }
        let a = Authorization::of(&headers(&["bAsIc YTpi"]))
            .unwrap()
            .unwrap();
        assert_eq!(a.basic(), Some(Ok(("a".into(), "b".into()))));
        assert_eq!(a.bearer(), None);
        assert_eq!(
            Authorization::of(&headers(&["Bearer a", "Bearer b"])),
            Err(AuthorizationError::Duplicate)
        );
        assert_eq!(Authorization::of(&headers(&[])), Ok(None));
        let a = Authorization::of(&headers(&["Bearer"])).unwrap().unwrap();
        assert_eq!(a.bearer(), None);
    }
}
