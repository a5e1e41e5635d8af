//! Storage backends of Ferrocore. [`SqliteStore`] is the embedded default: one file in the
//! data directory, WAL mode, migrations in `migrations/sqlite/` applied at open. Every
//! state-changing method is one `BEGIN IMMEDIATE` transaction (`WriteTx`), taken after the
//! process's writer turn so that writers queue in the process rather than in SQLite's busy
//! handler. WAL checkpoints run on their own connection in the background ([`checkpointer`]),
//! never inside a writer's COMMIT. One file per storage trait: `settings`, `users`,
//! `policies`, `devices`, `certificates`, `grants`, `enrollment_configs`, `scep`,
//! `storefront`; rows become records in one place each (`row`).

use async_trait::async_trait;
use ferrocore_core::error::{CoreError, Result};
use ferrocore_core::store::*;
use ferrocore_proto::DeviceStatus;
use row::{Cols, Db, FromRow, cert_status};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod certificates;
mod checkpointer;
mod devices;
mod directory;
mod enrollment_configs;
mod grants;
mod policies;
mod row;
mod scep;
mod settings;
mod storefront;
mod users;

/// Default WAL limit (`store.wal_limit_mb`): past it, the checkpointer empties the log.
pub const DEFAULT_WAL_LIMIT_MB: u64 = 64;

/// How a [`SqliteStore`] is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The WAL file is checkpointed and truncated once it passes this size (bytes).
    pub wal_limit_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            wal_limit_bytes: DEFAULT_WAL_LIMIT_MB << 20,
        }
    }
}

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
    /// The WAL's files, limit and the checkpointer's counters.
    wal: Arc<checkpointer::WalState>,
}

/// A write transaction (`BEGIN IMMEDIATE`) holding the process's writer turn until it commits
/// or is dropped (rolled back). Derefs to the connection, so `&mut *tx` is an executor.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
    pool: SqlitePool,
    wal: Arc<checkpointer::WalState>,
}

