//! Check-in messages (`Content-Type: application/x-apple-aspen-mdm-checkin`),
//! dispatched on `MessageType`; the server replies 200 with an empty body.

use plist::Dictionary;

use crate::ParseError;
use crate::plist_in::{self, opt_bool, opt_data, opt_string, string};

/// Who sent a message: the device channel (UDID, or EnrollmentID for a user
/// enrollment) and, on the user channel, the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// Device enrollment: the device's UDID.
    pub udid: Option<String>,
    /// User enrollment: the enrollment's ID (no UDID is sent).
    pub enrollment_id: Option<String>,
    /// User channel (macOS): the user's ID (a GUID).
    pub user_id: Option<String>,
    /// User channel of a user enrollment.
    pub enrollment_user_id: Option<String>,
    pub user_short_name: Option<String>,
    pub user_long_name: Option<String>,
}

impl Enrollment {
    /// Reads the identifying keys; one of UDID and EnrollmentID is required.
    pub fn from_dict(d: &Dictionary) -> Result<Self, ParseError> {
        let e = Enrollment {
            udid: opt_string(d, "UDID")?.filter(|s| !s.is_empty()),
            enrollment_id: opt_string(d, "EnrollmentID")?.filter(|s| !s.is_empty()),
            user_id: opt_string(d, "UserID")?.filter(|s| !s.is_empty()),
            enrollment_user_id: opt_string(d, "EnrollmentUserID")?.filter(|s| !s.is_empty()),
            user_short_name: opt_string(d, "UserShortName")?,
            user_long_name: opt_string(d, "UserLongName")?,
        };
        if e.udid.is_none() && e.enrollment_id.is_none() {
            return Err(ParseError::NoEnrollmentId);
        }
        Ok(e)
    }

    /// The device channel's ID: UDID, else EnrollmentID.
    pub fn device_id(&self) -> &str {
        self.udid
            .as_deref()
            .or(self.enrollment_id.as_deref())
            .unwrap_or_default()
    }

    /// Whether this is a user enrollment (EnrollmentID, no UDID).
    pub fn is_user_enrollment(&self) -> bool {
        self.udid.is_none()
    }

    /// The user channel's user, if the message came on the user channel.
    pub fn user(&self) -> Option<&str> {
        self.user_id
            .as_deref()
            .or(self.enrollment_user_id.as_deref())
    }

    /// The enrollment's ID: the device ID, or `device:user` on the user channel.
    pub fn id(&self) -> String {
        match self.user() {
            Some(u) => format!("{}:{u}", self.device_id()),
            None => self.device_id().to_owned(),
        }
    }
}

/// `Authenticate`: the MDM payload was (re-)installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub enrollment: Enrollment,
    pub topic: String,
    pub build_version: Option<String>,
    pub os_version: Option<String>,
    pub product_name: Option<String>,
    pub serial_number: Option<String>,
    pub imei: Option<String>,
    pub meid: Option<String>,
    /// macOS.
    pub device_name: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
}

/// `TokenUpdate`: the push token and magic (the first one completes enrollment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUpdate {
    pub enrollment: Enrollment,
    pub topic: String,
    /// APNs device token (hex-encode it for the push path).
    pub token: Vec<u8>,
    pub push_magic: String,
    /// iOS: the passcode-clear unlock token.
    pub unlock_token: Option<Vec<u8>>,
    /// Automated Device Enrollment waits in Setup Assistant.
    pub awaiting_configuration: bool,
}

/// `CheckOut`: the MDM payload was removed (only with `CheckOutWhenRemoved`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOut {
    pub enrollment: Enrollment,
    pub topic: String,
}

/// A check-in message.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckinMessage {
    Authenticate(Authenticate),
    TokenUpdate(TokenUpdate),
    CheckOut(CheckOut),
    /// Any other `MessageType` (UserAuthenticate, GetBootstrapToken, ...):
    /// identified, kept whole, not interpreted.
    Other {
        message_type: String,
        enrollment: Enrollment,
        topic: Option<String>,
        fields: Dictionary,
    },
}

impl CheckinMessage {
    /// The `MessageType` value.
    pub fn message_type(&self) -> &str {
        match self {
            CheckinMessage::Authenticate(_) => "Authenticate",
            CheckinMessage::TokenUpdate(_) => "TokenUpdate",
            CheckinMessage::CheckOut(_) => "CheckOut",
            CheckinMessage::Other { message_type, .. } => message_type,
        }
    }

    /// Who sent it.
    pub fn enrollment(&self) -> &Enrollment {
        match self {
            CheckinMessage::Authenticate(m) => &m.enrollment,
            CheckinMessage::TokenUpdate(m) => &m.enrollment,
            CheckinMessage::CheckOut(m) => &m.enrollment,
            CheckinMessage::Other { enrollment, .. } => enrollment,
        }
    }

    /// The push topic the device names (compare it with the configured one).
    pub fn topic(&self) -> Option<&str> {
        match self {
            CheckinMessage::Authenticate(m) => Some(&m.topic),
            CheckinMessage::TokenUpdate(m) => Some(&m.topic),
            CheckinMessage::CheckOut(m) => Some(&m.topic),
            CheckinMessage::Other { topic, .. } => topic.as_deref(),
        }
    }
}

/// Parses a check-in body (at most [`plist_in::CHECKIN_MAX_BYTES`]).
pub fn parse_checkin(body: &[u8]) -> Result<CheckinMessage, ParseError> {
    let d = plist_in::read_dict(body, plist_in::CHECKIN_MAX_BYTES)?;
    let message_type = string(&d, "MessageType")?;
    let enrollment = Enrollment::from_dict(&d)?;
    Ok(match message_type.as_str() {
        "Authenticate" => CheckinMessage::Authenticate(Authenticate {
            topic: string(&d, "Topic")?,
            build_version: opt_string(&d, "BuildVersion")?,
            os_version: opt_string(&d, "OSVersion")?,
            product_name: opt_string(&d, "ProductName")?,
            serial_number: opt_string(&d, "SerialNumber")?,
            imei: opt_string(&d, "IMEI")?,
            meid: opt_string(&d, "MEID")?,
            device_name: opt_string(&d, "DeviceName")?,
            model: opt_string(&d, "Model")?,
            model_name: opt_string(&d, "ModelName")?,
            enrollment,
        }),
        "TokenUpdate" => CheckinMessage::TokenUpdate(TokenUpdate {
            topic: string(&d, "Topic")?,
            token: opt_data(&d, "Token")?.ok_or(ParseError::MissingKey("Token"))?,
            push_magic: string(&d, "PushMagic")?,
            unlock_token: opt_data(&d, "UnlockToken")?,
            awaiting_configuration: opt_bool(&d, "AwaitingConfiguration")?.unwrap_or(false),
            enrollment,
        }),
        "CheckOut" => CheckinMessage::CheckOut(CheckOut {
            topic: string(&d, "Topic")?,
            enrollment,
        }),
        _ => CheckinMessage::Other {
            topic: opt_string(&d, "Topic")?,
            message_type,
            enrollment,
            fields: d,
        },
    })
}
