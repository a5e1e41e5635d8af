//! Storage backends of Ferrocore. [`SqliteStore`] is the embedded default: one file in the
//! data directory, WAL mode, migrations in `migrations/sqlite/` applied at open. Every
//! state-changing method is one `BEGIN IMMEDIATE` transaction (`WriteTx`), taken after the
//! process's writer turn so that writers queue in the process rather than in SQLite's busy
//! handler. WAL checkpoints run on their own connection in the background ([`checkpointer`]),
//! never inside a writer's COMMIT.

use async_trait::async_trait;
use ferrocore_core::error::{CoreError, Result};
use ferrocore_core::store::{
    AtRisk, CertRecord, CertStatusRow, CheckinEffects, CheckinRecord, DeviceQuery, DeviceRecord,
    EnrollmentConfigRecord, GrantQuery, GrantRecord, Identity, MutualAuthRow, Page, PolicyRecord,
    Registration, RevokedRow, ScepChallengeRecord, ScepGrant, ScepParams, ScepRequestKey, Store,
    UserRecord,
};
use ferrocore_proto::{
    AuthMode, CertStatus, ClientKind, DeviceStatus, GrantProtocol, Listener, MigrationStatus,
    Platform,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

mod checkpointer;
mod directory;
mod grants;
mod scep;
mod storefront;

/// The WAL file is truncated back to this size after the checkpointer emptied it.
const WAL_SIZE_LIMIT: u64 = 64 << 20;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    /// Alive while the store is: the background checkpointer stops when it cannot upgrade
    /// its `Weak` of this.
    _alive: Arc<()>,
    /// The mutual-auth row, read by every registration and enrollment and written only by this
    /// store's `enable_mutual_auth` and `select_enrollment_config`, which empty it. The epoch
    /// counts those writes, so a read that raced one is not kept (one process per database,
    /// as for the OCSP status cache).
    mutual_auth_cache: std::sync::Mutex<(u64, Option<MutualAuthRow>)>,
    /// Serialises write transactions inside the process: a writer waits here, woken the moment
    /// the previous one commits, instead of in SQLite's busy handler, which polls with sleeps
    /// of 1-100 ms while the lock may already be free (measured: see docs/BENCHMARKS.md, SCEP).
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction (`BEGIN IMMEDIATE`) holding the process's writer turn until it commits
/// or is dropped (rolled back). Derefs to the connection, so `&mut *tx` is an executor.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &sqlx::SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.tx
    }
}

/// The active certificates of one device. `+status` keeps SQLite from answering it through
/// `certificates_revoked (status, ...)`, where every active certificate matches: without the
/// `+` the planner chose that index and each enrollment scanned all active certificates
/// (2.5 ms at 3,000 rows; docs/BENCHMARKS.md, SCEP).
const ACTIVE_CERTS_OF_DEVICE: &str =
    "SELECT serial FROM certificates WHERE device_id = ? AND +status = 'active'";

fn db_err(e: sqlx::Error) -> CoreError {
    CoreError::Internal(format!("database: {e}"))
}

fn parse_enum<T: FromStr<Err = String>>(s: &str) -> Result<T> {
    s.parse().map_err(CoreError::Internal)
}

const DEVICE_COLUMNS: &str = "d.id, d.device_uuid, d.username, d.platform, d.client_kind, \
    d.client_version, d.mode, d.listener, d.status, d.registered_with_ma, d.registered_at, \
    d.last_checkin_at, d.retired_at, d.current_cert_serial, d.cert_not_after, d.secret_hash, d.policy, \
    d.previous_cert_serial, d.migration_status, d.renewal_count, d.enrollment_config, \
    d.reregister_required";

fn device_from_row(r: &SqliteRow) -> Result<DeviceRecord> {
    let status: String = r.try_get("status").map_err(db_err)?;
    Ok(DeviceRecord {
        id: r.try_get("id").map_err(db_err)?,
        device_uuid: r.try_get("device_uuid").map_err(db_err)?,
        username: r.try_get("username").map_err(db_err)?,
        platform: parse_enum::<Platform>(&r.try_get::<String, _>("platform").map_err(db_err)?)?,
        client_kind: parse_enum::<ClientKind>(
            &r.try_get::<String, _>("client_kind").map_err(db_err)?,
        )?,
        client_version: r.try_get("client_version").map_err(db_err)?,
        mode: parse_enum::<AuthMode>(&r.try_get::<String, _>("mode").map_err(db_err)?)?,
        listener: parse_enum::<Listener>(&r.try_get::<String, _>("listener").map_err(db_err)?)?,
        status: device_status(&status)?,
        registered_with_ma: r.try_get("registered_with_ma").map_err(db_err)?,
        registered_at: r.try_get("registered_at").map_err(db_err)?,
        last_checkin_at: r.try_get("last_checkin_at").map_err(db_err)?,
        retired_at: r.try_get("retired_at").map_err(db_err)?,
        current_cert_serial: r.try_get("current_cert_serial").map_err(db_err)?,
        cert_not_after: r.try_get("cert_not_after").map_err(db_err)?,
        secret_hash: r.try_get("secret_hash").map_err(db_err)?,
        policy: r.try_get("policy").map_err(db_err)?,
        previous_cert_serial: r.try_get("previous_cert_serial").map_err(db_err)?,
        migration_status: parse_enum::<MigrationStatus>(
            &r.try_get::<String, _>("migration_status").map_err(db_err)?,
        )?,
        renewal_count: u32::try_from(r.try_get::<i64, _>("renewal_count").map_err(db_err)?)
            .map_err(CoreError::internal)?,
        enrollment_config: r.try_get("enrollment_config").map_err(db_err)?,
        reregister_required: r.try_get("reregister_required").map_err(db_err)?,
    })
}

fn device_status(s: &str) -> Result<DeviceStatus> {
    match s {
        "active" => Ok(DeviceStatus::Active),
        "retired" => Ok(DeviceStatus::Retired),
        other => Err(CoreError::Internal(format!("bad device status {other}"))),
    }
}
fn device_status_str(s: DeviceStatus) -> &'static str {
    match s {
        DeviceStatus::Active => "active",
        DeviceStatus::Retired => "retired",
    }
}
fn cert_status(s: &str) -> Result<CertStatus> {
    match s {
        "active" => Ok(CertStatus::Active),
        "revoked" => Ok(CertStatus::Revoked),
        other => Err(CoreError::Internal(format!(
            "bad certificate status {other}"
        ))),
    }
}

