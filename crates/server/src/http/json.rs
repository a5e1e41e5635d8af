//! `ApiJson<T>`: the JSON body extractor of every API. Malformed or oversize bodies become
//! the standard error body (`bad_request`, `body_too_large`) in the caller's terms: never
//! serde's or axum's wording ("Failed to deserialize ..."), never a long echo of the input.
//! A body whose declared length is over the route's limit is refused before it is read, so
//! a client sending `Expect: 100-continue` is told `413` instead of being asked for the body.

use super::error::error_response;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use ferrocore_proto::codes;
use hyper::body::Body as _;
use serde::de::DeserializeOwned;

pub struct ApiJson<T>(pub T);

/// Longest piece of the caller's input quoted back in a message.
const QUOTE_MAX: usize = 40;
/// Longest message built from a parser's explanation.
const MESSAGE_MAX: usize = 200;

pub fn too_large() -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        codes::BODY_TOO_LARGE,
        "request body too large".into(),
    )
}

/// Reads the body under the route's limit (`DefaultBodyLimit`), refusing a declared length
/// over it before reading anything.
pub async fn limited_bytes(req: Request) -> Result<bytes::Bytes, Response> {
    use axum::RequestExt as _;
    let declared = declared_length(req.headers());
    let body = req.with_limited_body().into_body();
    // A limited body's upper size bound is the limit when the declared length exceeds it.
    if let (Some(n), Some(upper)) = (declared, body.size_hint().upper())
        && n > upper
    {
        return Err(too_large());
    }
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => Ok(b),
        Err(e) => {
            // The limit error is wrapped (axum's Error around the body's): walk the chain.
            let mut source = std::error::Error::source(&e);
            let mut limited = false;
            while let Some(s) = source {
                limited |= s.is::<http_body_util::LengthLimitError>();
                source = s.source();
            }
            if limited {
                Err(too_large())
            } else {
                tracing::debug!(error = %e, "request body could not be read");
                Err(error_response(
                    StatusCode::BAD_REQUEST,
                    codes::BAD_REQUEST,
                    "the request body could not be read".into(),
                ))
            }
        }
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(error_response(
                StatusCode::BAD_REQUEST,
                codes::BAD_REQUEST,
                "expected Content-Type: application/json".into(),
            ));
        }
        let bytes = limited_bytes(req).await?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| bad_json(&e))
    }
}

/// The answer to a body that is not the JSON the route takes.
pub fn bad_json(e: &serde_json::Error) -> Response {
    tracing::debug!(error = %e, "JSON body refused");
    error_response(
        StatusCode::BAD_REQUEST,
        codes::BAD_REQUEST,
        describe_json_error(e),
    )
}

/// serde_json's explanation in the caller's terms, with quoted input shortened.
pub fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io | Category::Syntax | Category::Eof => format!(
            "the body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ),
        Category::Data => {
            let full = e.to_string();
            // serde_json appends " at line L column C".
            let what = full
                .rsplit_once(" at line ")
                .map_or(full.as_str(), |(w, _)| w);
            format!("invalid JSON body: {}", shorten(what))
        }
    }
}

/// A query-string rejection in the caller's terms.
pub fn query_message(e: &axum::extract::rejection::QueryRejection) -> String {
    let text = e.body_text();
    let what = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or("the query string could not be read");
    format!("invalid query string: {}", shorten(what))
}

/// Cuts quoted literals (`"..."` or `` `...` ``) longer than [`QUOTE_MAX`] and the whole text
/// at [`MESSAGE_MAX`] characters, so a message never echoes a large input.
pub fn shorten(text: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<(char, usize)> = None;
    for c in text.chars() {
        match quote {
            Some((q, n)) if c == q => {
                out.push(c);
                let _ = n;
                quote = None;
            }
            Some((q, n)) => {
                if n < QUOTE_MAX {
                    out.push(c);
                } else if n == QUOTE_MAX {
                    out.push('…');
                }
                quote = Some((q, n + 1));
            }
            None => {
                if c == '"' || c == '`' {
                    quote = Some((c, 0));
                }
                out.push(c);
            }
        }
        if out.chars().count() >= MESSAGE_MAX {
            out.push('…');
            break;
        }
    }
    out
}

/// A body that may be empty (then `T::default()`) or JSON.
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = limited_bytes(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(OptionalJson)
            .map_err(|e| bad_json(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_speak_of_the_body_and_never_echo_long_input() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct R {
            username: String,
            n: u32,
        }
        let long = "x".repeat(5000);
        let e =
            serde_json::from_str::<R>(&format!(r#"{{"username": 5, "n": "{long}"}}"#)).unwrap_err();
        let m = describe_json_error(&e);
        assert!(m.starts_with("invalid JSON body: invalid type"), "{m}");
        let e = serde_json::from_str::<R>(&format!(r#"{{"username": "{long}", "n": "{long}"}}"#))
            .unwrap_err();
        let m = describe_json_error(&e);
        assert!(m.len() < 300 && !m.contains(&"x".repeat(41)), "{m}");
        assert!(!m.contains("Failed to deserialize"), "{m}");
        let e = serde_json::from_str::<R>(r#"{"username": "a"}"#).unwrap_err();
        assert_eq!(
            describe_json_error(&e),
            "invalid JSON body: missing field `n`"
        );
        let e = serde_json::from_str::<R>("{nope").unwrap_err();
        assert!(describe_json_error(&e).starts_with("the body is not valid JSON"));
        assert!(shorten(&"y".repeat(1000)).chars().count() <= MESSAGE_MAX + 1);
    }
}
