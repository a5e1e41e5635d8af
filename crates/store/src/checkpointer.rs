//! The WAL checkpointer: copies committed pages from the WAL into the database file on its
//! own connection, every [`TICK`], instead of SQLite's automatic checkpoint inside the COMMIT
//! of whichever writer crossed 1,000 pages (its two fsyncs held every queued writer).
//! A PASSIVE checkpoint takes neither the write lock nor the writer turn, but it never lets
//! the log restart while reads overlap, so under continuous traffic the WAL grew without end
//! (6.5 GB in 5 minutes of check-ins). So once the WAL file passes its limit, the
//! checkpointer copies what it can (PASSIVE), then takes the process's writer turn for one
//! TRUNCATE checkpoint: few frames are left to copy, it waits briefly for readers still in
//! the log (reads are single statements; readers starting meanwhile read the database file)
//! and truncates the WAL to zero. Writers wait for that step once per limit's worth of
//! writes. Should the checkpointer fall behind (a starved thread, a slow disk) and the WAL
//! reach twice its limit, the writer that notices after its commit empties it itself, still
//! holding the turn ([`WalState::backstop`]): the log stays bounded at any write rate.
//! The loop ends when its store is dropped.

use super::row::{Cols, Db};
use ferrocore_core::error::Result;
use ferrocore_core::store::StorageStatus;
use sqlx::SqliteConnection;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often PASSIVE checkpoints run. At the measured peak (about 400 SCEP enrollments/s,
/// ~25 WAL pages each) the WAL grows by ~10,000 pages/s, so a tick copies ~2,000 pages.
pub(crate) const TICK: Duration = Duration::from_millis(200);

/// How often the WAL's size is looked at (one `stat`).
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// How long the checkpointer's TRUNCATE waits for readers still in the log before it gives up
/// (and the next poll tries again); writers wait at most this long for it.
pub(crate) const READER_WAIT: Duration = Duration::from_millis(200);

/// How long a writer's backstop keeps trying to empty a WAL at twice its limit.
pub(crate) const BACKSTOP_WAIT: Duration = Duration::from_secs(5);

/// The WAL's files and limit, and what was done about it; shared by the store's writers and
/// the checkpointer.
pub(crate) struct WalState {
    pub db_path: PathBuf,
    pub wal_path: PathBuf,
    pub limit: u64,
    /// Largest WAL file size seen since the store opened.
    pub max_wal: AtomicU64,
    /// TRUNCATE checkpoints that emptied the WAL.
    pub truncations: AtomicU64,
    /// TRUNCATE checkpoints that found readers still in the log after the wait.
    pub busy: AtomicU64,
}

impl WalState {
    pub(crate) fn new(db_path: PathBuf, limit: u64) -> Self {
        let mut wal = db_path.clone().into_os_string();
        wal.push("-wal");
        WalState {
            db_path,
            wal_path: PathBuf::from(wal),
            limit,
            max_wal: AtomicU64::new(0),
            truncations: AtomicU64::new(0),
            busy: AtomicU64::new(0),
        }
    }

    pub(crate) fn wal_bytes(&self) -> u64 {
        let size = std::fs::metadata(&self.wal_path).map_or(0, |m| m.len());
        self.max_wal.fetch_max(size, Ordering::Relaxed);
        size
    }

    pub(crate) fn status(&self) -> StorageStatus {
        let wal = self.wal_bytes();
        StorageStatus {
            database_bytes: std::fs::metadata(&self.db_path).map_or(0, |m| m.len()),
            wal_bytes: wal,
            wal_limit_bytes: self.limit,
            max_wal_bytes: self.max_wal.load(Ordering::Relaxed),
            wal_truncations: self.truncations.load(Ordering::Relaxed),
            wal_truncations_busy: self.busy.load(Ordering::Relaxed),
        }
    }

    /// Called by a writer after its commit, still holding the writer turn: one `stat`, and
    /// when the checkpointer has fallen a whole limit behind, TRUNCATE checkpoints on a
    /// connection of the pool until the log is empty (another checkpoint in progress or
    /// readers still in the log make one return busy: retried every few milliseconds, up to
    /// [`BACKSTOP_WAIT`]). No writer adds to the log meanwhile: that is the bound.
    pub(crate) async fn backstop(&self, pool: &sqlx::SqlitePool) -> Result<()> {
        if self.wal_bytes() <= self.limit.saturating_mul(2) {
            return Ok(());
        }
        let mut conn = pool.acquire().await.db()?;
        let deadline = tokio::time::Instant::now() + BACKSTOP_WAIT;
        loop {
            let (busy, _, _) = checkpoint(&mut conn, Mode::Truncate).await?;
            self.count(busy);
            if !busy || tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn count(&self, busy: bool) {
        if busy {
            self.busy.fetch_add(1, Ordering::Relaxed);
        } else {
            self.truncations.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Mode {
    Passive,
    Truncate,
}

/// One checkpoint: `(busy, frames in the WAL, frames copied into the database)`.
pub(crate) async fn checkpoint(
    conn: &mut SqliteConnection,
    mode: Mode,
) -> Result<(bool, i64, i64)> {
    let sql = match mode {
        Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    let row = sqlx::query(sql).fetch_one(&mut *conn).await.db()?;
    Ok((
        row.col::<i64>("busy")? != 0,
        row.col::<i64>("log")?,
        row.col::<i64>("checkpointed")?,
    ))
}

/// The WAL is over its limit: copy what can be copied without the writer turn, then empty
/// the log holding it (no writer in SQLite, none can start), so the only wait is for readers
/// still inside the log.
async fn truncate(
    conn: &mut SqliteConnection,
    writer: &tokio::sync::Mutex<()>,
    wal: &WalState,
) -> Result<()> {
    checkpoint(conn, Mode::Passive).await?;
    let _turn = writer.lock().await;
    if wal.wal_bytes() <= wal.limit {
        // A writer's backstop emptied it meanwhile.
        return Ok(());
    }
    wal.count(checkpoint(conn, Mode::Truncate).await?.0);
    Ok(())
}

pub(crate) async fn run(
    mut conn: SqliteConnection,
    alive: Weak<()>,
    writer: Arc<tokio::sync::Mutex<()>>,
    wal: Arc<WalState>,
) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_passive = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if alive.strong_count() == 0 {
            return;
        }
        let res = if wal.wal_bytes() > wal.limit {
            last_passive = tokio::time::Instant::now();
            truncate(&mut conn, &writer, &wal).await
        } else if last_passive.elapsed() >= TICK {
            last_passive = tokio::time::Instant::now();
            checkpoint(&mut conn, Mode::Passive).await.map(|_| ())
        } else {
            Ok(())
        };
        if let Err(e) = res {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}
