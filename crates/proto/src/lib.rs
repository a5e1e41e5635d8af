//! Wire types shared by the Ferrocore server, the admin CLI and the device agent.
//!
//! This crate owns the JSON shapes of the device API (`/api/v1/register`, `/api/v1/checkin`)
//! and of the admin API (`/api/v1/admin/...`), the enums that name platforms, client kinds and
//! modes, and the stable error codes. It does no IO and knows nothing of ports or headers.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Device-side paths (device listener and sync-TLS listener).
pub mod paths {
    pub const REGISTER: &str = "/api/v1/register";
    pub const CHECKIN: &str = "/api/v1/checkin";
    /// Renewal of the identity certificate (mutual TLS with the current certificate; the only
    /// endpoint that accepts a certificate expired less than 30 days ago).
    pub const RENEW: &str = "/api/v1/renew";
    /// Migration of a legacy device to mutual authentication (sync-TLS listener, device secret).
    pub const MIGRATE: &str = "/api/v1/migrate";
    /// What the agent's CSR must carry for the selected enrollment configuration.
    pub const CSR_ATTRIBUTES: &str = "/api/v1/csr-attributes";
    pub const CRL_DER: &str = "/pki/crl.der";
    pub const CRL_PEM: &str = "/pki/crl.pem";
    pub const CA_PEM: &str = "/pki/ca.pem";
    /// SCEP (RFC 8894): `?operation=GetCACaps|GetCACert|PKIOperation` (device and sync-TLS listeners).
    pub const SCEP: &str = "/scep";
    /// Admin API prefix (admin listener only).
    pub const ADMIN: &str = "/api/v1/admin";
    pub const OPENAPI: &str = "/api/v1/openapi.json";
    /// Header carrying a legacy device's credentials: `<device-uuid>:<device-secret>`.
    pub const DEVICE_SECRET_HEADER: &str = "x-ferrocore-device-secret";
}

/// Percent-encoding (RFC 3986) of path segments and query values, and its decoding: the one
/// implementation the server, the admin client and the agent share.
pub mod percent {
    /// Escapes every byte but the unreserved characters (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
    pub fn encode(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
        out
    }

    const HEX: &[u8; 16] = b"0123456789ABCDEF";

    /// `%XX` escapes to bytes, strictly: a truncated or non-hex escape, or a result that is
    /// not UTF-8, is an error. `+` stands for itself (not a space).
    pub fn decode(s: &str) -> Result<String, String> {
        let bytes = decode_bytes(s, false)?;
        String::from_utf8(bytes).map_err(|_| "escaped value is not UTF-8".into())
    }

    /// Like [`decode`], but a malformed escape stands for itself and invalid UTF-8 is
    /// replaced (for lenient peers, e.g. SCEP clients that leave `+` and `%` unescaped).
    pub fn decode_lossy(s: &str) -> String {
        match decode_bytes(s, true) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => s.to_owned(),
        }
    }

    fn decode_bytes(s: &str, lenient: bool) -> Result<Vec<u8>, String> {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let digits = b.get(i + 1..i + 3);
                match digits.and_then(|d| Some((hex_val(d[0])?, hex_val(d[1])?))) {
                    Some((h, l)) => {
                        out.push(h * 16 + l);
                        i += 3;
                        continue;
                    }
                    None if lenient => {}
                    None if digits.is_none() => return Err("truncated %-escape".into()),
                    None => {
                        let bad = String::from_utf8_lossy(digits.unwrap_or_default());
                        return Err(format!("bad %-escape %{bad}"));
                    }
                }
            }
            out.push(b[i]);
            i += 1;
        }
        Ok(out)
    }

    fn hex_val(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips_and_rejects_bad_escapes() {
            assert_eq!(encode("a+b/c== é"), "a%2Bb%2Fc%3D%3D%20%C3%A9");
            assert_eq!(decode("a%2Bb%2fc+").as_deref(), Ok("a+b/c+"));
            assert_eq!(decode(&encode("x y/ü")).as_deref(), Ok("x y/ü"));
            assert!(decode("%4").is_err());
            assert!(decode("%zz").is_err());
            assert!(decode("%FF").is_err());
            assert_eq!(decode_lossy("%zz%4"), "%zz%4");
            assert_eq!(decode_lossy("a%20b"), "a b");
        }
    }
}

/// A device platform (spec Table 2/4 rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Android,
    Ios,
    Macos,
    Windows,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::Android,
        Platform::Ios,
        Platform::Macos,
        Platform::Windows,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Android => "android",
            Platform::Ios => "ios",
            Platform::Macos => "macos",
            Platform::Windows => "windows",
        }
    }
}

