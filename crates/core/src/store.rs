//! The storage interface the domain owns: one small trait per concern ([`DeviceStore`],
//! [`CertificateStore`], [`GrantStore`], ...), combined into [`Store`] by a blanket impl.
//! Backends (`ferrocore-store`: SQLite now) implement each; every method that changes state is one transaction, so a failure leaves nothing
//! half-written. Times are Unix seconds.

use crate::error::Result;
use async_trait::async_trait;
use ferrocore_proto::{
    AuthMode, CertStatus, ClientKind, DeviceStatus, GrantProtocol, GrantState, Listener,
    MigrationStatus, Platform,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutualAuthRow {
    /// When the setting was enabled; `None` while it never was.
    pub enabled_at: Option<i64>,
    /// The enrollment configuration new mutual-auth identities come from.
    pub enrollment_config: String,
}

#[derive(Debug, Clone)]
pub struct EnrollmentConfigRecord {
    pub name: String,
    /// `local_ca` or `scep`.
    pub kind: String,
    pub ca_cert_pem: String,
    pub created_at: i64,
    /// Set for `scep` configurations (the challenge is a file in the data directory, not here).
    pub scep: Option<ScepParams>,
}

/// Where and how an external SCEP CA is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScepParams {
    /// The CA's SCEP URL (`http://host:port/scep`).
    pub url: String,
    /// SHA-256 of the CA certificate (lowercase hex), checked at creation.
    pub ca_sha256: String,
    /// The certificate requests are encrypted to (the RA certificate of a CA+RA answer, or
    /// the CA certificate), PEM.
    pub recipient_cert_pem: String,
    /// The GetCACaps answer at creation, one capability a line.
    pub caps: String,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub username: String,
    pub password_hash: String,
    pub email: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct PolicyRecord {
    pub name: String,
    pub checkin_interval_secs: u64,
    pub cert_lifetime_days: u32,
    /// `None` = blank = 60 days.
    pub renewal_window_days: Option<u32>,
    pub migrate_client: bool,
}

#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub id: String,
    pub device_uuid: String,
    pub username: String,
    pub platform: Platform,
    pub client_kind: ClientKind,
    pub client_version: String,
    pub mode: AuthMode,
    pub listener: Listener,
    pub status: DeviceStatus,
    pub registered_with_ma: bool,
    pub registered_at: i64,
    pub last_checkin_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub current_cert_serial: Option<String>,
    pub cert_not_after: Option<i64>,
    /// SHA-256 (hex) of a legacy device's secret.
    pub secret_hash: Option<String>,
    pub policy: String,
    /// The certificate a renewal replaced; still accepted until the device checks in with
    /// the new one, then revoked as superseded.
    pub previous_cert_serial: Option<String>,
    pub migration_status: MigrationStatus,
    pub renewal_count: u32,
    /// The enrollment configuration that issued the current identity (mutual mode).
    pub enrollment_config: Option<String>,
    /// The enrollment configuration changed: check-ins are refused until it registers again.
    pub reregister_required: bool,
}

#[derive(Debug, Clone)]
pub struct CertRecord {
    pub serial: String,
    pub device_id: Option<String>,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    pub status: CertStatus,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
    pub der: Vec<u8>,
    /// `registration`, `renewal` or `migration`.
    pub issue_reason: String,
    pub replaces_serial: Option<String>,
    pub enrollment_config: String,
}

/// Everything a registration writes, applied atomically: the device row (found by its
/// uuid, so a re-registration keeps its id), its new certificate, and the revocation of every
/// certificate of its previous identity (superseded).
#[derive(Debug, Clone)]
pub struct Registration {
    pub device: DeviceRecord,
    pub cert: Option<CertRecord>,
}

/// A one-time enrollment grant an enrollment consumes in its transaction.
#[derive(Debug, Clone)]
pub struct GrantUse {
    pub protocol: GrantProtocol,
    /// SHA-256 (hex) of the grant's secret.
    pub secret_hash: String,
}

