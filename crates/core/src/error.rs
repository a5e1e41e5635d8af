//! The domain's one error enum. Each variant has a stable code (`ferrocore_proto::codes`) and
//! a message a user may see; the server maps variants to HTTP statuses in one place
//! (`ferrocore_server::http::error`). Log-only detail stays in `Internal`.

use ferrocore_proto::codes;
use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CoreError {
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    #[error("this device registers with mutual authentication: a CSR is required")]
    CsrRequired,
    #[error("invalid device UUID {0:?}")]
    InvalidDeviceUuid(String),
    #[error("{0}")]
    InvalidVersion(String),
    #[error("{platform} {kind} clients are not supported on this endpoint")]
    UnsupportedClient { platform: String, kind: String },
    #[error("{0}")]
    WrongListener(String),
    #[error("a client certificate is required on this endpoint")]
    ClientCertRequired,
    #[error("the client certificate is not known to this server: {0}")]
    CertUnknown(String),
    #[error("the client certificate was revoked ({reason}); register again")]
    CertRevoked { reason: String },
    #[error("the client certificate expired at {not_after}; register again")]
    CertExpired { not_after: i64 },
    #[error("the client certificate was replaced by a newer one")]
    CertSuperseded,
    #[error("unknown device")]
    DeviceUnknown,
    /// A caller named a device (its UUID, serial or subject) that is another user's: the one
    /// ownership refusal of every enrollment path ([`crate::enrollment::ensure_owner`]).
    #[error("this device is registered to another user")]
    DeviceOfAnotherUser,
    /// A certificate-only enrollment (EST, SCEP) for a client that, under the current
    /// mutual-authentication setting (Table 4), checks in on the sync-TLS listener with a
    /// device secret: the certificate would leave it without a working credential.
    #[error(
        "with the current mutual-authentication setting this {platform} {kind} client checks in without a certificate (sync-TLS listener): register it with the agent instead"
    )]
    CertificateNotUsed { platform: String, kind: String },
    /// A storefront certificate asked for by a device that needs none.
    #[error("{0}")]
    StorefrontIdentityNotNeeded(String),
    #[error("this device was retired; register again")]
    DeviceRetired,
    #[error("a device secret is required (header x-ferrocore-device-secret)")]
    DeviceSecretRequired,
    #[error(
        "this device uses mutual authentication: check in on the device listener with its certificate"
    )]
    MutualAuthRequired,
    #[error("{0} not found")]
    NotFound(String),
    #[error("mutual authentication can never be disabled once enabled")]
    MutualAuthIrreversible,
    #[error(
        "{count} device(s) check in on the sync-TLS listener and would lose contact; repeat with force to disable it anyway"
    )]
    LegacyDevicesExist { count: u64 },
    #[error("{0}")]
    InvalidSetting(String),
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("{0}")]
    Conflict(String),
    #[error("certificate {0} is already revoked")]
    AlreadyRevoked(String),
    #[error("this client version does not renew its certificate; register again when it expires")]
    RenewalNotSupported,
    #[error("the renewal window opens at {renew_from} (Unix time)")]
    RenewalNotDue { renew_from: i64 },
    #[error("the CSR's key is the current certificate's key: generate a new key")]
    SameKey,
    #[error("{0}")]
    MigrationNotAllowed(String),
    #[error("the enrollment configuration changed: this device must register again")]
    ReregistrationRequired,
    #[error("internal error")]
    Internal(String),
    /// A refused portal HTTPS certificate; `code` is one of `codes::PORTAL_CERT_*` /
    /// `codes::PKCS12_BAD_PASSWORD`.
    #[error("{message}")]
    PortalCert { code: &'static str, message: String },
    #[error(
        "this storefront client authenticates with the user's password (HTTP Basic and header x-ferrocore-device-uuid)"
    )]
    StorefrontPasswordRequired,
    #[error("this app is published for {app}, not for this {device} device")]
    AppWrongPlatform { app: String, device: String },
    #[error(
        "invalid app identifier {0:?}: reverse-DNS form like com.example.app, at most 255 characters"
    )]
    InvalidAppId(String),
    /// The selected enrollment configuration needs the CSR to carry more (an RSA key, the
    /// external CA's challenge): the agent asks `/api/v1/csr-attributes` and sends a new CSR.
    #[error("{0}")]
    CsrAttributesRequired(String),
    /// The external CA could not be reached or answered something that is not SCEP.
    #[error("the external CA is unreachable: {0}")]
    ExternalCaUnreachable(String),
    /// The external CA answered FAILURE (or a request Ferrocore refuses to send).
    #[error("the external CA refused the request: {0}")]
    ExternalCaRefused(String),
    /// The external CA's TLS server certificate (https:// SCEP URL) is not trusted: unknown
    /// issuer (neither the system roots nor the configured bundle), wrong host name, expired.
    #[error("the external CA's TLS server certificate is not trusted: {0}")]
    ExternalCaTlsUntrusted(String),
    /// The external CA answered PENDING and still did not issue after the configured polls
    /// (GetCertInitial with the same transactionID).
    #[error(
        "the external CA kept the request on hold (PENDING) after {0}; approve it at the CA or configure it to issue automatically"
    )]
    ExternalCaPending(String),
    /// The external CA issued a certificate that does not match the request.
    #[error("the external CA's certificate was refused: {0}")]
    ExternalCaBadCertificate(String),
    /// At creation: the CA certificate the SCEP URL serves is not the configured one.
    #[error(
        "the CA certificate at the SCEP URL has SHA-256 {actual}, not the configured {expected}"
    )]
    CaFingerprintMismatch { expected: String, actual: String },
    /// SCEP: the challenge password is unknown, expired or already used.
    #[error("SCEP challenge password unknown, expired or already used")]
    ScepChallengeInvalid,
    /// SCEP: no certificate was issued for this transaction.
    #[error("no certificate was issued for SCEP transaction {0:?}")]
    ScepTransactionUnknown(String),
    #[error("the EST token is unknown, expired or already used")]
    EstTokenInvalid,
    /// Revoking an enrollment grant that already paid for a certificate.
    #[error("enrollment grant {0} was already used (revoke the certificate it paid for instead)")]
    GrantConsumed(String),
    /// Ferrocore stopped forwarding password checks for this user before the directory's
    /// lockout threshold; retry after the given number of seconds.
    #[error("too many failed password attempts for this user; try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    /// No URL of the directory answered (the failing URLs and reasons are logged).
    #[error("the user directory is unavailable; try again later")]
    DirectoryUnavailable,
    #[error("the account is locked out in the directory")]
    AccountLocked,
    #[error("the account is disabled in the directory")]
    AccountDisabled,
    #[error("the password has expired: change it, then try again")]
    PasswordExpired,
    #[error("the password must be changed before the first logon: change it, then try again")]
    PasswordMustChange,
    #[error("the account has expired in the directory")]
    AccountExpired,
    #[error("this user is not in a directory group allowed to enroll devices")]
    EnrollmentNotAllowed,
    /// At check-in: the device's directory user is no longer allowed (`state`: disabled,
    /// deleted, not_member).
    #[error("the device's user is {0} in the directory")]
    DirectoryUserBlocked(String),
}

