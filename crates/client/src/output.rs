//! What the two command lines (`ferrocore admin`, `ferrocore-agent`) print: JSON with each
//! Unix-seconds time also given as RFC 3339 (`<name>_rfc3339` beside `<name>`), written to
//! standard output without panicking when the reader has gone (`... | head`).

use serde::Serialize;
use serde_json::{Map, Value};
use std::io::{self, Write};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Whether a JSON field of this name holds a Unix time in seconds.
fn is_time_field(name: &str) -> bool {
    name.ends_with("_at")
        || matches!(
            name,
            "at" | "not_before"
                | "not_after"
                | "cert_not_after"
                | "server_time"
                | "renew_from"
                | "grace_until"
        )
}

/// `value` with `<name>_rfc3339` added beside every integer time field, at any depth.
pub fn with_rfc3339_times(value: Value) -> Value {
    match value {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (name, v) in fields {
                let text = match &v {
                    Value::Number(n) if is_time_field(&name) => n
                        .as_i64()
                        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                        .and_then(|t| t.format(&Rfc3339).ok()),
                    _ => None,
                };
                if let Some(text) = text {
                    out.insert(format!("{name}_rfc3339"), Value::String(text));
                }
                out.insert(name, with_rfc3339_times(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(with_rfc3339_times).collect()),
        other => other,
    }
}

/// Prints `value` as pretty JSON (times also as RFC 3339), one document and a newline.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> io::Result<()> {
    let v = serde_json::to_value(value).map_err(io::Error::other)?;
    let text = serde_json::to_string_pretty(&with_rfc3339_times(v)).map_err(io::Error::other)?;
    print_text(&format!("{text}\n"))
}

/// Prints `value` as one line of compact JSON (times also as RFC 3339).
pub fn print_json_line<T: Serialize + ?Sized>(value: &T) -> io::Result<()> {
    let v = serde_json::to_value(value).map_err(io::Error::other)?;
    let text = serde_json::to_string(&with_rfc3339_times(v)).map_err(io::Error::other)?;
    print_text(&format!("{text}\n"))
}

/// Writes `text` to standard output and flushes it.
pub fn print_text(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Whether an error (or one of its causes) is a write to a pipe nobody reads any more: the
/// command then ends quietly.
pub fn is_broken_pipe(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_gain_an_rfc3339_twin() {
        let v = serde_json::json!({
            "created_at": 0,
            "items": [{"not_after": 1_796_000_000, "serial": "01"}],
            "last_checkin_at": null,
            "total": 3
        });
        let out = with_rfc3339_times(v);
        assert_eq!(out["created_at"], 0);
        assert_eq!(out["created_at_rfc3339"], "1970-01-01T00:00:00Z");
        assert_eq!(out["items"][0]["not_after_rfc3339"], "2026-11-30T00:53:20Z");
        assert!(out.get("last_checkin_at_rfc3339").is_none());
        assert!(out.get("total_rfc3339").is_none());
    }
}
