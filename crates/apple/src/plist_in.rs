//! Reading untrusted plists: XML only (a binary plist's shared references can
//! expand exponentially), bounded size and nesting, typed field accessors.

use std::io::Cursor;

use plist::stream::{Event, XmlReader};
use plist::{Dictionary, Value};

use crate::ParseError;

/// Deepest nesting accepted (Apple's messages use fewer than 8 levels).
pub const MAX_DEPTH: usize = 32;

/// Largest check-in message accepted (a TokenUpdate with UnlockToken is ~3 KiB).
pub const CHECKIN_MAX_BYTES: usize = 256 * 1024;

/// Largest command report accepted (InstalledApplicationList can be large).
pub const REPORT_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Parses `body` as an XML plist whose top level is a dictionary.
pub fn read_dict(body: &[u8], limit: usize) -> Result<Dictionary, ParseError> {
    if body.len() > limit {
        return Err(ParseError::TooLarge {
            size: body.len(),
            limit,
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let start = body
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(body)
        .iter()
        .find(|b| !b.is_ascii_whitespace());
    if start != Some(&b'<') {
        return Err(ParseError::NotXml);
    }
    // First pass: nesting depth, so that no recursive step (building, dropping or
    // deserialising a Value) meets an adversarial depth.
    let mut depth = 0usize;
    for event in XmlReader::new(Cursor::new(body)) {
        match event.map_err(|e| ParseError::Malformed(e.to_string()))? {
            Event::StartArray(_) | Event::StartDictionary(_) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ParseError::TooDeep(MAX_DEPTH));
                }
            }
            Event::EndCollection => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let value = Value::from_reader_xml(Cursor::new(body))
        .map_err(|e| ParseError::Malformed(e.to_string()))?;
    value.into_dictionary().ok_or(ParseError::NotADictionary)
}

/// An optional string.
pub fn opt_string(d: &Dictionary, key: &'static str) -> Result<Option<String>, ParseError> {
    match d.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ParseError::WrongType {
            key,
            expected: "string",
        }),
    }
}

/// A required string.
pub fn string(d: &Dictionary, key: &'static str) -> Result<String, ParseError> {
    opt_string(d, key)?.ok_or(ParseError::MissingKey(key))
}

/// Optional data (`<data>`).
pub fn opt_data(d: &Dictionary, key: &'static str) -> Result<Option<Vec<u8>>, ParseError> {
    match d.get(key) {
        None => Ok(None),
        Some(Value::Data(b)) => Ok(Some(b.clone())),
        Some(_) => Err(ParseError::WrongType {
            key,
            expected: "data",
        }),
    }
}

/// An optional boolean.
pub fn opt_bool(d: &Dictionary, key: &'static str) -> Result<Option<bool>, ParseError> {
    match d.get(key) {
        None => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b)),
        Some(_) => Err(ParseError::WrongType {
            key,
            expected: "boolean",
        }),
    }
}

/// An optional integer.
pub fn opt_int(d: &Dictionary, key: &'static str) -> Result<Option<i64>, ParseError> {
    match d.get(key) {
        None => Ok(None),
        Some(Value::Integer(i)) => i.as_signed().map(Some).ok_or(ParseError::WrongType {
            key,
            expected: "integer in the signed 64-bit range",
        }),
        Some(_) => Err(ParseError::WrongType {
            key,
            expected: "integer",
        }),
    }
}

/// An optional dictionary.
pub fn opt_dict<'a>(
    d: &'a Dictionary,
    key: &'static str,
) -> Result<Option<&'a Dictionary>, ParseError> {
    match d.get(key) {
        None => Ok(None),
        Some(Value::Dictionary(x)) => Ok(Some(x)),
        Some(_) => Err(ParseError::WrongType {
            key,
            expected: "dictionary",
        }),
    }
}

/// An optional array of dictionaries.
pub fn opt_dicts<'a>(
    d: &'a Dictionary,
    key: &'static str,
) -> Result<Option<Vec<&'a Dictionary>>, ParseError> {
    let wrong = ParseError::WrongType {
        key,
        expected: "array of dictionaries",
    };
    match d.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_dictionary().ok_or_else(|| wrong.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong),
    }
}
