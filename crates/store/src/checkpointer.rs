//! The WAL checkpointer: copies committed pages from the WAL into the database file on its
//! own connection, every [`TICK`], instead of SQLite's automatic checkpoint inside the COMMIT
//! of whichever writer crossed 1,000 pages. That automatic checkpoint ran while the writer
//! still held the process's writer turn, and its two fsyncs (2-11 ms each here) stalled every
//! queued writer. A PASSIVE checkpoint takes neither the write lock nor the writer turn, so
//! writers and readers go on while it copies and syncs; `journal_size_limit` truncates the
//! WAL file once a later writer restarts it. The loop ends when its store is dropped.

use super::db_err;
use ferrocore_core::error::Result;
use sqlx::{Row, SqliteConnection};
use std::sync::Weak;
use std::time::Duration;

/// How often the checkpointer runs. At the measured peak (about 400 SCEP enrollments/s,
/// ~25 WAL pages each) the WAL grows by ~10,000 pages/s, so a tick copies ~2,000 pages.
pub(crate) const TICK: Duration = Duration::from_millis(200);

/// One PASSIVE checkpoint: `(frames in the WAL, frames copied into the database)`.
pub(crate) async fn passive(conn: &mut SqliteConnection) -> Result<(i64, i64)> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok((
        row.try_get::<i64, _>(1).map_err(db_err)?,
        row.try_get::<i64, _>(2).map_err(db_err)?,
    ))
}

pub(crate) async fn run(mut conn: SqliteConnection, alive: Weak<()>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if alive.strong_count() == 0 {
            return;
        }
        if let Err(e) = passive(&mut conn).await {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}