fn cert_from_row(r: &SqliteRow) -> Result<CertRecord> {
    Ok(CertRecord {
        serial: r.try_get("serial").map_err(db_err)?,
        device_id: r.try_get("device_id").map_err(db_err)?,
        subject: r.try_get("subject").map_err(db_err)?,
        not_before: r.try_get("not_before").map_err(db_err)?,
        not_after: r.try_get("not_after").map_err(db_err)?,
        issued_at: r.try_get("issued_at").map_err(db_err)?,
        status: cert_status(&r.try_get::<String, _>("status").map_err(db_err)?)?,
        revoked_at: r.try_get("revoked_at").map_err(db_err)?,
        revocation_reason: r.try_get("revocation_reason").map_err(db_err)?,
        der: r.try_get("der").map_err(db_err)?,
        issue_reason: r.try_get("issue_reason").map_err(db_err)?,
        replaces_serial: r.try_get("replaces_serial").map_err(db_err)?,
        enrollment_config: r.try_get("enrollment_config").map_err(db_err)?,
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Checkpoints are the background checkpointer's job, not the committing writer's
            // (a checkpoint's two fsyncs held every queued writer; docs/BENCHMARKS.md, SCEP).
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string());
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.clone())
            .await
            .map_err(db_err)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| CoreError::Internal(format!("migrations: {e}")))?;
        let alive = Arc::new(());
        let conn = sqlx::ConnectOptions::connect(&opts).await.map_err(db_err)?;
        tokio::spawn(checkpointer::run(conn, Arc::downgrade(&alive)));
        Ok(SqliteStore {
            pool,
            _alive: alive,
            mutual_auth_cache: std::sync::Mutex::new((0, None)),
            writer: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    async fn read_mutual_auth(&self) -> Result<MutualAuthRow> {
        let r = sqlx::query(
            "SELECT enabled_at, carried_over, enrollment_config FROM mutual_auth WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(MutualAuthRow {
            enabled_at: r.try_get("enabled_at").map_err(db_err)?,
            carried_over: r.try_get("carried_over").map_err(db_err)?,
            enrollment_config: r.try_get("enrollment_config").map_err(db_err)?,
        })
    }

    fn lock_mutual_auth_cache(&self) -> std::sync::MutexGuard<'_, (u64, Option<MutualAuthRow>)> {
        // The guarded value is replaced whole, so a poisoned lock still holds a valid one.
        self.mutual_auth_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After any write to `mutual_auth` (committed or not).
    fn forget_mutual_auth(&self) {
        let mut cache = self.lock_mutual_auth_cache();
        cache.0 += 1;
        cache.1 = None;
    }

    async fn select_enrollment_config_tx(&self, config: &str, _at: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE mutual_auth SET enrollment_config = ? WHERE id = 1")
            .bind(config)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "UPDATE devices SET reregister_required = 1 WHERE status = 'active' AND mode = 'mutual' \
             AND COALESCE(enrollment_config, 'local') <> ?",
        )
        .bind(config)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // Devices that had been flagged but whose identity comes from the new selection are
        // fine again (a change back).
        sqlx::query(
            "UPDATE devices SET reregister_required = 0 WHERE reregister_required = 1 \
             AND COALESCE(enrollment_config, 'local') = ?",
        )
        .bind(config)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    /// Runs one checkpoint now (what the background checkpointer does on its tick):
    /// `(wal_frames, checkpointed_frames)`.
    pub async fn checkpoint(&self) -> Result<(i64, i64)> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        checkpointer::passive(&mut conn).await
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin(&self) -> Result<WriteTx> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// Deletes the row `key` names unless `refs_sql` counts rows still using it: the count and
    /// the delete are one transaction. `Conflict` when in use, `NotFound` when absent.
    async fn delete_unless_referenced(
        &self,
        key: &str,
        refs_sql: &'static str,
        delete_sql: &'static str,
        what: impl FnOnce() -> String,
        in_use: impl FnOnce(i64) -> String,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let refs: i64 = sqlx::query_scalar(refs_sql)
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        if refs > 0 {
            return Err(CoreError::Conflict(in_use(refs)));
        }
        let res = sqlx::query(delete_sql)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(CoreError::NotFound(what()));
        }
        tx.commit().await.map_err(db_err)
    }
}