/// Everything an enrollment (registration, EST, SCEP) writes, applied in one transaction:
/// the registration, the consumption of its one-time grant (the protocol's invalid-grant
/// error, and nothing written, when it was used, revoked or expired meanwhile) and, for
/// SCEP, the request record that answers retransmissions and polls.
#[derive(Debug, Clone)]
pub struct EnrollmentWrite {
    pub registration: Registration,
    pub grant: Option<GrantUse>,
    pub scep_request: Option<ScepRequestKey>,
}

/// What an enrollment wrote: the device id (an existing device's, when its uuid was already
/// registered) and the serials it revoked (the previous identity's certificates).
#[derive(Debug, Clone)]
pub struct Applied {
    pub device_id: String,
    pub revoked: Vec<String>,
}

/// How a new certificate for an existing device replaces its current one.
#[derive(Debug, Clone)]
pub enum ReissueKind {
    /// Renewal: the new certificate becomes current, the one used to authenticate becomes
    /// previous; any other active certificate of the device is revoked as superseded.
    Renewal { authenticated_with: String },
    /// Migration: every earlier active certificate is revoked, the migration status becomes
    /// pending and the device's configuration the certificate's.
    Migration,
    /// A storefront certificate for a legacy device: recorded for the device (revoked with
    /// it), not its identity; earlier active certificates other than the current one are
    /// revoked as superseded; the device row is unchanged.
    Storefront,
}

/// A certificate for an existing device (renewal, EST re-enrollment, SCEP RenewalReq,
/// migration), applied in one transaction with the SCEP request record if any.
#[derive(Debug, Clone)]
pub struct ReissueWrite {
    pub device_id: String,
    pub cert: CertRecord,
    pub kind: ReissueKind,
    pub scep_request: Option<ScepRequestKey>,
}

#[derive(Debug, Clone)]
pub struct CheckinRecord {
    pub device_id: String,
    pub at: i64,
    pub listener: Listener,
    pub mode: AuthMode,
}

/// State changes a check-in carries, applied with its record in one transaction.
#[derive(Debug, Clone, Default)]
pub struct CheckinEffects {
    /// Client version the device reports now (agents upgrade).
    pub client_version: Option<String>,
    /// Revoke this certificate as superseded (the device used its renewed one).
    pub supersede: Option<String>,
    /// The device completed migration: mutual mode on the device listener, secret dropped.
    pub migration_success: bool,
    /// Mark the device's migration as not supported.
    pub migration_not_supported: bool,
    /// The rules now put the device in mutual mode and it used its current certificate:
    /// mutual mode on the device listener, secret dropped.
    pub mutual: bool,
}

/// A certificate presented on a request, with the device it belongs to.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert_serial: String,
    /// The recorded certificate (DER).
    pub cert_der: Vec<u8>,
    pub cert_status: CertStatus,
    pub revocation_reason: Option<String>,
    pub device: DeviceRecord,
}

/// Advanced device search; every filter is optional and they combine with AND.
#[derive(Debug, Clone, Default)]
pub struct DeviceQuery {
    pub username: Option<String>,
    pub platform: Option<Platform>,
    pub client_kind: Option<ClientKind>,
    pub client_version: Option<String>,
    pub mode: Option<AuthMode>,
    pub migration_status: Option<MigrationStatus>,
    pub status: Option<DeviceStatus>,
    /// Certificate expiry range (Unix seconds, inclusive).
    pub cert_expires_after: Option<i64>,
    pub cert_expires_before: Option<i64>,
    /// Inside its policy's renewal window at this time (not yet expired).
    pub in_renewal_window_at: Option<i64>,
    pub last_checkin_after: Option<i64>,
    pub last_checkin_before: Option<i64>,
    pub limit: u32,
    pub offset: u64,
}