/// The kind of client software speaking for the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// The device agent (Mobile@Work in the spec).
    Agent,
    /// The operating system's MDM client (iOS / macOS MDM).
    Mdm,
    /// An AppConnect app checking in with the device's identity.
    Appconnect,
    /// The app storefront client (Apps@Work in the spec).
    Storefront,
}

impl ClientKind {
    pub const ALL: [ClientKind; 4] = [
        ClientKind::Agent,
        ClientKind::Mdm,
        ClientKind::Appconnect,
        ClientKind::Storefront,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Agent => "agent",
            ClientKind::Mdm => "mdm",
            ClientKind::Appconnect => "appconnect",
            ClientKind::Storefront => "storefront",
        }
    }
}

macro_rules! impl_str_enum {
    ($t:ty, $what:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| format!("unknown {} {s:?}", $what))
            }
        }
    };
}
impl_str_enum!(Platform, "platform");
impl_str_enum!(ClientKind, "client kind");
impl_str_enum!(AuthMode, "mode");
impl_str_enum!(Listener, "listener");
impl_str_enum!(MigrationStatus, "migration status");
impl_str_enum!(GrantProtocol, "grant protocol");
impl_str_enum!(GrantState, "grant state");

/// The enrollment protocol a one-time enrollment grant was created for; it is accepted by
/// that protocol only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GrantProtocol {
    /// A SCEP challenge password (PKCS#9 challengePassword in the CSR).
    Scep,
    /// An EST token (Bearer, or Basic with an empty user name).
    Est,
}

impl GrantProtocol {
    pub const ALL: [GrantProtocol; 2] = [GrantProtocol::Scep, GrantProtocol::Est];
    pub fn as_str(self) -> &'static str {
        match self {
            GrantProtocol::Scep => "scep",
            GrantProtocol::Est => "est",
        }
    }
}

/// Where a one-time enrollment grant stands. Exactly one holds: `revoked` (by an admin,
/// before use), `consumed` (it paid for a certificate), `expired` (unused past its expiry),
/// else `active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GrantState {
    Active,
    Consumed,
    Expired,
    Revoked,
}

impl GrantState {
    pub const ALL: [GrantState; 4] = [
        GrantState::Active,
        GrantState::Consumed,
        GrantState::Expired,
        GrantState::Revoked,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Active => "active",
            GrantState::Consumed => "consumed",
            GrantState::Expired => "expired",
            GrantState::Revoked => "revoked",
        }
    }
}

/// How a device authenticates its check-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Mutual TLS with a client identity certificate, on the device listener.
    Mutual,
    /// A device secret over server-authenticated TLS (no client certificate).
    Legacy,
}

impl AuthMode {
    pub const ALL: [AuthMode; 2] = [AuthMode::Mutual, AuthMode::Legacy];
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Mutual => "mutual",
            AuthMode::Legacy => "legacy",
        }
    }
}

/// Which of the server's device-facing listeners a device must use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Listener {
    /// Registration and check-ins (443 in the spec); client certificate optional at the TLS layer.
    Device,
    /// Server-auth-only check-ins of legacy devices (9997 in the spec).
    SyncTls,
}

impl Listener {
    pub const ALL: [Listener; 2] = [Listener::Device, Listener::SyncTls];
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Device => "device",
            Listener::SyncTls => "sync_tls",
        }
    }
}

/// `POST /api/v1/register` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub username: String,
    pub password: String,
    pub platform: Platform,
    pub client_kind: ClientKind,
    pub client_version: String,
    pub device_uuid: String,
    /// PEM PKCS#10 request for a key the device generated. Required when the device
    /// ends up in mutual mode; the agent always sends one.
    #[serde(default)]
    pub csr_pem: Option<String>,
}

/// `POST /api/v1/register` answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisterResponse {
    pub device_id: String,
    pub mode: AuthMode,
    /// Where to check in from now on.
    pub checkin: CheckinEndpoint,
    /// Mutual mode: the issued client identity certificate (PEM).
    #[serde(default)]
    pub certificate_pem: Option<String>,
    /// The CA chain that issued the client certificate and that the server's
    /// certificate chains to (PEM).
    pub ca_pem: String,
    /// Legacy mode: the secret to present on check-ins.
    #[serde(default)]
    pub device_secret: Option<String>,
    pub policy: PolicyInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CheckinEndpoint {
    pub listener: Listener,
    pub port: u16,
}

