//! Commands (server to device) and reports (device to server) on the command
//! URL (`Content-Type: application/x-apple-aspen-mdm`).
//!
//! A command is `{CommandUUID, Command: {RequestType, ...}}`; the device answers
//! with a report `{UDID|EnrollmentID, Status, CommandUUID, <response keys>}`.

use plist::{Data, Dictionary, Value};
use serde::{Deserialize, Serialize};

use crate::ParseError;
use crate::checkin::Enrollment;
use crate::plist_in::{self, opt_bool, opt_data, opt_dict, opt_dicts, opt_int, opt_string, string};

/// The request of a command (`Command` dictionary, tagged by `RequestType`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "RequestType")]
pub enum Command {
    /// Device facts; `Queries` names them (`UDID`, `OSVersion`, ...). Needs
    /// access right 16 (device information) for most queries.
    DeviceInformation {
        #[serde(rename = "Queries")]
        queries: Vec<String>,
    },
    /// Installed profiles (access right 1).
    ProfileList {
        #[serde(
            rename = "ManagedOnly",
            skip_serializing_if = "Option::is_none",
            serialize_with = "crate::profile::some"
        )]
        managed_only: Option<bool>,
    },
    /// Installs a profile (`.mobileconfig` bytes, signed or not; access right 2).
    InstallProfile {
        #[serde(rename = "Payload")]
        payload: Data,
    },
    /// Removes the profile with this top-level `PayloadIdentifier` (access right 2).
    RemoveProfile {
        #[serde(rename = "Identifier")]
        identifier: String,
    },
    /// Installed certificates (access right 4).
    CertificateList {
        #[serde(
            rename = "ManagedOnly",
            skip_serializing_if = "Option::is_none",
            serialize_with = "crate::profile::some"
        )]
        managed_only: Option<bool>,
    },
    /// Installed applications (access right 256).
    InstalledApplicationList {
        #[serde(
            rename = "Identifiers",
            skip_serializing_if = "Option::is_none",
            serialize_with = "crate::profile::some"
        )]
        identifiers: Option<Vec<String>>,
        #[serde(
            rename = "ManagedAppsOnly",
            skip_serializing_if = "Option::is_none",
            serialize_with = "crate::profile::some"
        )]
        managed_apps_only: Option<bool>,
    },
}

/// The `RequestType` values of [`Command`].
pub const REQUEST_TYPES: [&str; 6] = [
    "DeviceInformation",
    "ProfileList",
    "InstallProfile",
    "RemoveProfile",
    "CertificateList",
    "InstalledApplicationList",
];

impl Command {
    /// Its `RequestType`.
    pub fn request_type(&self) -> &'static str {
        match self {
            Command::DeviceInformation { .. } => "DeviceInformation",
            Command::ProfileList { .. } => "ProfileList",
            Command::InstallProfile { .. } => "InstallProfile",
            Command::RemoveProfile { .. } => "RemoveProfile",
            Command::CertificateList { .. } => "CertificateList",
            Command::InstalledApplicationList { .. } => "InstalledApplicationList",
        }
    }
}

/// A command as sent: its UUID and request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    #[serde(rename = "CommandUUID")]
    pub command_uuid: String,
    #[serde(rename = "Command")]
    pub command: Command,
}

impl CommandEnvelope {
    /// A command with a fresh random UUID.
    pub fn new(command: Command) -> Self {
        CommandEnvelope {
            command_uuid: uuid::Uuid::new_v4().to_string(),
            command,
        }
    }

    /// The XML plist body sent to the device.
    pub fn to_xml(&self) -> Result<Vec<u8>, crate::ProfileError> {
        let mut out = Vec::new();
        plist::to_writer_xml(&mut out, self)
            .map_err(|e| crate::ProfileError::Encoding(e.to_string()))?;
        Ok(out)
    }
}

/// Parses a command body (the device side, and round-trip tests).
pub fn parse_command(body: &[u8]) -> Result<CommandEnvelope, ParseError> {
    let d = plist_in::read_dict(body, plist_in::REPORT_MAX_BYTES)?;
    string(&d, "CommandUUID")?;
    let cmd = opt_dict(&d, "Command")?.ok_or(ParseError::MissingKey("Command"))?;
    let rt = string(cmd, "RequestType")?;
    if !REQUEST_TYPES.contains(&rt.as_str()) {
        return Err(ParseError::UnknownRequestType(rt));
    }
    plist::from_value(&Value::Dictionary(d)).map_err(|e| ParseError::Malformed(e.to_string()))
}

/// A report's `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Start of a session: "anything for me?" (no CommandUUID).
    Idle,
    /// The command ran; the report carries its response keys.
    Acknowledged,
    /// The command failed; `ErrorChain` says why.
    Error,
    /// The command was malformed.
    CommandFormatError,
    /// The device cannot run it now (e.g. locked); send it again later.
    NotNow,
}

impl Status {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Idle => "Idle",
            Status::Acknowledged => "Acknowledged",
            Status::Error => "Error",
            Status::CommandFormatError => "CommandFormatError",
            Status::NotNow => "NotNow",
        }
    }

    fn parse(s: &str) -> Result<Self, ParseError> {
        Ok(match s {
            "Idle" => Status::Idle,
            "Acknowledged" => Status::Acknowledged,
            "Error" => Status::Error,
            "CommandFormatError" => Status::CommandFormatError,
            "NotNow" => Status::NotNow,
            other => return Err(ParseError::UnknownStatus(other.to_owned())),
        })
    }

    /// Whether this status ends the command (it leaves the queue).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Acknowledged | Status::Error | Status::CommandFormatError
        )
    }
}