/// A device the renewal-at-risk report lists.
#[derive(Debug, Clone)]
pub struct AtRisk {
    pub device: DeviceRecord,
    pub window_days: u32,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// A one-time enrollment grant as stored (migration `0011_enrollment_grants.sql`): a SCEP
/// challenge or an EST token, bound to a user, a platform and optionally a device UUID, usable
/// once before `expires_at` by its own protocol only. Only the secret's SHA-256 is stored.
#[derive(Debug, Clone)]
pub struct GrantRecord {
    pub id: String,
    pub secret_hash: String,
    pub protocol: GrantProtocol,
    pub username: String,
    pub platform: Platform,
    pub device_uuid: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub consumed_by_serial: Option<String>,
    pub device_id: Option<String>,
    pub revoked_at: Option<i64>,
}

impl GrantRecord {
    /// The grant's state at `now` (revoked and consumed exclude each other).
    pub fn state(&self, now: i64) -> GrantState {
        if self.revoked_at.is_some() {
            GrantState::Revoked
        } else if self.consumed_at.is_some() {
            GrantState::Consumed
        } else if self.expires_at <= now {
            GrantState::Expired
        } else {
            GrantState::Active
        }
    }
}

/// Filters of the grant list (they combine with AND); `now` decides expired vs active.
#[derive(Debug, Clone, Default)]
pub struct GrantQuery {
    pub state: Option<GrantState>,
    pub username: Option<String>,
    pub protocol: Option<GrantProtocol>,
    pub now: i64,
    pub limit: u32,
    pub offset: u64,
}

/// What the OCSP responder needs to know about one certificate.
#[derive(Debug, Clone)]
pub struct CertStatusRow {
    pub enrollment_config: String,
    pub status: CertStatus,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RevokedRow {
    pub serial: String,
    pub revoked_at: i64,
    pub reason: String,
}

/// The static SCEP challenge of an enrollment configuration as stored (only its SHA-256).
#[derive(Debug, Clone)]
pub struct ScepChallengeRecord {
    pub hash: String,
    pub username: String,
    pub platform: Platform,
    pub created_at: i64,
}

/// What a presented SCEP challenge grants: a usable one-time grant (found by its hash) or
/// the static challenge of `static_config`.
#[derive(Debug, Clone)]
pub struct ScepGrant {
    pub hash: String,
    pub username: String,
    pub platform: Platform,
    pub device_uuid: Option<String>,
    pub static_config: Option<String>,
}

/// Identifies a SCEP request: its transactionID and the hash over transactionID, signer
/// certificate and CSR (equal for retransmissions).
#[derive(Debug, Clone)]
pub struct ScepRequestKey {
    pub transaction_id: String,
    pub request_hash: String,
    /// SHA-256 (hex) of the request's signer public key (SubjectPublicKeyInfo): only this
    /// key may poll for the transaction's certificate.
    pub signer_spki_sha256: String,
}

/// The database's files as the admin sees them (`GET /api/v1/admin/store`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageStatus {
    /// Size of the database file.
    pub database_bytes: u64,
    /// Size of the write-ahead log now (0 for backends without one).
    pub wal_bytes: u64,
    /// `store.wal_limit_mb`: past it, the log is checkpointed and truncated.
    pub wal_limit_bytes: u64,
    /// Largest log size seen since the server started.
    pub max_wal_bytes: u64,
    /// Times the log passed its limit and was emptied.
    pub wal_truncations: u64,
    /// Times emptying it was put off (readers still in the log).
    pub wal_truncations_busy: u64,
}

/// Settings: mutual authentication (never disabled), the sync-TLS port switch, CRL numbers, and the database's own sizes.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// Sizes of the database and its log.
    async fn storage_status(&self) -> Result<StorageStatus>;

    async fn mutual_auth(&self) -> Result<MutualAuthRow>;

    /// Enables the setting at `at` unless already enabled; never disables. Returns the row.
    async fn enable_mutual_auth(&self, at: i64) -> Result<MutualAuthRow>;

    async fn sync_tls_enabled(&self) -> Result<bool>;

    /// Sets the sync-TLS port switch. Disabling while devices use the sync-TLS listener fails
    /// with `LegacyDevicesExist` unless `force`; the count and the change are one transaction.
    async fn set_sync_tls_enabled(&self, enabled: bool, force: bool) -> Result<()>;

    /// Active devices whose check-ins go to the sync-TLS listener.
    async fn count_sync_tls_devices(&self) -> Result<u64>;