impl WriteTx {
    /// Commits, then (still holding the writer turn) keeps the WAL under twice its limit.
    pub(crate) async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await?;
        if let Err(e) = self.wal.backstop(&self.pool).await {
            tracing::warn!(error = %e, "WAL truncation failed");
        }
        Ok(())
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

const DEVICE_COLUMNS: &str = "d.id, d.device_uuid, d.username, d.platform, d.client_kind, \
    d.client_version, d.mode, d.listener, d.status, d.registered_with_ma, d.registered_at, \
    d.last_checkin_at, d.retired_at, d.current_cert_serial, d.cert_not_after, d.secret_hash, d.policy, \
    d.previous_cert_serial, d.migration_status, d.renewal_count, d.enrollment_config, \
    d.reregister_required";

fn device_status_str(s: DeviceStatus) -> &'static str {
    match s {
        DeviceStatus::Active => "active",
        DeviceStatus::Retired => "retired",
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, &StoreOptions::default()).await
    }

    /// [`SqliteStore::open`] with explicit options.
    pub async fn open_with(path: &Path, options: &StoreOptions) -> Result<Self> {
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
            .pragma("journal_size_limit", options.wal_limit_bytes.to_string());
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.clone())
            .await
            .db()?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| CoreError::Internal(format!("migrations: {e}")))?;
        let alive = Arc::new(());
        let writer = Arc::new(tokio::sync::Mutex::new(()));
        let wal = Arc::new(checkpointer::WalState::new(
            path.to_path_buf(),
            options.wal_limit_bytes,
        ));
        // The checkpointer holds the writer turn while it waits for readers: briefly.
        let conn = sqlx::ConnectOptions::connect(&opts.busy_timeout(checkpointer::READER_WAIT))
            .await
            .db()?;
        tokio::spawn(checkpointer::run(
            conn,
            Arc::downgrade(&alive),
            writer.clone(),
            wal.clone(),
        ));
        Ok(SqliteStore {
            pool,
            _alive: alive,
            mutual_auth_cache: std::sync::Mutex::new((0, None)),
            writer,
            wal,
        })
    }

    async fn read_mutual_auth(&self) -> Result<MutualAuthRow> {
        let r = sqlx::query("SELECT enabled_at, enrollment_config FROM mutual_auth WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .db()?;
        Ok(MutualAuthRow {
            enabled_at: r.col("enabled_at")?,
            enrollment_config: r.col("enrollment_config")?,
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
            .db()?;
        sqlx::query(
            "UPDATE devices SET reregister_required = 1 WHERE status = 'active' AND mode = 'mutual' \
             AND COALESCE(enrollment_config, 'local') <> ?",
        )
        .bind(config)
        .execute(&mut *tx)
        .await
        .db()?;
        // Devices that had been flagged but whose identity comes from the new selection are
        // fine again (a change back).
        sqlx::query(
            "UPDATE devices SET reregister_required = 0 WHERE reregister_required = 1 \
             AND COALESCE(enrollment_config, 'local') = ?",
        )
        .bind(config)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()
    }

    /// Runs one checkpoint now (what the background checkpointer does on its tick):
    /// `(wal_frames, checkpointed_frames)`.
    pub async fn checkpoint(&self) -> Result<(i64, i64)> {
        let mut conn = self.pool.acquire().await.db()?;
        let (_, wal, copied) =
            checkpointer::checkpoint(&mut conn, checkpointer::Mode::Passive).await?;
        Ok((wal, copied))
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin(&self) -> Result<WriteTx> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.db()?;
        Ok(WriteTx {
            tx,
            _turn: turn,
            pool: self.pool.clone(),
            wal: self.wal.clone(),
        })
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
            .db()?;
        if refs > 0 {
            return Err(CoreError::Conflict(in_use(refs)));
        }
        let res = sqlx::query(delete_sql)
            .bind(key)
            .execute(&mut *tx)
            .await
            .db()?;
        if res.rows_affected() == 0 {
            return Err(CoreError::NotFound(what()));
        }
        tx.commit().await.db()
    }
}

/// Revokes `serials` (those still active) inside `tx`.
/// Revokes those of `serials` that are active; returns the ones it revoked.
async fn revoke_in(
    tx: &mut WriteTx,
    serials: &[String],
    reason: &str,
    at: i64,
) -> Result<Vec<String>> {
    let mut revoked = Vec::new();
    for s in serials {
        let done = sqlx::query(
            "UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? \
             WHERE serial = ? AND status = 'active'",
        )
        .bind(at)
        .bind(reason)
        .bind(s)
        .execute(&mut **tx)
        .await
        .db()?;
        if done.rows_affected() == 1 {
            revoked.push(s.clone());
        }
    }
    Ok(revoked)
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
    .db()?;
    Ok(())
}

const POLICY_SELECT: &str = "SELECT name, checkin_interval_secs, cert_lifetime_days, \
    renewal_window_days, migrate_client FROM policies";

/// The registration steps inside a caller's transaction (registration and SCEP enrollment).
pub(crate) async fn registration_in(
    tx: &mut WriteTx,
    reg: &Registration,
    at: i64,
) -> Result<Applied> {
    // The device row is found by its uuid inside the transaction, so two registrations of
    // one new device racing each other end as one device (the later identity wins) rather
    // than a uniqueness failure, and another user's device is refused here even
    // when it was registered after the domain looked.
    let existing: Option<(String, String)> =
        sqlx::query_as("SELECT id, username FROM devices WHERE device_uuid = ?")
            .bind(&reg.device.device_uuid)
            .fetch_optional(&mut **tx)
            .await
            .db()?;
    let mut device = reg.device.clone();
    if let Some((id, owner)) = existing {
        if owner != device.username {
            return Err(CoreError::DeviceOfAnotherUser);
        }
        device.id = id;
    }
    let d = &device;
    let previous: Vec<String> = sqlx::query_scalar(ACTIVE_CERTS_OF_DEVICE)
        .bind(&d.id)
        .fetch_all(&mut **tx)
        .await
        .db()?;
    let revoked = revoke_in(tx, &previous, "superseded", at).await?;
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
    .db()?;
    if let Some(c) = cert {
        let mut c = c.clone();
        c.device_id = Some(d.id.clone());
        insert_cert(tx, &c).await?;
    }
    Ok(Applied {
        device_id: device.id,
        revoked,
    })
}

/// The renewal steps inside a caller's transaction (renewal and SCEP RenewalReq).
pub(crate) async fn renewal_in(
    tx: &mut WriteTx,
    device_id: &str,
    new: &CertRecord,
    authenticated_with: &str,
    at: i64,
) -> Result<Vec<String>> {
    let others: Vec<String> = sqlx::query_scalar(
        "SELECT serial FROM certificates WHERE device_id = ? AND +status = 'active' AND serial <> ?",
    )
    .bind(device_id)
    .bind(authenticated_with)
    .fetch_all(&mut **tx)
    .await
    .db()?;
    let revoked = revoke_in(tx, &others, "superseded", at).await?;
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
    .db()?;
    Ok(revoked)
}

/// A storefront certificate inside a caller's transaction: the device's earlier active
/// certificates other than its current one are revoked, the new one recorded.
pub(crate) async fn storefront_in(
    tx: &mut WriteTx,
    device_id: &str,
    new: &CertRecord,
    at: i64,
) -> Result<Vec<String>> {
    let earlier: Vec<String> = sqlx::query_scalar(
        "SELECT c.serial FROM certificates c JOIN devices d ON d.id = c.device_id \
         WHERE c.device_id = ? AND +c.status = 'active' \
         AND c.serial IS NOT d.current_cert_serial",
    )
    .bind(device_id)
    .fetch_all(&mut **tx)
    .await
    .db()?;
    let revoked = revoke_in(tx, &earlier, "superseded", at).await?;
    insert_cert(tx, new).await?;
    Ok(revoked)
}

/// The migration steps inside a caller's transaction: every earlier active certificate is
/// revoked, the new one becomes current and the migration pending.
pub(crate) async fn migration_in(
    tx: &mut WriteTx,
    device_id: &str,
    new: &CertRecord,
    at: i64,
) -> Result<Vec<String>> {
    let earlier: Vec<String> = sqlx::query_scalar(ACTIVE_CERTS_OF_DEVICE)
        .bind(device_id)
        .fetch_all(&mut **tx)
        .await
        .db()?;
    let revoked = revoke_in(tx, &earlier, "superseded", at).await?;
    insert_cert(tx, new).await?;
    sqlx::query(
        "UPDATE devices SET current_cert_serial = ?, cert_not_after = ?, \
         previous_cert_serial = NULL, migration_status = 'pending', enrollment_config = ? \
         WHERE id = ?",
    )
    .bind(&new.serial)
    .bind(new.not_after)
    .bind(&new.enrollment_config)
    .bind(device_id)
    .execute(&mut **tx)
    .await
    .db()?;
    Ok(revoked)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use ferrocore_proto::{MigrationStatus, Platform};
    use sqlx::Row;
    use sqlx::sqlite::SqliteConnectOptions;

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
        // The renewal-at-risk report against its plain SQL (every active device from its
        // window's start until retired).
        let grace = 30 * 86_400;
        let want: Vec<String> = sqlx::query_scalar(
            "SELECT d.id FROM devices d JOIN policies p ON p.name = d.policy \
             WHERE d.status = 'active' AND d.cert_not_after IS NOT NULL \
             AND d.cert_not_after - COALESCE(p.renewal_window_days, 60) * 86400 <= ?1 \
             ORDER BY d.cert_not_after, d.id",
        )
        .bind(now)
        .fetch_all(s.pool())
        .await
        .unwrap();
        let page = s.renewal_at_risk(now, grace, 100, 0).await.unwrap();
        let got: Vec<String> = page.items.into_iter().map(|a| a.device.id).collect();
        assert_eq!(got, want);
        assert_eq!(page.total, want.len() as u64);
    }
}