/// Revokes `serials` (those still active) inside `tx`.
async fn revoke_in(tx: &mut WriteTx, serials: &[String], reason: &str, at: i64) -> Result<()> {
    for s in serials {
        sqlx::query(
            "UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? \
             WHERE serial = ? AND status = 'active'",
        )
        .bind(at)
        .bind(reason)
        .bind(s)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn mutual_auth(&self) -> Result<MutualAuthRow> {
        let epoch = {
            let cache = self.lock_mutual_auth_cache();
            if let Some(row) = &cache.1 {
                return Ok(row.clone());
            }
            cache.0
        };
        let row = self.read_mutual_auth().await?;
        let mut cache = self.lock_mutual_auth_cache();
        if cache.0 == epoch {
            cache.1 = Some(row.clone());
        }
        Ok(row)
    }

    async fn enable_mutual_auth(&self, at: i64) -> Result<MutualAuthRow> {
        let res = sqlx::query(
            "UPDATE mutual_auth SET enabled_at = ? WHERE id = 1 AND enabled_at IS NULL",
        )
        .bind(at)
        .execute(&self.pool)
        .await;
        self.forget_mutual_auth();
        res.map_err(db_err)?;
        self.mutual_auth().await
    }

    async fn sync_tls_enabled(&self) -> Result<bool> {
        let v: String =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'sync_tls_enabled'")
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(v == "true")
    }

    async fn set_sync_tls_enabled(&self, enabled: bool, force: bool) -> Result<()> {
        let mut tx = self.begin().await?;
        if !enabled && !force {
            let count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM devices WHERE status = 'active' AND listener = 'sync_tls'",
            )
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            if count > 0 {
                return Err(CoreError::LegacyDevicesExist {
                    count: count.unsigned_abs(),
                });
            }
        }
        sqlx::query("UPDATE settings SET value = ? WHERE key = 'sync_tls_enabled'")
            .bind(if enabled { "true" } else { "false" })
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn count_sync_tls_devices(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM devices WHERE status = 'active' AND listener = 'sync_tls'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(count.unsigned_abs())
    }

    async fn create_user(&self, user: &UserRecord) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO users (username, password_hash, email, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.email)
        .bind(user.created_at)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(CoreError::UserExists(user.username.clone()))
            }
            Err(e) => Err(db_err(e)),
        }
    }

    async fn user(&self, username: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(
            "SELECT username, password_hash, email, created_at FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let rows = sqlx::query(
            "SELECT username, password_hash, email, created_at FROM users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn delete_user(&self, username: &str, at: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM devices WHERE username = ? AND +status = 'active'",
        )
        .bind(username)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if active > 0 {
            return Err(CoreError::Conflict(format!(
                "user {username:?} has {active} active device(s); retire them first"
            )));
        }
        let res = sqlx::query("DELETE FROM users WHERE username = ?")
            .bind(username)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(CoreError::NotFound(format!("user {username:?}")));
        }
        // Their outstanding grants would otherwise still issue certificates.
        sqlx::query(
            "UPDATE enrollment_grants SET revoked_at = ? \
             WHERE username = ? AND consumed_at IS NULL AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(username)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM scep_static_challenges WHERE username = ?")
            .bind(username)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn policy(&self, name: &str) -> Result<Option<PolicyRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!("{POLICY_SELECT} WHERE name = ?")))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| policy_from_row(&r)).transpose()
    }

    async fn list_policies(&self) -> Result<Vec<PolicyRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!("{POLICY_SELECT} ORDER BY name")))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(policy_from_row).collect()
    }

    async fn put_policy(&self, p: &PolicyRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO policies (name, checkin_interval_secs, cert_lifetime_days, \
             renewal_window_days, migrate_client) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT(name) DO UPDATE SET checkin_interval_secs = excluded.checkin_interval_secs, \
             cert_lifetime_days = excluded.cert_lifetime_days, \
             renewal_window_days = excluded.renewal_window_days, \
             migrate_client = excluded.migrate_client",
        )
        .bind(&p.name)
        .bind(i64::try_from(p.checkin_interval_secs).map_err(CoreError::internal)?)
        .bind(i64::from(p.cert_lifetime_days))
        .bind(p.renewal_window_days.map(i64::from))
        .bind(p.migrate_client)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_policy(&self, name: &str) -> Result<()> {
        self.delete_unless_referenced(
            name,
            "SELECT COUNT(*) FROM devices WHERE policy = ?",
            "DELETE FROM policies WHERE name = ?",
            || format!("policy {name:?}"),
            |n| format!("policy {name:?} is assigned to {n} device(s)"),
        )
        .await
    }

    async fn assign_policy(&self, device_id: &str, policy: &str) -> Result<()> {
        let res = sqlx::query("UPDATE devices SET policy = ? WHERE id = ?")
            .bind(policy)
            .bind(device_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(CoreError::NotFound(format!("device {device_id}")));
        }
        Ok(())
    }

    async fn device_by_uuid(&self, device_uuid: &str) -> Result<Option<DeviceRecord>> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.device_uuid = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(device_uuid)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| device_from_row(&r)).transpose()
    }

    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| device_from_row(&r)).transpose()
    }

    async fn apply_registration(&self, reg: &Registration, at: i64) -> Result<String> {
        let mut tx = self.begin().await?;
        let id = registration_in(&mut tx, reg, at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(id)
    }

    async fn create_grant(&self, grant: &GrantRecord) -> Result<()> {
        self.grant_insert(grant).await
    }

    async fn grant_by_secret(
        &self,
        protocol: GrantProtocol,
        secret_hash: &str,
    ) -> Result<Option<GrantRecord>> {
        self.grant_by_hash(protocol, secret_hash).await
    }

    async fn grant(&self, id: &str) -> Result<Option<GrantRecord>> {
        self.grant_by_id(id).await
    }

    async fn list_grants(&self, query: &GrantQuery) -> Result<Page<GrantRecord>> {
        self.grant_list(query).await
    }

    async fn revoke_grant(&self, id: &str, at: i64) -> Result<GrantRecord> {
        self.grant_revoke(id, at).await
    }

    async fn apply_est_enrollment(
        &self,
        reg: &Registration,
        token_hash: Option<&str>,
        at: i64,
    ) -> Result<String> {
        let mut tx = self.begin().await?;
        let id = registration_in(&mut tx, reg, at).await?;
        if let Some(hash) = token_hash {
            let serial = reg.cert.as_ref().map(|c| c.serial.as_str());
            if !grants::consume_in(&mut tx, GrantProtocol::Est, hash, at, serial, &id).await? {
                return Err(CoreError::EstTokenInvalid);
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(id)
    }

    async fn identity_by_serial(&self, serial: &str) -> Result<Option<Identity>> {
        let sql = format!(
            "SELECT c.serial AS cert_serial, c.der AS cert_der, c.status AS cert_status, \
             c.revocation_reason, \
             {DEVICE_COLUMNS} FROM certificates c JOIN devices d ON d.id = c.device_id \
             WHERE c.serial = ?"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| -> Result<Identity> {
            Ok(Identity {
                cert_serial: r.try_get("cert_serial").map_err(db_err)?,
                cert_der: r.try_get("cert_der").map_err(db_err)?,
                cert_status: cert_status(&r.try_get::<String, _>("cert_status").map_err(db_err)?)?,
                revocation_reason: r.try_get("revocation_reason").map_err(db_err)?,
                device: device_from_row(&r)?,
            })
        })
        .transpose()
    }

    async fn record_checkin(&self, c: &CheckinRecord, fx: &CheckinEffects) -> Result<()> {
        let insert =
            sqlx::query("INSERT INTO checkins (device_id, at, listener, mode) VALUES (?, ?, ?, ?)")
                .bind(&c.device_id)
                .bind(c.at)
                .bind(c.listener.as_str())
                .bind(c.mode.as_str());
        let plain = fx.client_version.is_none()
            && fx.supersede.is_none()
            && !fx.migration_success
            && !fx.migration_not_supported;
        if plain {
            // Hot path: one statement; the trigger updates devices.last_checkin_at in it. It
            // writes, so it takes the writer turn like a transaction.
            let _turn = self.writer.lock().await;
            insert.execute(&self.pool).await.map_err(db_err)?;
            return Ok(());
        }
        let mut tx = self.begin().await?;
        insert.execute(&mut *tx).await.map_err(db_err)?;
        if let Some(v) = &fx.client_version {
            sqlx::query("UPDATE devices SET client_version = ? WHERE id = ?")
                .bind(v)
                .bind(&c.device_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        if let Some(old) = &fx.supersede {
            revoke_in(&mut tx, std::slice::from_ref(old), "superseded", c.at).await?;
            sqlx::query("UPDATE devices SET previous_cert_serial = NULL WHERE id = ?")
                .bind(&c.device_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        if fx.migration_success {
            sqlx::query(
                "UPDATE devices SET migration_status = 'success', mode = 'mutual', \
                 listener = 'device', secret_hash = NULL WHERE id = ?",
            )
            .bind(&c.device_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        if fx.migration_not_supported {
            sqlx::query("UPDATE devices SET migration_status = 'not_supported' WHERE id = ?")
                .bind(&c.device_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn apply_renewal(
        &self,
        device_id: &str,
        new: &CertRecord,
        authenticated_with: &str,
        at: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        renewal_in(&mut tx, device_id, new, authenticated_with, at).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn apply_migration(&self, device_id: &str, new: &CertRecord, at: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        let earlier: Vec<String> = sqlx::query_scalar(ACTIVE_CERTS_OF_DEVICE)
            .bind(device_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        revoke_in(&mut tx, &earlier, "superseded", at).await?;
        insert_cert(&mut tx, new).await?;
        sqlx::query(
            "UPDATE devices SET current_cert_serial = ?, cert_not_after = ?, \
             previous_cert_serial = NULL, migration_status = 'pending', enrollment_config = ? \
             WHERE id = ?",
        )
        .bind(&new.serial)
        .bind(new.not_after)
        .bind(&new.enrollment_config)
        .bind(device_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn retire_expired(&self, expired_before: i64, at: i64) -> Result<u64> {
        // `+status`: find the certificates through the expired devices (certificates_device),
        // not by scanning every active certificate (certificates_revoked). Same rows.
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE certificates SET status = 'revoked', revoked_at = ?1, \
             revocation_reason = 'cessation_of_operation' \
             WHERE +status = 'active' AND device_id IN \
             (SELECT id FROM devices WHERE status = 'active' AND cert_not_after < ?2)",
        )
        .bind(at)
        .bind(expired_before)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let res = sqlx::query(
            "UPDATE devices SET status = 'retired', retired_at = ?1 \
             WHERE status = 'active' AND cert_not_after < ?2",
        )
        .bind(at)
        .bind(expired_before)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(res.rows_affected())
    }

    async fn renewal_at_risk(
        &self,
        now: i64,
        grace_secs: i64,
        limit: u32,
        offset: u64,
    ) -> Result<Page<AtRisk>> {
        // Window start = not_after - window days; at risk from then until not_after + grace.
        // (not_after - window <= now is written not_after <= now + window: an index bound.)
        let cond = "d.status = 'active' AND d.cert_not_after IS NOT NULL \
             AND d.cert_not_after >= ?1 - ?2 \
             AND d.cert_not_after <= ?1 + COALESCE(p.renewal_window_days, 60) * 86400";
        // Counted per policy (a handful of rows) over `devices_policy_expiry`, index only; the
        // page walks `devices_cert_not_after` in report order and stops after one page.
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM policies p CROSS JOIN devices d \
             WHERE p.name = d.policy AND {cond}"
        )))
        .bind(now)
        .bind(grace_secs)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS}, COALESCE(p.renewal_window_days, 60) AS window_days \
             FROM devices d JOIN policies p ON p.name = d.policy WHERE {cond} \
             ORDER BY d.cert_not_after, d.id LIMIT ?3 OFFSET ?4"
        )))
        .bind(now)
        .bind(grace_secs)
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let items = rows
            .iter()
            .map(|r| -> Result<AtRisk> {
                Ok(AtRisk {
                    device: device_from_row(r)?,
                    window_days: u32::try_from(r.try_get::<i64, _>("window_days").map_err(db_err)?)
                        .map_err(CoreError::internal)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Page {
            items,
            total: total.unsigned_abs(),
        })
    }

    async fn list_devices(&self, q: &DeviceQuery) -> Result<Page<DeviceRecord>> {
        let mut filters = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        if let Some(u) = &q.username {
            filters.push("d.username = ?");
            binds.push(u.clone());
        }
        if let Some(p) = q.platform {
            filters.push("d.platform = ?");
            binds.push(p.as_str().into());
        }
        if let Some(k) = q.client_kind {
            filters.push("d.client_kind = ?");
            binds.push(k.as_str().into());
        }
        if let Some(v) = &q.client_version {
            filters.push("d.client_version = ?");
            binds.push(v.clone());
        }
        if let Some(m) = q.mode {
            filters.push("d.mode = ?");
            binds.push(m.as_str().into());
        }
        if let Some(m) = q.migration_status {
            filters.push("d.migration_status = ?");
            binds.push(m.as_str().into());
        }
        if let Some(s) = q.status {
            filters.push("d.status = ?");
            binds.push(device_status_str(s).into());
        }
        let mut int_binds: Vec<i64> = Vec::new();
        if let Some(t) = q.cert_expires_after {
            filters.push("d.cert_not_after >= ?");
            int_binds.push(t);
        }
        if let Some(t) = q.cert_expires_before {
            filters.push("d.cert_not_after <= ?");
            int_binds.push(t);
        }
        // Inside the window: not_after - window <= t, written not_after <= t + window so that,
        // with the policy joined (every device has exactly one), it bounds an index range.
        if let Some(t) = q.in_renewal_window_at {
            filters.push(
                "d.cert_not_after >= ? AND d.cert_not_after <= ? + 86400 * \
                 COALESCE(p.renewal_window_days, 60)",
            );
            int_binds.push(t);
            int_binds.push(t);
        }
        if let Some(t) = q.last_checkin_after {
            filters.push("d.last_checkin_at >= ?");
            int_binds.push(t);
        }
        if let Some(t) = q.last_checkin_before {
            filters.push("d.last_checkin_at <= ?");
            int_binds.push(t);
        }
        let where_ = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        // The window filter joins the device's policy. Without a more selective indexed filter
        // (user, migration status), drive the join from the policies (a handful of rows) into
        // `devices_policy_expiry`: one index range per policy, so the count reads no table row.
        let window = q.in_renewal_window_at.is_some();
        let (from, where_) = if window && q.username.is_none() && q.migration_status.is_none() {
            (
                "policies p CROSS JOIN devices d",
                format!("{where_} AND d.policy = p.name"),
            )
        } else if window {
            ("devices d JOIN policies p ON p.name = d.policy", where_)
        } else {
            ("devices d", where_)
        };
        let count_sql = format!("SELECT COUNT(*) FROM {from} {where_}");
        let mut count_q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql));
        for b in &binds {
            count_q = count_q.bind(b.clone());
        }
        for b in &int_binds {
            count_q = count_q.bind(*b);
        }
        let total = count_q.fetch_one(&self.pool).await.map_err(db_err)?;
        // Page plan. Left alone, SQLite reads every match through the filter's index and sorts
        // them to find one page: fine for a few thousand matches, slow for 100,000. Walking
        // `devices_registered` in page order instead stops after about (offset + limit) * rows /
        // matches rows, so it is chosen when that is less than the matches (the count just
        // taken tells the selectivity; MAX(rowid) estimates the rows). Same rows either way.
        let walk = if filters.is_empty() || total <= 0 {
            false
        } else {
            let rows: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) FROM devices")
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
            let wanted = i128::from(q.limit) + i128::from(q.offset);
            wanted * i128::from(rows) < i128::from(total) * i128::from(total)
        };
        let from = match (walk, window) {
            (true, true) => {
                "devices d INDEXED BY devices_registered JOIN policies p ON p.name = d.policy"
            }
            (true, false) => "devices d INDEXED BY devices_registered",
            (false, _) => from,
        };
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM {from} {where_} ORDER BY d.registered_at, d.id LIMIT ? OFFSET ?"
        );
        let mut list_q = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            list_q = list_q.bind(b.clone());
        }
        for b in &int_binds {
            list_q = list_q.bind(*b);
        }
        let rows = list_q
            .bind(i64::from(q.limit))
            .bind(i64::try_from(q.offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(Page {
            items: rows.iter().map(device_from_row).collect::<Result<_>>()?,
            total: total.unsigned_abs(),
        })
    }

    async fn checkins(&self, device_id: &str, limit: u32) -> Result<Vec<CheckinRecord>> {
        let rows = sqlx::query(
            "SELECT device_id, at, listener, mode FROM checkins WHERE device_id = ? \
             ORDER BY at DESC, id DESC LIMIT ?",
        )
        .bind(device_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| -> Result<CheckinRecord> {
                Ok(CheckinRecord {
                    device_id: r.try_get("device_id").map_err(db_err)?,
                    at: r.try_get("at").map_err(db_err)?,
                    listener: parse_enum(&r.try_get::<String, _>("listener").map_err(db_err)?)?,
                    mode: parse_enum(&r.try_get::<String, _>("mode").map_err(db_err)?)?,
                })
            })
            .collect()
    }

    async fn retire_device(&self, id: &str, at: i64) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM devices WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        match status.as_deref() {
            None => return Err(CoreError::NotFound(format!("device {id}"))),
            Some("retired") => {
                return Err(CoreError::Conflict(format!(
                    "device {id} is already retired"
                )));
            }
            _ => {}
        }
        let serials: Vec<String> = sqlx::query_scalar(ACTIVE_CERTS_OF_DEVICE)
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        revoke_in(&mut tx, &serials, "cessation_of_operation", at).await?;
        sqlx::query("UPDATE devices SET status = 'retired', retired_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(serials)
    }

    async fn certificates(
        &self,
        device_id: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<Page<CertRecord>> {
        let (where_, bind) = match device_id {
            Some(d) => ("WHERE device_id = ?", Some(d.to_owned())),
            None => ("", None),
        };
        let mut cq = sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM certificates {where_}"
        )));
        if let Some(b) = &bind {
            cq = cq.bind(b.clone());
        }
        let total = cq.fetch_one(&self.pool).await.map_err(db_err)?;
        let mut lq = sqlx::query(AssertSqlSafe(format!(
            "SELECT * FROM certificates {where_} ORDER BY issued_at, rowid LIMIT ? OFFSET ?"
        )));
        if let Some(b) = &bind {
            lq = lq.bind(b.clone());
        }
        let rows = lq
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(Page {
            items: rows.iter().map(cert_from_row).collect::<Result<_>>()?,
            total: total.unsigned_abs(),
        })
    }

    async fn certificate(&self, serial: &str) -> Result<Option<CertRecord>> {
        let row = sqlx::query("SELECT * FROM certificates WHERE serial = ?")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| cert_from_row(&r)).transpose()
    }

    async fn cert_status(&self, serial: &str) -> Result<Option<CertStatusRow>> {
        let row = sqlx::query(
            "SELECT enrollment_config, status, revoked_at, revocation_reason FROM certificates \
             WHERE serial = ?",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| -> Result<CertStatusRow> {
            Ok(CertStatusRow {
                enrollment_config: r.try_get("enrollment_config").map_err(db_err)?,
                status: cert_status(&r.try_get::<String, _>("status").map_err(db_err)?)?,
                revoked_at: r.try_get("revoked_at").map_err(db_err)?,
                revocation_reason: r.try_get("revocation_reason").map_err(db_err)?,
            })
        })
        .transpose()
    }

    async fn revoke_certificate(&self, serial: &str, reason: &str, at: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM certificates WHERE serial = ?")
                .bind(serial)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        match status.as_deref() {
            None => return Err(CoreError::NotFound(format!("certificate {serial}"))),
            Some("revoked") => return Err(CoreError::AlreadyRevoked(serial.to_owned())),
            _ => {}
        }
        revoke_in(&mut tx, &[serial.to_owned()], reason, at).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn revoked_certificates(&self, config: &str, now: i64) -> Result<Vec<RevokedRow>> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM certificates \
             WHERE status = 'revoked' AND not_after >= ? AND enrollment_config = ? \
             ORDER BY revoked_at, serial",
        )
        .bind(now)
        .bind(config)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| -> Result<RevokedRow> {
                Ok(RevokedRow {
                    serial: r.try_get("serial").map_err(db_err)?,
                    revoked_at: r
                        .try_get::<Option<i64>, _>("revoked_at")
                        .map_err(db_err)?
                        .unwrap_or(0),
                    reason: r
                        .try_get::<Option<String>, _>("revocation_reason")
                        .map_err(db_err)?
                        .unwrap_or_else(|| "unspecified".into()),
                })
            })
            .collect()
    }

    async fn enrollment_configs(&self) -> Result<Vec<EnrollmentConfigRecord>> {
        let rows = sqlx::query(
            "SELECT name, kind, ca_cert_pem, created_at, scep_url, scep_ca_sha256, \
             scep_recipient_pem, scep_caps FROM enrollment_configs ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| -> Result<EnrollmentConfigRecord> {
                let url: Option<String> = r.try_get("scep_url").map_err(db_err)?;
                let scep = match url {
                    Some(url) => Some(ScepParams {
                        url,
                        ca_sha256: r.try_get("scep_ca_sha256").map_err(db_err)?,
                        recipient_cert_pem: r.try_get("scep_recipient_pem").map_err(db_err)?,
                        caps: r.try_get("scep_caps").map_err(db_err)?,
                    }),
                    None => None,
                };
                Ok(EnrollmentConfigRecord {
                    name: r.try_get("name").map_err(db_err)?,
                    kind: r.try_get("kind").map_err(db_err)?,
                    ca_cert_pem: r.try_get("ca_cert_pem").map_err(db_err)?,
                    created_at: r.try_get("created_at").map_err(db_err)?,
                    scep,
                })
            })
            .collect()
    }

    async fn add_enrollment_config(&self, c: &EnrollmentConfigRecord) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO enrollment_configs (name, kind, ca_cert_pem, created_at, scep_url, \
             scep_ca_sha256, scep_recipient_pem, scep_caps) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.name)
        .bind(&c.kind)
        .bind(&c.ca_cert_pem)
        .bind(c.created_at)
        .bind(c.scep.as_ref().map(|p| p.url.as_str()))
        .bind(c.scep.as_ref().map(|p| p.ca_sha256.as_str()))
        .bind(c.scep.as_ref().map(|p| p.recipient_cert_pem.as_str()))
        .bind(c.scep.as_ref().map(|p| p.caps.as_str()))
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(CoreError::Conflict(
                format!("enrollment configuration {:?} already exists", c.name),
            )),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn ensure_enrollment_config(
        &self,
        name: &str,
        kind: &str,
        ca_cert_pem: &str,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrollment_configs (name, kind, ca_cert_pem, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, ca_cert_pem = excluded.ca_cert_pem",
        )
        .bind(name)
        .bind(kind)
        .bind(ca_cert_pem)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn devices_outside_config(
        &self,
        config: &str,
        limit: u32,
    ) -> Result<(Vec<DeviceRecord>, u64)> {
        let cond = "d.status = 'active' AND d.mode = 'mutual' AND d.reregister_required = 0 \
                    AND COALESCE(d.enrollment_config, 'local') <> ?";
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM devices d WHERE {cond}"
        )))
        .bind(config)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d WHERE {cond} ORDER BY d.registered_at, d.id LIMIT ?"
        )))
        .bind(config)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok((
            rows.iter().map(device_from_row).collect::<Result<_>>()?,
            total.unsigned_abs(),
        ))
    }

    async fn select_enrollment_config(&self, config: &str, at: i64) -> Result<()> {
        let res = self.select_enrollment_config_tx(config, at).await;
        self.forget_mutual_auth();
        res
    }

    async fn next_crl_number(&self) -> Result<u64> {
        let mut tx = self.begin().await?;
        let v: String = sqlx::query_scalar(
            "UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) \
             WHERE key = 'crl_number' RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        v.parse().map_err(CoreError::internal)
    }

    async fn set_static_scep_challenge(
        &self,
        config: &str,
        challenge: Option<&ScepChallengeRecord>,
    ) -> Result<()> {
        self.scep_set_static(config, challenge).await
    }

    async fn static_scep_challenge(&self, hash: &str) -> Result<Option<ScepGrant>> {
        self.scep_static_grant(hash).await
    }

    async fn apply_scep_enrollment(
        &self,
        reg: &Registration,
        grant: &ScepGrant,
        request: &ScepRequestKey,
        at: i64,
    ) -> Result<String> {
        self.scep_enroll(reg, grant, request, at).await
    }

    async fn scep_request(&self, request_hash: &str) -> Result<Option<CertRecord>> {
        self.scep_request_cert(request_hash).await
    }

    async fn scep_transaction(
        &self,
        transaction_id: &str,
        signer_spki_sha256: &str,
    ) -> Result<Option<CertRecord>> {
        self.scep_transaction_cert(transaction_id, signer_spki_sha256)
            .await
    }

    async fn apply_scep_renewal(
        &self,
        device_id: &str,
        new: &CertRecord,
        authenticated_with: &str,
        request: &ScepRequestKey,
        at: i64,
    ) -> Result<()> {
        self.scep_renew(device_id, new, authenticated_with, request, at)
            .await
    }
}