    /// Allocates the next CRL number.
    async fn next_crl_number(&self) -> Result<u64>;
}

/// Local users.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, user: &UserRecord) -> Result<()>;

    async fn user(&self, username: &str) -> Result<Option<UserRecord>>;

    async fn list_users(&self) -> Result<Vec<UserRecord>>;

    /// Removes a user that has no active device (`Conflict` otherwise) and, in the same
    /// transaction, revokes the user's unused enrollment grants (at `at`) and removes the
    /// static SCEP challenges that enroll as the user.
    async fn delete_user(&self, username: &str, at: i64) -> Result<()>;
}

/// Sync policies and their assignment to devices.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    async fn policy(&self, name: &str) -> Result<Option<PolicyRecord>>;

    async fn list_policies(&self) -> Result<Vec<PolicyRecord>>;

    /// Creates or replaces a policy.
    async fn put_policy(&self, policy: &PolicyRecord) -> Result<()>;

    /// Deletes a policy no device uses (`Conflict` otherwise; the default policy never).
    async fn delete_policy(&self, name: &str) -> Result<()>;

    async fn assign_policy(&self, device_id: &str, policy: &str) -> Result<()>;
}

/// Devices: registration, identities, check-ins, renewal, migration, retirement, search.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    async fn device_by_uuid(&self, device_uuid: &str) -> Result<Option<DeviceRecord>>;

    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>>;

    /// Applies an enrollment (registration, EST, SCEP) in one transaction. The device row
    /// is found by its uuid; a device of another user is refused
    /// (`DeviceOfAnotherUser`) and nothing is written.
    async fn apply_enrollment(&self, enrollment: &EnrollmentWrite, at: i64) -> Result<Applied>;

    /// Applies a new certificate for an existing device (renewal, migration) in one
    /// transaction; returns the serials it revoked.
    async fn apply_reissue(&self, reissue: &ReissueWrite, at: i64) -> Result<Vec<String>>;
    async fn identity_by_serial(&self, serial: &str) -> Result<Option<Identity>>;

    async fn record_checkin(&self, checkin: &CheckinRecord, effects: &CheckinEffects)
    -> Result<()>;

    /// Retires every active device whose certificate expired before `expired_before`, revoking
    /// its certificates. Returns how many devices were retired.
    async fn retire_expired(&self, expired_before: i64, at: i64) -> Result<u64>;
    /// Active devices inside their renewal window at `now` that have not renewed, or whose
    /// certificate expired (grace or past it) and that the sweep has not retired yet.
    async fn renewal_at_risk(
        &self,
        now: i64,
        grace_secs: i64,
        limit: u32,
        offset: u64,
    ) -> Result<Page<AtRisk>>;

    async fn list_devices(&self, query: &DeviceQuery) -> Result<Page<DeviceRecord>>;

    async fn checkins(&self, device_id: &str, limit: u32) -> Result<Vec<CheckinRecord>>;

    /// Retires the device and revokes all its active certificates; returns their serials.
    async fn retire_device(&self, id: &str, at: i64) -> Result<Vec<String>>;
}

/// Issued certificates and their revocation.
#[async_trait]
pub trait CertificateStore: Send + Sync {
    /// Certificates (all, or one device's) in the order they were issued (insertion order
    /// breaks ties within one second), so a device's newest certificate is the last one.
    async fn certificates(
        &self,
        device_id: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<Page<CertRecord>>;

    async fn certificate(&self, serial: &str) -> Result<Option<CertRecord>>;

    /// A certificate's issuing configuration and revocation state (one indexed read).
    async fn cert_status(&self, serial: &str) -> Result<Option<CertStatusRow>>;

    async fn revoke_certificate(&self, serial: &str, reason: &str, at: i64) -> Result<()>;

    /// Revoked certificates of one enrollment configuration that have not expired by `now`
    /// (that CA's CRL content).
    async fn revoked_certificates(&self, config: &str, now: i64) -> Result<Vec<RevokedRow>>;
}

/// One-time enrollment grants (SCEP challenges, EST tokens) and the EST enrollment that consumes them.
#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn create_grant(&self, grant: &GrantRecord) -> Result<()>;