/// What the policy tells the agent.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyInfo {
    pub name: String,
    pub checkin_interval_secs: u64,
}

/// `POST /api/v1/checkin` body (all fields optional: identity comes from the certificate or secret).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckinRequest {
    #[serde(default)]
    pub client_version: Option<String>,
}

/// `POST /api/v1/checkin` answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckinResponse {
    pub device_id: String,
    pub mode: AuthMode,
    pub checkin: CheckinEndpoint,
    pub policy: PolicyInfo,
    /// Actions the device should carry out (empty when none are pending).
    #[serde(default)]
    pub actions: Vec<Action>,
    pub server_time: i64,
    /// The identity certificate's lifecycle, for mutual-mode devices.
    #[serde(default)]
    pub certificate: Option<CertificateLifecycle>,
}

/// What the agent needs to renew on time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CertificateLifecycle {
    pub serial: String,
    pub not_after: i64,
    /// The policy's renewal window in days (1..=60).
    pub renewal_window_days: u32,
    /// Start of the renewal window (`not_after - window`).
    pub renew_from: i64,
    /// Last moment a renewal is accepted (`not_after + 30 days`).
    pub grace_until: i64,
    /// Whether this client version renews (Android agent 10.1+, iOS agent 11.1.0+).
    pub supports_renewal: bool,
}

/// `POST /api/v1/renew` and `POST /api/v1/migrate` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsrRequest {
    pub csr_pem: String,
}

/// Answer of `/api/v1/renew` and `/api/v1/migrate`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedIdentity {
    pub certificate_pem: String,
    pub ca_pem: String,
    pub serial: String,
    pub not_after: i64,
    pub mode: AuthMode,
    pub checkin: CheckinEndpoint,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Register again: the device's identity is gone (retired or replaced).
    Reregister { reason: String },
    /// The renewal window has begun: send a CSR for a new key to `/api/v1/renew`.
    Renew { not_after: i64 },
    /// Obtain a mutual-auth identity certificate: send a CSR for a new key to
    /// `/api/v1/migrate` (on the listener this check-in used), then check in on the device
    /// listener with it.
    Migrate,
}

/// Migration of a legacy device to mutual authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MigrationStatus {
    None,
    Pending,
    Success,
    NotSupported,
}

impl MigrationStatus {
    pub const ALL: [MigrationStatus; 4] = [
        MigrationStatus::None,
        MigrationStatus::Pending,
        MigrationStatus::Success,
        MigrationStatus::NotSupported,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationStatus::None => "none",
            MigrationStatus::Pending => "pending",
            MigrationStatus::Success => "success",
            MigrationStatus::NotSupported => "not_supported",
        }
    }
}