impl CoreError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        use CoreError::*;
        match self {
            BadRequest(_) => codes::BAD_REQUEST,
            InvalidCredentials => codes::INVALID_CREDENTIALS,
            InvalidCsr(_) => codes::INVALID_CSR,
            CsrRequired => codes::CSR_REQUIRED,
            InvalidDeviceUuid(_) => codes::INVALID_DEVICE_UUID,
            InvalidVersion(_) => codes::INVALID_VERSION,
            UnsupportedClient { .. } => codes::UNSUPPORTED_CLIENT,
            WrongListener(_) => codes::WRONG_LISTENER,
            ClientCertRequired => codes::CLIENT_CERT_REQUIRED,
            CertUnknown(_) => codes::CERT_UNKNOWN,
            CertRevoked { .. } => codes::CERT_REVOKED,
            CertExpired { .. } => codes::CERT_EXPIRED,
            CertSuperseded => codes::CERT_SUPERSEDED,
            DeviceUnknown => codes::DEVICE_UNKNOWN,
            DeviceOfAnotherUser => codes::DEVICE_OF_ANOTHER_USER,
            CertificateNotUsed { .. } => codes::CERTIFICATE_NOT_USED,
            StorefrontIdentityNotNeeded(_) => codes::STOREFRONT_IDENTITY_NOT_NEEDED,
            DeviceRetired => codes::DEVICE_RETIRED,
            DeviceSecretRequired => codes::DEVICE_SECRET_REQUIRED,
            MutualAuthRequired => codes::MUTUAL_AUTH_REQUIRED,
            NotFound(_) => codes::NOT_FOUND,
            MutualAuthIrreversible => codes::MUTUAL_AUTH_IRREVERSIBLE,
            LegacyDevicesExist { .. } => codes::LEGACY_DEVICES_EXIST,
            InvalidSetting(_) => codes::INVALID_SETTING,
            UserExists(_) => codes::USER_EXISTS,
            Conflict(_) => codes::CONFLICT,
            AlreadyRevoked(_) => codes::ALREADY_REVOKED,
            RenewalNotSupported => codes::RENEWAL_NOT_SUPPORTED,
            RenewalNotDue { .. } => codes::RENEWAL_NOT_DUE,
            SameKey => codes::SAME_KEY,
            MigrationNotAllowed(_) => codes::MIGRATION_NOT_ALLOWED,
            ReregistrationRequired => codes::REREGISTRATION_REQUIRED,
            Internal(_) => codes::INTERNAL,
            PortalCert { code, .. } => code,
            StorefrontPasswordRequired => codes::STOREFRONT_PASSWORD_REQUIRED,
            AppWrongPlatform { .. } => codes::APP_WRONG_PLATFORM,
            InvalidAppId(_) => codes::INVALID_APP_ID,
            CsrAttributesRequired(_) => codes::CSR_ATTRIBUTES_REQUIRED,
            ExternalCaUnreachable(_) => codes::EXTERNAL_CA_UNREACHABLE,
            ExternalCaRefused(_) => codes::EXTERNAL_CA_REFUSED,
            ExternalCaPending(_) => codes::EXTERNAL_CA_PENDING,
            ExternalCaTlsUntrusted(_) => codes::EXTERNAL_CA_TLS_UNTRUSTED,
            ExternalCaBadCertificate(_) => codes::EXTERNAL_CA_BAD_CERTIFICATE,
            CaFingerprintMismatch { .. } => codes::CA_FINGERPRINT_MISMATCH,
            ScepChallengeInvalid => codes::SCEP_CHALLENGE_INVALID,
            ScepTransactionUnknown(_) => codes::SCEP_TRANSACTION_UNKNOWN,
            EstTokenInvalid => codes::EST_TOKEN_INVALID,
            GrantConsumed(_) => codes::GRANT_CONSUMED,
            TooManyAttempts { .. } => codes::TOO_MANY_ATTEMPTS,
            DirectoryUnavailable => codes::DIRECTORY_UNAVAILABLE,
            AccountLocked => codes::ACCOUNT_LOCKED,
            AccountDisabled => codes::ACCOUNT_DISABLED,
            PasswordExpired => codes::PASSWORD_EXPIRED,
            PasswordMustChange => codes::PASSWORD_MUST_CHANGE,
            AccountExpired => codes::ACCOUNT_EXPIRED,
            EnrollmentNotAllowed => codes::ENROLLMENT_NOT_ALLOWED,
            DirectoryUserBlocked(_) => codes::DIRECTORY_USER_BLOCKED,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        CoreError::Internal(e.to_string())
    }
}

impl From<ferrocore_pki::PkiError> for CoreError {
    fn from(e: ferrocore_pki::PkiError) -> Self {
        match e.code() {
            "invalid_csr" | "csr_signature" | "unsupported_key" | "unsupported_signature" => {
                CoreError::InvalidCsr(e.to_string())
            }
            _ => CoreError::Internal(e.to_string()),
        }
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