/// One entry of a report's `ErrorChain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorChainItem {
    pub error_code: i64,
    pub error_domain: String,
    pub localized_description: Option<String>,
    pub us_english_description: Option<String>,
}

/// A device report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub enrollment: Enrollment,
    pub status: Status,
    /// Absent only on Idle.
    pub command_uuid: Option<String>,
    /// Sent by current OS versions beside the CommandUUID.
    pub request_type: Option<String>,
    pub error_chain: Vec<ErrorChainItem>,
    /// The whole report (response keys included).
    pub fields: Dictionary,
}

/// Parses a report body (at most [`plist_in::REPORT_MAX_BYTES`]).
pub fn parse_report(body: &[u8]) -> Result<Report, ParseError> {
    let d = plist_in::read_dict(body, plist_in::REPORT_MAX_BYTES)?;
    let enrollment = Enrollment::from_dict(&d)?;
    let status = Status::parse(&string(&d, "Status")?)?;
    let command_uuid = opt_string(&d, "CommandUUID")?.filter(|s| !s.is_empty());
    if status != Status::Idle && command_uuid.is_none() {
        return Err(ParseError::MissingKey("CommandUUID"));
    }
    let mut error_chain = Vec::new();
    for e in opt_dicts(&d, "ErrorChain")?.unwrap_or_default() {
        error_chain.push(ErrorChainItem {
            error_code: opt_int(e, "ErrorCode")?.ok_or(ParseError::MissingKey("ErrorCode"))?,
            error_domain: string(e, "ErrorDomain")?,
            localized_description: opt_string(e, "LocalizedDescription")?,
            us_english_description: opt_string(e, "USEnglishDescription")?,
        });
    }
    Ok(Report {
        enrollment,
        status,
        command_uuid,
        request_type: opt_string(&d, "RequestType")?,
        error_chain,
        fields: d,
    })
}

/// An installed profile from a ProfileList response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledProfile {
    pub identifier: String,
    pub uuid: String,
    pub display_name: Option<String>,
    pub is_managed: Option<bool>,
}

/// A certificate from a CertificateList response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCertificate {
    pub common_name: String,
    pub is_identity: bool,
    pub der: Vec<u8>,
}

/// An application from an InstalledApplicationList response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledApp {
    pub identifier: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    pub short_version: Option<String>,
}

/// The typed result of an Acknowledged command.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    DeviceInformation(Dictionary),
    ProfileList(Vec<InstalledProfile>),
    CertificateList(Vec<ListedCertificate>),
    InstalledApplicationList(Vec<InstalledApp>),
    /// InstallProfile and RemoveProfile answer with the status only.
    Done,
}

impl Report {
    /// The response of the command of type `request_type` (the server knows it
    /// from its queue; the report's own RequestType may be absent).
    pub fn response(&self, request_type: &str) -> Result<Response, ParseError> {
        let d = &self.fields;
        Ok(match request_type {
            "DeviceInformation" => Response::DeviceInformation(
                opt_dict(d, "QueryResponses")?
                    .ok_or(ParseError::MissingKey("QueryResponses"))?
                    .clone(),
            ),
            "ProfileList" => Response::ProfileList(
                opt_dicts(d, "ProfileList")?
                    .ok_or(ParseError::MissingKey("ProfileList"))?
                    .into_iter()
                    .map(|p| {
                        Ok(InstalledProfile {
                            identifier: string(p, "PayloadIdentifier")?,
                            uuid: string(p, "PayloadUUID")?,
                            display_name: opt_string(p, "PayloadDisplayName")?,
                            is_managed: opt_bool(p, "IsManaged")?,
                        })
                    })
                    .collect::<Result<_, ParseError>>()?,
            ),
            "CertificateList" => Response::CertificateList(
                opt_dicts(d, "CertificateList")?
                    .ok_or(ParseError::MissingKey("CertificateList"))?
                    .into_iter()
                    .map(|c| {
                        Ok(ListedCertificate {
                            common_name: string(c, "CommonName")?,
                            is_identity: opt_bool(c, "IsIdentity")?.unwrap_or(false),
                            der: opt_data(c, "Data")?.ok_or(ParseError::MissingKey("Data"))?,
                        })
                    })
                    .collect::<Result<_, ParseError>>()?,
            ),
            "InstalledApplicationList" => Response::InstalledApplicationList(
                opt_dicts(d, "InstalledApplicationList")?
                    .ok_or(ParseError::MissingKey("InstalledApplicationList"))?
                    .into_iter()
                    .map(|a| {
                        Ok(InstalledApp {
                            identifier: opt_string(a, "Identifier")?,
                            name: opt_string(a, "Name")?,
                            version: opt_string(a, "Version")?,
                            short_version: opt_string(a, "ShortVersion")?,
                        })
                    })
                    .collect::<Result<_, ParseError>>()?,
            ),
            "InstallProfile" | "RemoveProfile" => Response::Done,
            other => return Err(ParseError::UnknownRequestType(other.to_owned())),
        })
    }
}