/// Every 4xx/5xx answer of every API: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// Stable error codes. A client may match on these strings; they never change meaning.
pub mod codes {
    pub const BAD_REQUEST: &str = "bad_request";
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// The request body has another media type than the endpoint takes.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
    pub const INVALID_CSR: &str = "invalid_csr";
    pub const CSR_REQUIRED: &str = "csr_required";
    pub const INVALID_DEVICE_UUID: &str = "invalid_device_uuid";
    pub const INVALID_VERSION: &str = "invalid_version";
    pub const UNSUPPORTED_CLIENT: &str = "unsupported_client";
    pub const WRONG_LISTENER: &str = "wrong_listener";
    pub const CLIENT_CERT_REQUIRED: &str = "client_certificate_required";
    pub const CERT_UNKNOWN: &str = "certificate_unknown";
    pub const CERT_REVOKED: &str = "certificate_revoked";
    pub const CERT_EXPIRED: &str = "certificate_expired";
    pub const CERT_SUPERSEDED: &str = "certificate_superseded";
    pub const DEVICE_UNKNOWN: &str = "device_unknown";
    /// The named device (UUID, serial, subject) is another user's; nothing was changed.
    pub const DEVICE_OF_ANOTHER_USER: &str = "device_of_another_user";
    /// A certificate-only enrollment (EST, SCEP) for a client that checks in with a device
    /// secret under the current mutual-authentication setting.
    pub const CERTIFICATE_NOT_USED: &str = "certificate_not_used";
    /// A storefront certificate asked for by a device that needs none (it has its identity
    /// certificate, or the storefront rule gives it the password).
    pub const STOREFRONT_IDENTITY_NOT_NEEDED: &str = "storefront_identity_not_needed";
    pub const DEVICE_RETIRED: &str = "device_retired";
    pub const DEVICE_SECRET_REQUIRED: &str = "device_secret_required";
    pub const MUTUAL_AUTH_REQUIRED: &str = "mutual_auth_required";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const NOT_FOUND: &str = "not_found";
    pub const CONFLICT: &str = "conflict";
    pub const MUTUAL_AUTH_IRREVERSIBLE: &str = "mutual_auth_irreversible";
    pub const LEGACY_DEVICES_EXIST: &str = "legacy_devices_exist";
    pub const INVALID_SETTING: &str = "invalid_setting";
    pub const USER_EXISTS: &str = "user_exists";
    pub const ALREADY_REVOKED: &str = "already_revoked";
    pub const INTERNAL: &str = "internal";
    pub const RENEWAL_NOT_SUPPORTED: &str = "renewal_not_supported";
    pub const RENEWAL_NOT_DUE: &str = "renewal_not_due";
    pub const SAME_KEY: &str = "same_key";
    pub const MIGRATION_NOT_ALLOWED: &str = "migration_not_allowed";
    pub const POLICY_IN_USE: &str = "policy_in_use";
    pub const REREGISTRATION_REQUIRED: &str = "reregistration_required";
    /// A forwarded client-certificate header from a source that is not a trusted front end
    /// (or a header form the configuration does not accept).
    pub const UNTRUSTED_FORWARDED_CERT: &str = "untrusted_forwarded_certificate";
    /// Both a TLS client certificate and a forwarded one (or two forwarded ones) were sent.
    pub const AMBIGUOUS_CLIENT_CERT: &str = "ambiguous_client_certificate";
    /// A forwarded client-certificate header that cannot be parsed.
    pub const MALFORMED_FORWARDED_CERT: &str = "malformed_forwarded_certificate";
    // Portal HTTPS certificate upload.
    pub const PORTAL_CERT_MALFORMED: &str = "portal_cert_malformed";
    pub const PORTAL_CERT_KEY_MISMATCH: &str = "portal_cert_key_mismatch";
    pub const PORTAL_CERT_CHAIN_INCOMPLETE: &str = "portal_cert_chain_incomplete";
    pub const PORTAL_CERT_EXPIRED: &str = "portal_cert_expired";
    pub const PORTAL_CERT_NOT_YET_VALID: &str = "portal_cert_not_yet_valid";
    pub const PORTAL_CERT_HOSTNAME_NOT_COVERED: &str = "portal_cert_hostname_not_covered";
    pub const PKCS12_BAD_PASSWORD: &str = "pkcs12_bad_password";
    pub const PORTAL_CERT_NO_PREVIOUS: &str = "portal_cert_no_previous";
    // App storefront and AppConnect.
    pub const STOREFRONT_PASSWORD_REQUIRED: &str = "storefront_password_required";
    pub const APP_WRONG_PLATFORM: &str = "app_wrong_platform";
    pub const INVALID_APP_ID: &str = "invalid_app_id";
    /// The selected enrollment configuration needs more in the CSR (see `/api/v1/csr-attributes`).
    pub const CSR_ATTRIBUTES_REQUIRED: &str = "csr_attributes_required";
    pub const EXTERNAL_CA_UNREACHABLE: &str = "external_ca_unreachable";
    pub const EXTERNAL_CA_REFUSED: &str = "external_ca_refused";
    pub const EXTERNAL_CA_PENDING: &str = "external_ca_pending";
    /// The https:// SCEP URL's TLS server certificate is not trusted (issuer, host name).
    pub const EXTERNAL_CA_TLS_UNTRUSTED: &str = "external_ca_tls_untrusted";
    pub const EXTERNAL_CA_BAD_CERTIFICATE: &str = "external_ca_bad_certificate";
    pub const CA_FINGERPRINT_MISMATCH: &str = "ca_fingerprint_mismatch";
    // SCEP (answered as HTTP errors only when no CertRep can be built).
    pub const SCEP_CHALLENGE_INVALID: &str = "scep_challenge_invalid";
    pub const SCEP_TRANSACTION_UNKNOWN: &str = "scep_transaction_unknown";
    /// Not a SCEP PKIOperation message we can answer (undecodable CMS, no transactionID).
    pub const SCEP_MALFORMED: &str = "scep_malformed";
    /// `operation=` missing or not one of GetCACaps, GetCACert, PKIOperation.
    pub const SCEP_UNKNOWN_OPERATION: &str = "scep_unknown_operation";
    // EST (RFC 7030).
    /// The EST token is unknown, expired or already used.
    pub const EST_TOKEN_INVALID: &str = "est_token_invalid";
    /// The EST body is not base64 (DER PKCS#10 is expected).
    pub const EST_BODY_NOT_BASE64: &str = "est_body_not_base64";
    // Enrollment grants (SCEP challenges, EST tokens).
    /// The grant already paid for a certificate: it can no longer be revoked (revoke the
    /// certificate instead).
    pub const GRANT_CONSUMED: &str = "grant_consumed";
    // The HTTP edge (answers produced below the handlers).
    /// The method is not one this path takes (405; the `Allow` header lists those it does).
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The request is not valid HTTP/1.1 (request line, header syntax).
    pub const MALFORMED_REQUEST: &str = "malformed_request";
    /// Too many request headers, or a request head larger than the server reads (431).
    pub const HEADERS_TOO_LARGE: &str = "headers_too_large";
    /// The request target is longer than the server reads (414).
    pub const URI_TOO_LONG: &str = "uri_too_long";
    /// More than one `Authorization` header: the request is refused, not judged by one of them.
    pub const AMBIGUOUS_AUTHORIZATION: &str = "ambiguous_authorization";
    /// The uploaded portal certificate is a CA certificate, not a server certificate.
    pub const PORTAL_CERT_IS_CA: &str = "portal_cert_is_ca";
    /// The uploaded portal certificate's extended key usage does not allow TLS server use.
    pub const PORTAL_CERT_NOT_SERVER_AUTH: &str = "portal_cert_not_server_auth";
    // Directory sources (Active Directory, LDAP).
    /// Too many failed password attempts for this user: Ferrocore stops before the
    /// directory would lock the account (answer has Retry-After).
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    /// No URL of the user's directory answered (connection, TLS or service-account failure).
    pub const DIRECTORY_UNAVAILABLE: &str = "directory_unavailable";
    /// The directory account is locked out (AD data 775).
    pub const ACCOUNT_LOCKED: &str = "account_locked";
    /// The directory account is disabled (AD data 533).
    pub const ACCOUNT_DISABLED: &str = "account_disabled";
    /// The password has expired (AD data 532).
    pub const PASSWORD_EXPIRED: &str = "password_expired";
    /// The user must change the password before logging on (AD data 773).
    pub const PASSWORD_MUST_CHANGE: &str = "password_must_change";
    /// The directory account has expired (AD data 701).
    pub const ACCOUNT_EXPIRED: &str = "account_expired";
    /// The user is in none of the directory groups allowed to enroll.
    pub const ENROLLMENT_NOT_ALLOWED: &str = "enrollment_not_allowed";
    /// The device's directory user was disabled, deleted or removed from the enrolling groups.
    pub const DIRECTORY_USER_BLOCKED: &str = "directory_user_blocked";
}