async fn insert_cert(tx: &mut WriteTx, c: &CertRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO certificates (serial, device_id, subject, not_before, not_after, issued_at, \
         status, revoked_at, revocation_reason, der, issue_reason, replaces_serial, \
         enrollment_config) VALUES (?, ?, ?, ?, ?, ?, 'active', NULL, NULL, ?, ?, ?, ?)",
    )
    .bind(&c.serial)
    .bind(&c.device_id)
    .bind(&c.subject)
    .bind(c.not_before)
    .bind(c.not_after)
    .bind(c.issued_at)
    .bind(&c.der)
    .bind(&c.issue_reason)
    .bind(&c.replaces_serial)
    .bind(&c.enrollment_config)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

const POLICY_SELECT: &str = "SELECT name, checkin_interval_secs, cert_lifetime_days, \
    renewal_window_days, migrate_client FROM policies";

fn policy_from_row(r: &SqliteRow) -> Result<PolicyRecord> {
    let interval: i64 = r.try_get("checkin_interval_secs").map_err(db_err)?;
    let lifetime: i64 = r.try_get("cert_lifetime_days").map_err(db_err)?;
    let window: Option<i64> = r.try_get("renewal_window_days").map_err(db_err)?;
    Ok(PolicyRecord {
        name: r.try_get("name").map_err(db_err)?,
        checkin_interval_secs: interval.unsigned_abs(),
        cert_lifetime_days: u32::try_from(lifetime).map_err(CoreError::internal)?,
        renewal_window_days: window
            .map(u32::try_from)
            .transpose()
            .map_err(CoreError::internal)?,
        migrate_client: r.try_get("migrate_client").map_err(db_err)?,
    })
}