    /// The grant of `protocol` whose secret has this SHA-256, in whatever state.
    async fn grant_by_secret(
        &self,
        protocol: GrantProtocol,
        secret_hash: &str,
    ) -> Result<Option<GrantRecord>>;

    async fn grant(&self, id: &str) -> Result<Option<GrantRecord>>;

    /// Grants matching the query, newest first.
    async fn list_grants(&self, query: &GrantQuery) -> Result<Page<GrantRecord>>;

    /// Marks an unused grant revoked at `at` (one conditional write, so it cannot race a
    /// consumption) and returns it; an already revoked grant is returned unchanged.
    /// `NotFound` when unknown, `GrantConsumed` when it already paid for a certificate.
    async fn revoke_grant(&self, id: &str, at: i64) -> Result<GrantRecord>;
}

/// Enrollment configurations (certificate sources) and the selection of one.
#[async_trait]
pub trait EnrollmentConfigStore: Send + Sync {
    async fn enrollment_configs(&self) -> Result<Vec<EnrollmentConfigRecord>>;

    /// Adds a configuration; `Conflict` if the name exists.
    async fn add_enrollment_config(&self, config: &EnrollmentConfigRecord) -> Result<()>;

    /// Records the built-in configuration at start-up (insert or update its CA).
    async fn ensure_enrollment_config(
        &self,
        name: &str,
        kind: &str,
        ca_cert_pem: &str,
        at: i64,
    ) -> Result<()>;

    /// Active mutual-mode devices whose identity is not from `config` (up to `limit`), and
    /// their total.
    async fn devices_outside_config(
        &self,
        config: &str,
        limit: u32,
    ) -> Result<(Vec<DeviceRecord>, u64)>;

    /// Selects `config` and flags the devices outside it as having to register again, in one
    /// transaction.
    async fn select_enrollment_config(&self, config: &str, at: i64) -> Result<()>;
}

/// SCEP: static challenges, enrollments and renewals with their request records, transactions.
#[async_trait]
pub trait ScepStore: Send + Sync {
    /// Sets (`Some`) or clears (`None`) the static challenge of an enrollment configuration.
    async fn set_static_scep_challenge(
        &self,
        config: &str,
        challenge: Option<&ScepChallengeRecord>,
    ) -> Result<()>;

    /// The static challenge whose SHA-256 is `hash`, as a grant.
    async fn static_scep_challenge(&self, hash: &str) -> Result<Option<ScepGrant>>;

    /// The certificate issued for a SCEP request (by its hash), if any.
    async fn scep_request(&self, request_hash: &str) -> Result<Option<CertRecord>>;

    /// The latest certificate issued under a SCEP transactionID, if any.
    /// The latest certificate recorded for `transaction_id` requested by the signer key
    /// `signer_spki_sha256` (hex SHA-256 of its SubjectPublicKeyInfo), if any.
    async fn scep_transaction(
        &self,
        transaction_id: &str,
        signer_spki_sha256: &str,
    ) -> Result<Option<CertRecord>>;
}

/// The whole storage interface: every per-concern trait. A backend implements each of them
/// (SQLite: one file per trait in `ferrocore-store`) and gets `Store` from the blanket impl;
/// the domain holds an `Arc<dyn Store>`.
pub trait Store:
    SettingsStore
    + UserStore
    + PolicyStore
    + DeviceStore
    + CertificateStore
    + GrantStore
    + EnrollmentConfigStore
    + ScepStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: SettingsStore
        + UserStore
        + PolicyStore
        + DeviceStore
        + CertificateStore
        + GrantStore
        + EnrollmentConfigStore
        + ScepStore
        + Send
        + Sync
        + 'static
{
}

/// Every storage trait, for `use ferrocore_core::store::traits::*;` where a concrete backend
/// (`SqliteStore`) is called directly; `Arc<dyn Store>` needs no import.
pub mod traits {
    pub use super::{
        CertificateStore, DeviceStore, EnrollmentConfigStore, GrantStore, PolicyStore, ScepStore,
        SettingsStore, Store, UserStore,
    };
}