// ---------- admin API ----------

/// One page of a listing: the items and how many there are in all.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// `limit` (1 to 1000, default 100) and `offset` (default 0) of a paged listing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// Query of `GET /api/v1/admin/devices`: filters combine; an empty value is no filter.
/// Times are Unix seconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceListQuery {
    pub username: Option<String>,
    pub platform: Option<String>,
    pub client_kind: Option<String>,
    pub client_version: Option<String>,
    /// `mutual` or `legacy`.
    pub mode: Option<String>,
    /// `none`, `pending`, `success` or `not_supported`.
    pub migration_status: Option<String>,
    /// `active` or `retired`.
    pub status: Option<String>,
    pub cert_expires_after: Option<i64>,
    pub cert_expires_before: Option<i64>,
    /// `true`: only devices inside their renewal window now.
    pub in_renewal_window: Option<bool>,
    pub last_checkin_after: Option<i64>,
    pub last_checkin_before: Option<i64>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// Query of `GET /api/v1/admin/certificates`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
pub struct CertListQuery {
    /// Only the certificates of this device.
    pub device_id: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// Query of `GET /api/v1/admin/grants`: newest first; an empty value is no filter.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
pub struct GrantListQuery {
    /// `active`, `consumed`, `expired` or `revoked`.
    pub state: Option<String>,
    pub username: Option<String>,
    /// `scep` or `est`.
    pub protocol: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// Answer of `POST /api/v1/admin/maintenance/sweep`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SweepResult {
    /// Devices retired by this sweep.
    pub retired: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Settings {
    pub mutual_auth_enabled: bool,
    /// Unix time at which mutual authentication was enabled.
    pub mutual_auth_enabled_at: Option<i64>,
    /// Enrollment configuration new mutual-auth identities come from.
    pub mutual_auth_enrollment_config: String,
    pub sync_tls_enabled: bool,
    /// Bound port of the sync-TLS listener, `None` when it is not configured.
    pub sync_tls_port: Option<u16>,
    pub device_port: u16,
    /// How storefront clients authenticate (`password` or `certificate`).
    pub storefront_auth: StorefrontAuth,
}

/// `GET /api/v1/admin/store`: the database's files.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoreStatus {
    pub database_bytes: u64,
    /// Size of the write-ahead log now.
    pub wal_bytes: u64,
    /// `store.wal_limit_mb` in bytes: past it the log is checkpointed and truncated.
    pub wal_limit_bytes: u64,
    /// Largest log size seen since the server started.
    pub max_wal_bytes: u64,
    /// Times the log passed its limit and was emptied (and put off, readers still in it).
    pub wal_truncations: u64,
    pub wal_truncations_busy: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortSettingsRequest {
    pub sync_tls_enabled: bool,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub username: String,
    pub email: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    pub device_id: String,
    pub device_uuid: String,
    pub username: String,
    pub platform: Platform,
    pub client_kind: ClientKind,
    pub client_version: String,
    pub mode: AuthMode,
    pub listener: Listener,
    pub status: DeviceStatus,
    /// Whether mutual authentication was enabled when the device registered.
    pub registered_with_mutual_auth_enabled: bool,
    pub registered_at: i64,
    pub last_checkin_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub current_cert_serial: Option<String>,
    pub cert_not_after: Option<i64>,
    pub policy: String,
    pub migration_status: MigrationStatus,
    pub renewal_count: u32,
    pub enrollment_config: Option<String>,
    /// The enrollment configuration changed: the device must register again.
    pub reregister_required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    Active,
    Retired,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceDetail {
    #[serde(flatten)]
    pub device: Device,
    pub certificates: Vec<Certificate>,
    pub recent_checkins: Vec<Checkin>,
    /// Per-app AppConnect check-ins.
    #[serde(default)]
    pub appconnect: Vec<AppConnectCheckin>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checkin {
    pub at: i64,
    pub listener: Listener,
    pub mode: AuthMode,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Certificate {
    pub serial: String,
    pub device_id: Option<String>,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub status: CertStatus,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
    pub issued_at: i64,
    /// registration | renewal | migration | est | est_renewal
    pub issue_reason: String,
    pub replaces_serial: Option<String>,
    /// The enrollment configuration that issued it (`local`, a local CA's or an external
    /// SCEP CA's name).
    #[serde(default)]
    pub enrollment_config: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CertStatus {
    Active,
    Revoked,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// RFC 5280 reason name, e.g. `key_compromise`; `unspecified` when absent.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Answer of admin operations that refuse because they would affect devices.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AffectedDevices {
    pub count: u64,
}

/// A sync policy, as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Policy {
    pub name: String,
    pub checkin_interval_secs: u64,
    pub cert_lifetime_days: u32,
    /// `None` (blank) means 60 days.
    pub renewal_window_days: Option<u32>,
    /// The window in force (blank = 60).
    pub effective_renewal_window_days: u32,
    pub migrate_client: bool,
}

/// Create or change a sync policy. Fields left out keep their value (defaults on create).
/// `renewal_window_days` takes a number 1..=60, or `""`/`null` for blank (= 60).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyChange {
    #[serde(default)]
    pub checkin_interval_secs: Option<u64>,
    #[serde(default)]
    pub cert_lifetime_days: Option<u32>,
    /// Raw JSON so that blank, numbers and wrong types get the same clear error.
    #[serde(default)]
    pub renewal_window_days: Option<serde_json::Value>,
    #[serde(default)]
    pub migrate_client: Option<bool>,
}

/// `POST /api/v1/admin/devices/{id}/policy`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignPolicy {
    pub policy: String,
}

/// One row of the renewal-at-risk report.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RenewalRisk {
    #[serde(flatten)]
    pub device: Device,
    /// `in_window` (not expired yet), `in_grace` (expired, a client that renews may still
    /// renew), `refused` (expired, a client that cannot renew: refused from expiry on, it must
    /// register again) or `awaiting_retirement` (expired past the grace: refused, retired by
    /// the next sweep).
    pub phase: String,
    /// From when its requests are refused unless it renews: `not_after` for a client that
    /// cannot renew, `not_after + 30 days` for one that can.
    pub refused_from: i64,
    /// When the sweep retires the device record (`not_after + 30 days`).
    pub retire_at: i64,
    pub supports_renewal: bool,
    /// It can only come back by registering again (expired and cannot renew, or past the grace).
    pub must_register_again: bool,
}

/// An enrollment configuration (certificate source for mutual authentication).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollmentConfig {
    pub name: String,
    /// `local_ca` or `scep`
    pub kind: String,
    pub ca_pem: String,
    /// The CA certificate's key algorithm: `ecdsa-p256`, `rsa-2048`, `rsa-3072`,
    /// `rsa-4096` (others by the same pattern, e.g. `ecdsa-p384`).
    #[serde(default)]
    pub ca_key_algorithm: String,
    pub created_at: i64,
    /// Whether new mutual-auth identities come from it.
    pub selected: bool,
    /// `scep`: the external CA's SCEP URL (the challenge is never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `scep`: SHA-256 of the CA certificate (lowercase hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_sha256: Option<String>,
    /// `scep`: the GetCACaps answer at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caps: Option<Vec<String>>,
}

/// `POST /api/v1/admin/est-tokens` body: a one-time EST enrollment token.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstTokenRequest {
    pub username: String,
    pub platform: Platform,
    /// Device UUID the enrollment is bound to; without it the CSR subject or a new one.
    #[serde(default)]
    pub device_uuid: Option<String>,
    /// Validity in seconds (default one day, at most 30 days).
    #[serde(default)]
    pub ttl_secs: Option<i64>,
}