fn user_from_row(r: &SqliteRow) -> Result<UserRecord> {
    Ok(UserRecord {
        username: r.try_get("username").map_err(db_err)?,
        password_hash: r.try_get("password_hash").map_err(db_err)?,
        email: r.try_get("email").map_err(db_err)?,
        created_at: r.try_get("created_at").map_err(db_err)?,
    })
}

/// The registration steps inside a caller's transaction (registration and SCEP enrollment).
pub(crate) async fn registration_in(
    tx: &mut WriteTx,
    reg: &Registration,
    at: i64,
) -> Result<String> {
    // The device row is found by its uuid inside the transaction, so two registrations of
    // one new device racing each other end as one device (the later identity wins) rather
    // than a uniqueness failure.
    let existing: Option<String> =
        sqlx::query_scalar("SELECT id FROM devices WHERE device_uuid = ?")
            .bind(&reg.device.device_uuid)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
    let mut device = reg.device.clone();
    if let Some(id) = existing {
        device.id = id;
    }
    let d = &device;
    let previous: Vec<String> = sqlx::query_scalar(ACTIVE_CERTS_OF_DEVICE)
        .bind(&d.id)
        .fetch_all(&mut **tx)
        .await
        .map_err(db_err)?;
    revoke_in(tx, &previous, "superseded", at).await?;
    // The device row carries its current certificate from the start (no INSERT-then-UPDATE:
    // each devices index is written once); the certificate row, which references the
    // device, follows.
    let cert = reg.cert.as_ref();
    sqlx::query(
        "INSERT INTO devices (id, device_uuid, username, platform, client_kind, client_version, \
         mode, listener, status, registered_with_ma, registered_at, last_checkin_at, retired_at, \
         current_cert_serial, cert_not_after, secret_hash, policy, enrollment_config) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?) \
         ON CONFLICT(id) DO UPDATE SET username = excluded.username, platform = excluded.platform, \
         client_kind = excluded.client_kind, client_version = excluded.client_version, \
         mode = excluded.mode, listener = excluded.listener, status = excluded.status, \
         registered_with_ma = excluded.registered_with_ma, registered_at = excluded.registered_at, \
         last_checkin_at = NULL, retired_at = NULL, \
         current_cert_serial = excluded.current_cert_serial, \
         cert_not_after = excluded.cert_not_after, secret_hash = excluded.secret_hash, \
         policy = excluded.policy, previous_cert_serial = NULL, migration_status = 'none', \
         renewal_count = 0, enrollment_config = excluded.enrollment_config, \
         reregister_required = 0",
    )
    .bind(&d.id)
    .bind(&d.device_uuid)
    .bind(&d.username)
    .bind(d.platform.as_str())
    .bind(d.client_kind.as_str())
    .bind(&d.client_version)
    .bind(d.mode.as_str())
    .bind(d.listener.as_str())
    .bind(device_status_str(d.status))
    .bind(d.registered_with_ma)
    .bind(d.registered_at)
    .bind(cert.map(|c| c.serial.as_str()))
    .bind(cert.map(|c| c.not_after))
    .bind(&d.secret_hash)
    .bind(&d.policy)
    .bind(&d.enrollment_config)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    if let Some(c) = cert {
        let mut c = c.clone();
        c.device_id = Some(d.id.clone());
        insert_cert(tx, &c).await?;
    }
    Ok(device.id)
}

