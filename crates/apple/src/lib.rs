//! Apple MDM protocol layer: typed plists and pure functions, no network IO.
//!
//! - [`profile`]: configuration-profile payloads and [`profile::enrollment_profile`];
//!   CMS signing of a profile.
//! - [`checkin`]: check-in messages (Authenticate, TokenUpdate, CheckOut, others).
//! - [`command`]: command envelopes and device reports (Idle, Acknowledged, ...).
//! - [`signature`]: `Mdm-Signature` (detached CMS over the body) verification.
//! - [`push`]: APNs request building and response mapping behind a trait.
//! - [`queue`]: the per-device command queue as a state machine.
//!
//! Device input is read by [`plist_in::read_dict`]: XML only, size and depth
//! bounded, typed [`ParseError`]s.

pub mod checkin;
pub mod command;
mod error;
pub mod plist_in;
pub mod profile;
pub mod push;
pub mod queue;
pub mod signature;

pub use error::{ParseError, ProfileError};

/// Lower-case hex SHA-256 of a DER certificate: the key that binds an identity
/// certificate to an enrollment.
pub fn cert_hash(cert_der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        cert_der,
    ))
}

/// `Content-Type` of check-in requests (Authenticate, TokenUpdate, CheckOut, ...).
pub const CHECKIN_CONTENT_TYPE: &str = "application/x-apple-aspen-mdm-checkin";

/// `Content-Type` of command/report requests.
pub const CONNECT_CONTENT_TYPE: &str = "application/x-apple-aspen-mdm";

/// The `code` of a 403 answer that tells a device (iOS 17 / macOS 14 and
/// later) to unenroll. Never answer 401: that also unenrolls, unasked.
pub const UNRECOGNIZED_DEVICE: &str = "com.apple.unrecognized.device";