/// A created EST token; `token` is shown this once (only its hash is stored).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EstTokenCreated {
    pub id: String,
    pub token: String,
    pub username: String,
    pub platform: Platform,
    pub device_uuid: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A one-time enrollment grant (SCEP challenge or EST token) as the admin API lists it. The
/// secret itself is shown only when it is created.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollmentGrant {
    pub id: String,
    pub protocol: GrantProtocol,
    pub state: GrantState,
    pub username: String,
    pub platform: Platform,
    /// The device the enrollment is bound to; `None`: the CSR subject or a new device.
    pub device_uuid: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    /// The device that enrolled with it (consumed grants).
    pub device_id: Option<String>,
    /// The certificate it paid for (consumed grants; unknown for SCEP challenges consumed
    /// before grants existed).
    pub cert_serial: Option<String>,
    pub revoked_at: Option<i64>,
}

/// `POST /api/v1/admin/enrollment-configs/{name}` body. `kind` `local_ca` takes nothing
/// else; `scep` needs `url`, `challenge` and `ca_fingerprint`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnrollmentConfig {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// SHA-256 of the external CA certificate, hex (colons allowed): the issuing CA (the one
    /// that signs device certificates, an intermediate if the CA is one), not its root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_fingerprint: Option<String>,
    /// `https://` URLs only: PEM bundle of the CAs trusted for the SCEP endpoint's TLS server
    /// certificate instead of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_pem: Option<String>,
    /// PENDING answers: seconds between GetCertInitial polls (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_secs: Option<u64>,
    /// PENDING answers: how long to keep polling before `external_ca_pending` (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_max_wait_secs: Option<u64>,
}