/// The renewal steps inside a caller's transaction (renewal and SCEP RenewalReq).
pub(crate) async fn renewal_in(
    tx: &mut WriteTx,
    device_id: &str,
    new: &CertRecord,
    authenticated_with: &str,
    at: i64,
) -> Result<()> {
    let others: Vec<String> = sqlx::query_scalar(
        "SELECT serial FROM certificates WHERE device_id = ? AND +status = 'active' AND serial <> ?",
    )
    .bind(device_id)
    .bind(authenticated_with)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_err)?;
    revoke_in(tx, &others, "superseded", at).await?;
    insert_cert(tx, new).await?;
    sqlx::query(
        "UPDATE devices SET current_cert_serial = ?, cert_not_after = ?, \
         previous_cert_serial = ?, renewal_count = renewal_count + 1 WHERE id = ?",
    )
    .bind(&new.serial)
    .bind(new.not_after)
    .bind(authenticated_with)
    .bind(device_id)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    async fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn mutual_auth_reads_follow_every_write_of_the_row() {
        let (_d, s) = open().await;
        // First read fills the in-memory copy; each write must be visible to the next read.
        assert_eq!(s.mutual_auth().await.unwrap().enrollment_config, "local");
        s.select_enrollment_config("corp-scep", 10).await.unwrap();
        assert_eq!(
            s.mutual_auth().await.unwrap().enrollment_config,
            "corp-scep"
        );
        assert_eq!(s.mutual_auth().await.unwrap().enabled_at, None);
        s.enable_mutual_auth(20).await.unwrap();
        let row = s.mutual_auth().await.unwrap();
        assert_eq!(row.enabled_at, Some(20));
        assert_eq!(row.enrollment_config, "corp-scep");
        s.select_enrollment_config("local", 30).await.unwrap();
        assert_eq!(s.mutual_auth().await.unwrap().enrollment_config, "local");
        // A second store on the same file reads what the first wrote.
        let other = SqliteStore::open(&_d.path().join("t.db")).await.unwrap();
        assert_eq!(
            other.mutual_auth().await.unwrap(),
            s.mutual_auth().await.unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn committed_pages_reach_the_database_file_without_a_checkpointing_writer() {
        let (d, s) = open().await;
        let autocheckpoint: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(
            autocheckpoint, 0,
            "writers must not checkpoint in their COMMIT"
        );
        for i in 0..50 {
            s.create_user(&UserRecord {
                username: format!("user{i}"),
                password_hash: "x".into(),
                email: None,
                created_at: i,
            })
            .await
            .unwrap();
        }
        // Only the database file is copied (not the WAL): the users are in it once the
        // background checkpointer has run. Bounded wait, polled.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let copy = d
                .path()
                .join(format!("copy-{}.db", deadline.elapsed().as_nanos()));
            std::fs::copy(d.path().join("t.db"), &copy).unwrap();
            let users = async {
                let opts = SqliteConnectOptions::new().filename(&copy).read_only(true);
                let mut c = sqlx::ConnectOptions::connect(&opts).await.ok()?;
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM users WHERE username LIKE 'user%'",
                )
                .fetch_one(&mut c)
                .await
                .ok()
            }
            .await;
            if users == Some(50) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not checkpointed: {users:?}"
            );
            tokio::time::sleep(checkpointer::TICK).await;
        }
        let (wal, copied) = s.checkpoint().await.unwrap();
        assert_eq!(wal, copied, "everything in the WAL is in the database file");
    }

    #[tokio::test]
    async fn mutual_auth_can_never_be_disabled_even_by_raw_sql() {
        let (_d, s) = open().await;
        assert_eq!(s.mutual_auth().await.unwrap().enabled_at, None);
        let row = s.enable_mutual_auth(1000).await.unwrap();
        assert_eq!(row.enabled_at, Some(1000));
        // Enabling again keeps the first time.
        assert_eq!(
            s.enable_mutual_auth(2000).await.unwrap().enabled_at,
            Some(1000)
        );
        let err = sqlx::query("UPDATE mutual_auth SET enabled_at = NULL")
            .execute(s.pool())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("can never be disabled"), "{err}");
        assert!(
            sqlx::query("DELETE FROM mutual_auth")
                .execute(s.pool())
                .await
                .is_err()
        );
        assert_eq!(s.mutual_auth().await.unwrap().enabled_at, Some(1000));
    }

    #[tokio::test]
    async fn setting_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.db");
        {
            let s = SqliteStore::open(&p).await.unwrap();
            s.enable_mutual_auth(42).await.unwrap();
            s.pool().close().await;
        }
        let s = SqliteStore::open(&p).await.unwrap();
        assert_eq!(s.mutual_auth().await.unwrap().enabled_at, Some(42));
    }

    /// Plans of the per-device lookups use the per-device indexes, not the status ones (a
    /// status index matches every active row: each enrollment would scan them all).
    #[tokio::test]
    async fn per_device_lookups_use_the_device_indexes() {
        let (_d, s) = open().await;
        for (sql, index) in [
            (ACTIVE_CERTS_OF_DEVICE, "certificates_device"),
            (
                "SELECT COUNT(*) FROM devices WHERE username = ? AND +status = 'active'",
                "devices_username",
            ),
        ] {
            let rows = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .bind("x")
                .fetch_all(s.pool())
                .await
                .unwrap();
            let plan: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String, _>("detail").unwrap())
                .collect();
            assert!(
                plan.iter().any(|d| d.contains(index)),
                "{sql}: plan {plan:?} does not use {index}"
            );
        }
    }

    #[tokio::test]
    async fn crl_numbers_increase() {
        let (_d, s) = open().await;
        let a = s.next_crl_number().await.unwrap();
        let b = s.next_crl_number().await.unwrap();
        assert_eq!(b, a + 1);
    }

    #[tokio::test]
    async fn duplicate_user_is_refused() {
        let (_d, s) = open().await;
        let u = UserRecord {
            username: "alice".into(),
            password_hash: "x".into(),
            email: None,
            created_at: 1,
        };
        s.create_user(&u).await.unwrap();
        assert!(matches!(
            s.create_user(&u).await,
            Err(CoreError::UserExists(_))
        ));
        s.delete_user("alice", 2).await.unwrap();
        assert!(matches!(
            s.delete_user("alice", 2).await,
            Err(CoreError::NotFound(_))
        ));
    }

    /// Deleting a user revokes their unused grants (not consumed ones, not other users')
    /// and removes the static SCEP challenges naming them, in the same transaction.
    #[tokio::test]
    async fn deleting_a_user_revokes_their_grants_and_static_challenges() {
        let (_d, s) = open().await;
        for name in ["alice", "bob"] {
            s.create_user(&UserRecord {
                username: name.into(),
                password_hash: "x".into(),
                email: None,
                created_at: 1,
            })
            .await
            .unwrap();
        }
        for (id, user, consumed) in [
            ("g1", "alice", None),
            ("g2", "alice", Some(5)),
            ("g3", "bob", None),
        ] {
            sqlx::query(
                "INSERT INTO enrollment_grants (id, secret_hash, protocol, username, platform, \
                 created_at, expires_at, consumed_at) VALUES (?, ?, 'scep', ?, 'ios', 1, 100, ?)",
            )
            .bind(id)
            .bind(format!("hash-{id}"))
            .bind(user)
            .bind(consumed)
            .execute(&s.pool)
            .await
            .unwrap();
        }
        for (config, user) in [("local", "alice"), ("other", "bob")] {
            sqlx::query(
                "INSERT INTO scep_static_challenges (config, hash, username, platform, created_at) \
                 VALUES (?, ?, ?, 'ios', 1)",
            )
            .bind(config)
            .bind(format!("static-{config}"))
            .bind(user)
            .execute(&s.pool)
            .await
            .unwrap();
        }
        s.delete_user("alice", 7).await.unwrap();
        let revoked: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT id, revoked_at FROM enrollment_grants ORDER BY id")
                .fetch_all(&s.pool)
                .await
                .unwrap();
        assert_eq!(
            revoked,
            [
                ("g1".to_owned(), Some(7)),
                ("g2".to_owned(), None),
                ("g3".to_owned(), None)
            ]
        );
        let statics: Vec<String> =
            sqlx::query_scalar("SELECT username FROM scep_static_challenges ORDER BY config")
                .fetch_all(&s.pool)
                .await
                .unwrap();
        assert_eq!(statics, ["bob"]);
    }

    /// The search's plan choices (policy-driven window count, walking `devices_registered`
    /// for broad filters, sorting for narrow ones) return exactly what the plain SQL does.
    #[tokio::test]
    async fn search_plans_match_the_plain_query() {
        let (_d, s) = open().await;
        sqlx::query(
            "INSERT INTO policies (name, checkin_interval_secs, cert_lifetime_days, \
             renewal_window_days, migrate_client) VALUES ('short', 3600, 365, 10, 0)",
        )
        .execute(s.pool())
        .await
        .unwrap();
        let now = 1_800_000_000_i64;
        for i in 0..60_i64 {
            sqlx::query(
                "INSERT INTO devices (id, device_uuid, username, platform, client_kind, \
                 client_version, mode, listener, status, registered_with_ma, registered_at, \
                 cert_not_after, policy, migration_status) \
                 VALUES (?, ?, ?, ?, 'agent', '10.1', 'mutual', 'device', ?, 1, ?, ?, ?, ?)",
            )
            .bind(format!("d{i:02}"))
            .bind(format!("u{i:02}"))
            .bind(format!("user{}", i % 3))
            .bind(if i % 2 == 0 { "android" } else { "ios" })
            .bind(if i % 7 == 0 { "retired" } else { "active" })
            .bind(1000 + i / 2)
            .bind((i % 11 != 0).then_some(now + (i - 20) * 3 * 86_400))
            .bind(if i % 4 == 0 { "short" } else { "default" })
            .bind(if i % 5 == 0 { "pending" } else { "none" })
            .execute(s.pool())
            .await
            .unwrap();
        }
        let reference = |cond: &str| {
            format!("SELECT d.id FROM devices d WHERE {cond} ORDER BY d.registered_at, d.id")
        };
        let window = "d.cert_not_after >= ?1 AND d.cert_not_after - 86400 * COALESCE((SELECT \
             p.renewal_window_days FROM policies p WHERE p.name = d.policy), 60) <= ?1";
        let cases: Vec<(DeviceQuery, String)> = vec![
            (
                DeviceQuery {
                    in_renewal_window_at: Some(now),
                    ..DeviceQuery::default()
                },
                window.to_string(),
            ),
            (
                DeviceQuery {
                    in_renewal_window_at: Some(now),
                    username: Some("user1".into()),
                    ..DeviceQuery::default()
                },
                format!("{window} AND d.username = 'user1'"),
            ),
            (
                DeviceQuery {
                    in_renewal_window_at: Some(now),
                    migration_status: Some(MigrationStatus::Pending),
                    ..DeviceQuery::default()
                },
                format!("{window} AND d.migration_status = 'pending'"),
            ),
            (
                DeviceQuery {
                    platform: Some(Platform::Android),
                    status: Some(DeviceStatus::Active),
                    ..DeviceQuery::default()
                },
                "d.platform = 'android' AND d.status = 'active'".into(),
            ),
            (DeviceQuery::default(), "1".into()),
        ];
        for (q, cond) in cases {
            let want: Vec<String> = sqlx::query_scalar(AssertSqlSafe(reference(&cond)))
                .bind(now)
                .fetch_all(s.pool())
                .await
                .unwrap();
            assert!(!want.is_empty(), "{cond}");
            for (limit, offset) in [(1, 0), (2, 1), (5, 3), (50, 0), (3, 40)] {
                let page = s
                    .list_devices(&DeviceQuery {
                        limit,
                        offset,
                        ..q.clone()
                    })
                    .await
                    .unwrap();
                let got: Vec<String> = page.items.into_iter().map(|d| d.id).collect();
                let expect: Vec<String> = want
                    .iter()
                    .skip(usize::try_from(offset).unwrap())
                    .take(limit as usize)
                    .cloned()
                    .collect();
                assert_eq!(got, expect, "{cond} limit {limit} offset {offset}");
                assert_eq!(page.total, want.len() as u64, "{cond}");
            }
        }
        // The renewal-at-risk report against its former SQL.
        let grace = 30 * 86_400;
        let want: Vec<String> = sqlx::query_scalar(
            "SELECT d.id FROM devices d JOIN policies p ON p.name = d.policy \
             WHERE d.status = 'active' AND d.cert_not_after IS NOT NULL \
             AND d.cert_not_after >= ?1 - ?2 \
             AND d.cert_not_after - COALESCE(p.renewal_window_days, 60) * 86400 <= ?1 \
             ORDER BY d.cert_not_after, d.id",
        )
        .bind(now)
        .bind(grace)
        .fetch_all(s.pool())
        .await
        .unwrap();
        let page = s.renewal_at_risk(now, grace, 100, 0).await.unwrap();
        let got: Vec<String> = page.items.into_iter().map(|a| a.device.id).collect();
        assert_eq!(got, want);
        assert_eq!(page.total, want.len() as u64);
    }
}
