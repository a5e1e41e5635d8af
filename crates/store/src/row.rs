//! Rows to records, in one place: every database error becomes a `CoreError` through [`Db`],
//! every column is read through [`Cols`], and each record type has one [`FromRow`].

use super::db_err;
use ferrocore_core::error::{CoreError, Result};
use ferrocore_core::store::{CertRecord, DeviceRecord, GrantRecord, PolicyRecord, UserRecord};
use ferrocore_core::storefront::AppRecord;
use ferrocore_proto::{
    AuthMode, CertStatus, ClientKind, DeviceStatus, GrantProtocol, Listener, MigrationStatus,
    Platform,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};
use std::str::FromStr;

/// A database result as a domain result.
pub(crate) trait Db<T> {
    fn db(self) -> Result<T>;
}

impl<T> Db<T> for std::result::Result<T, sqlx::Error> {
    fn db(self) -> Result<T> {
        self.map_err(db_err)
    }
}

/// Typed column reads.
pub(crate) trait Cols {
    /// The column `name` as `T`.
    fn col<'r, T: Decode<'r, Sqlite> + Type<Sqlite>>(&'r self, name: &str) -> Result<T>;

    /// A text column parsed into an enum (`Platform`, `AuthMode`, ...).
    fn parsed<T: FromStr<Err = String>>(&self, name: &str) -> Result<T> {
        self.col::<String>(name)?
            .parse()
            .map_err(CoreError::Internal)
    }

    /// An integer column that must fit `T` (a count, a number of days).
    fn num<T: TryFrom<i64>>(&self, name: &str) -> Result<T>
    where
        T::Error: std::fmt::Display,
    {
        T::try_from(self.col::<i64>(name)?).map_err(CoreError::internal)
    }
}

impl Cols for SqliteRow {
    fn col<'r, T: Decode<'r, Sqlite> + Type<Sqlite>>(&'r self, name: &str) -> Result<T> {
        self.try_get(name).db()
    }
}

/// A record read from one row.
pub(crate) trait FromRow: Sized {
    fn from_row(row: &SqliteRow) -> Result<Self>;

    fn from_rows(rows: &[SqliteRow]) -> Result<Vec<Self>> {
        rows.iter().map(Self::from_row).collect()
    }

    fn from_opt(row: Option<SqliteRow>) -> Result<Option<Self>> {
        row.as_ref().map(Self::from_row).transpose()
    }
}

impl FromRow for DeviceRecord {
    fn from_row(r: &SqliteRow) -> Result<Self> {
        let status: String = r.col("status")?;
        Ok(DeviceRecord {
            id: r.col("id")?,
            device_uuid: r.col("device_uuid")?,
            username: r.col("username")?,
            platform: r.parsed::<Platform>("platform")?,
            client_kind: r.parsed::<ClientKind>("client_kind")?,
            client_version: r.col("client_version")?,
            mode: r.parsed::<AuthMode>("mode")?,
            listener: r.parsed::<Listener>("listener")?,
            status: device_status(&status)?,
            registered_with_ma: r.col("registered_with_ma")?,
            registered_at: r.col("registered_at")?,
            last_checkin_at: r.col("last_checkin_at")?,
            retired_at: r.col("retired_at")?,
            current_cert_serial: r.col("current_cert_serial")?,
            cert_not_after: r.col("cert_not_after")?,
            secret_hash: r.col("secret_hash")?,
            policy: r.col("policy")?,
            previous_cert_serial: r.col("previous_cert_serial")?,
            migration_status: r.parsed::<MigrationStatus>("migration_status")?,
            renewal_count: r.num::<u32>("renewal_count")?,
            enrollment_config: r.col("enrollment_config")?,
            reregister_required: r.col("reregister_required")?,
        })
    }
}

impl FromRow for CertRecord {
    fn from_row(r: &SqliteRow) -> Result<Self> {
        Ok(CertRecord {
            serial: r.col("serial")?,
            device_id: r.col("device_id")?,
            subject: r.col("subject")?,
            not_before: r.col("not_before")?,
            not_after: r.col("not_after")?,
            issued_at: r.col("issued_at")?,
            status: cert_status(&r.col::<String>("status")?)?,
            revoked_at: r.col("revoked_at")?,
            revocation_reason: r.col("revocation_reason")?,
            der: r.col("der")?,
            issue_reason: r.col("issue_reason")?,
            replaces_serial: r.col("replaces_serial")?,
            enrollment_config: r.col("enrollment_config")?,
        })
    }
}

impl FromRow for PolicyRecord {
    fn from_row(r: &SqliteRow) -> Result<Self> {
        let interval: i64 = r.col("checkin_interval_secs")?;
        let lifetime: i64 = r.col("cert_lifetime_days")?;
        let window: Option<i64> = r.col("renewal_window_days")?;
        Ok(PolicyRecord {
            name: r.col("name")?,
            checkin_interval_secs: interval.unsigned_abs(),
            cert_lifetime_days: u32::try_from(lifetime).map_err(CoreError::internal)?,
            renewal_window_days: window
                .map(u32::try_from)
                .transpose()
                .map_err(CoreError::internal)?,
            migrate_client: r.col("migrate_client")?,
        })
    }
}

impl FromRow for UserRecord {
    fn from_row(r: &SqliteRow) -> Result<Self> {
        Ok(UserRecord {
            username: r.col("username")?,
            password_hash: r.col("password_hash")?,
            email: r.col("email")?,
            created_at: r.col("created_at")?,
        })
    }
}

impl FromRow for GrantRecord {
    fn from_row(r: &SqliteRow) -> Result<Self> {
        Ok(GrantRecord {
            id: r.col("id")?,
            secret_hash: r.col("secret_hash")?,
            protocol: r.parsed::<GrantProtocol>("protocol")?,
            username: r.col("username")?,
            platform: r.parsed::<Platform>("platform")?,
            device_uuid: r.col("device_uuid")?,
            created_at: r.col("created_at")?,
            expires_at: r.col("expires_at")?,
            consumed_at: r.col("consumed_at")?,
            consumed_by_serial: r.col("consumed_by_serial")?,
            device_id: r.col("device_id")?,
            revoked_at: r.col("revoked_at")?,
        })
    }
}

impl FromRow for AppRecord {
    fn from_row(r: &SqliteRow) -> Result<Self> {
        Ok(AppRecord {
            id: r.col("id")?,
            platform: r.parsed::<Platform>("platform")?,
            name: r.col("name")?,
            version: r.col("version")?,
            size: r.num::<u64>("size")?,
            sha256: r.col("sha256")?,
            published_at: r.col("published_at")?,
        })
    }
}

pub(crate) fn device_status(s: &str) -> Result<DeviceStatus> {
    match s {
        "active" => Ok(DeviceStatus::Active),
        "retired" => Ok(DeviceStatus::Retired),
        other => Err(CoreError::Internal(format!("bad device status {other}"))),
    }
}

pub(crate) fn cert_status(s: &str) -> Result<CertStatus> {
    match s {
        "active" => Ok(CertStatus::Active),
        "revoked" => Ok(CertStatus::Revoked),
        other => Err(CoreError::Internal(format!(
            "bad certificate status {other}"
        ))),
    }
}