/// `POST /api/v1/csr-attributes` body: the registering user's credentials. Empty for a
/// registered device, which authenticates as for a check-in (its certificate over mutual TLS
/// before a renewal, its device secret before a migration).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsrAttributesRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// What the agent's CSR must carry for the selected enrollment configuration (nothing for
/// a local CA).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CsrAttributes {
    /// `rsa-2048` when the key must be RSA (at least 2048 bits); absent: any supported key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The PKCS#9 challengePassword attribute the CSR must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_password: Option<String>,
}

/// `POST /api/v1/admin/scep/challenges` body: a one-time SCEP challenge for one registration.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScepChallenge {
    pub username: String,
    pub platform: Platform,
    /// The device the enrollment is for; a new device when absent.
    #[serde(default)]
    pub device_uuid: Option<String>,
    /// Lifetime in seconds (60 to 30 days; default 1 hour).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// `PUT /api/v1/admin/scep/static-challenges/{config}` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticScepChallenge {
    pub username: String,
    pub platform: Platform,
}

/// A created SCEP challenge: shown once, stored only as its hash.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScepChallenge {
    /// The enrollment grant of a one-time challenge (`/api/v1/admin/grants/{id}`); `None`
    /// for a static challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub challenge: String,
    pub username: String,
    pub platform: Platform,
    pub device_uuid: Option<String>,
    /// Unix time; `None` for a static challenge.
    pub expires_at: Option<i64>,
    /// The enrollment configuration of a static challenge.
    pub config: Option<String>,
}

/// `PUT /api/v1/admin/settings/mutual-auth/enrollment` body: without `confirm` a dry run.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectEnrollment {
    pub config: String,
    #[serde(default)]
    pub confirm: bool,
}

/// Answer of a selection change (dry run or applied).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollmentChange {
    pub applied: bool,
    pub current: String,
    pub proposed: String,
    /// Devices that must register again once applied (first 1000).
    pub devices_to_reregister: Vec<Device>,
    pub devices_to_reregister_total: u64,
}

// ---------- portal HTTPS certificate (admin API) ----------

/// `PUT /api/v1/admin/portal-cert` body: PEM chain + key, or PKCS#12 (base64) + password.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalCertUpload {
    /// Leaf first, then the intermediates (the root may be included).
    #[serde(default)]
    pub chain_pem: Option<String>,
    /// PKCS#8, PKCS#1 or SEC1 private key, PEM.
    #[serde(default)]
    pub key_pem: Option<String>,
    /// A PKCS#12 file, standard base64.
    #[serde(default)]
    pub pkcs12_base64: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// Facts about the portal HTTPS certificate being served.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortalCert {
    /// `auto-issued` (from the local CA) or `uploaded`.
    pub source: String,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    /// Certificates in the served chain (leaf included).
    pub chain_length: usize,
    /// SHA-256 of the leaf certificate, hex.
    pub sha256: String,
    /// Whether the chain ends at a root of the system trust store.
    pub publicly_trusted: bool,
    /// Non-fatal findings (e.g. not publicly trusted while mutual auth is enabled).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Whether a previous certificate is kept for rollback.
    pub rollback_available: bool,
}

// ---------- app storefront (Apps@Work) and AppConnect ----------

/// Paths of the storefront listener and the AppConnect check-in.
pub mod storefront_paths {
    pub const APPS: &str = "/storefront/v1/apps";
    pub const PACKAGE: &str = "/storefront/v1/apps/{id}/package";
    pub const APPCONNECT_CHECKIN: &str = "/api/v1/appconnect/checkin";
    /// A storefront certificate for a legacy device the storefront rule asks to use one.
    pub const IDENTITY: &str = "/api/v1/storefront/identity";
    /// Header naming the device on password-authenticated storefront requests.
    pub const DEVICE_UUID_HEADER: &str = "x-ferrocore-device-uuid";
    /// Header carrying the package's SHA-256 (hex) on downloads.
    pub const SHA256_HEADER: &str = "x-ferrocore-sha256";
}

/// The App Storefront Authentication setting. Defaults to `password`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum StorefrontAuth {
    #[default]
    Password,
    Certificate,
}

impl StorefrontAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            StorefrontAuth::Password => "password",
            StorefrontAuth::Certificate => "certificate",
        }
    }
}

impl std::str::FromStr for StorefrontAuth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "password" => Ok(StorefrontAuth::Password),
            "certificate" => Ok(StorefrontAuth::Certificate),
            other => Err(format!(
                "unknown storefront authentication {other:?} (password or certificate)"
            )),
        }
    }
}

/// `GET/PUT /api/v1/admin/settings/storefront-auth`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorefrontSettings {
    pub storefront_auth: StorefrontAuth,
}

/// An app published to the storefront.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct App {
    pub id: String,
    pub platform: Platform,
    pub name: String,
    pub version: String,
    /// Package size in bytes.
    pub size: u64,
    /// SHA-256 of the package, hex.
    pub sha256: String,
    pub published_at: i64,
}

/// Query of `POST /api/v1/admin/apps` (the package is the body).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PublishQuery {
    /// `android` or `ios`.
    pub platform: String,
    pub name: String,
    pub version: String,
}

/// Query of `GET /api/v1/admin/apps`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
pub struct AppListQuery {
    /// Only the apps of this platform.
    pub platform: Option<String>,
}

/// `POST /api/v1/appconnect/checkin` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppConnectCheckinRequest {
    /// Reverse-DNS app identifier, e.g. `com.example.app`.
    pub app_id: String,
}

/// Per-app AppConnect check-ins of a device.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppConnectCheckin {
    pub app_id: String,
    pub first_checkin_at: i64,
    pub last_checkin_at: i64,
    pub count: u64,
}
