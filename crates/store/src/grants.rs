//! One-time enrollment grants for SQLite (migration `0011_enrollment_grants.sql`, which moved
//! the rows of the former `est_tokens` and `scep_challenges` tables): create, look up, list,
//! revoke, and [`consume_in`], the one conditional write that consumes a grant inside the
//! transaction recording the certificate it paid for (EST here, SCEP in `scep.rs`).

use super::*;
use async_trait::async_trait;
use ferrocore_core::error::{CoreError, Result};
use ferrocore_core::store::{GrantQuery, GrantRecord, GrantStore, Page};
use ferrocore_proto::GrantProtocol;

type Tx = super::WriteTx;

const COLUMNS: &str = "id, secret_hash, protocol, username, platform, device_uuid, created_at, \
    expires_at, consumed_at, consumed_by_serial, device_id, revoked_at";

/// Consumes the usable grant of `protocol` with this secret hash at `at`, recording the
/// certificate and device it paid for. `false` (nothing written) when it is unknown, of the
/// other protocol, already consumed, revoked or expired: the caller's transaction then fails
/// with the protocol's error and writes nothing.
pub(crate) async fn consume_in(
    tx: &mut Tx,
    protocol: GrantProtocol,
    secret_hash: &str,
    at: i64,
    serial: Option<&str>,
    device_id: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE enrollment_grants SET consumed_at = ?1, consumed_by_serial = ?2, device_id = ?3 \
         WHERE protocol = ?4 AND secret_hash = ?5 AND consumed_at IS NULL \
         AND revoked_at IS NULL AND expires_at > ?1",
    )
    .bind(at)
    .bind(serial)
    .bind(device_id)
    .bind(protocol.as_str())
    .bind(secret_hash)
    .execute(&mut **tx)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn create_grant(&self, g: &GrantRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrollment_grants (id, secret_hash, protocol, username, platform, \
             device_uuid, created_at, expires_at, consumed_at, consumed_by_serial, device_id, \
             revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)",
        )
        .bind(&g.id)
        .bind(&g.secret_hash)
        .bind(g.protocol.as_str())
        .bind(&g.username)
        .bind(g.platform.as_str())
        .bind(&g.device_uuid)
        .bind(g.created_at)
        .bind(g.expires_at)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn grant_by_secret(
        &self,
        protocol: GrantProtocol,
        secret_hash: &str,
    ) -> Result<Option<GrantRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM enrollment_grants WHERE protocol = ? AND secret_hash = ?"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(protocol.as_str())
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        GrantRecord::from_opt(row)
    }

    async fn grant(&self, id: &str) -> Result<Option<GrantRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM enrollment_grants WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        GrantRecord::from_opt(row)
    }

    async fn list_grants(&self, q: &GrantQuery) -> Result<Page<GrantRecord>> {
        // Each filter is off when its parameter is NULL; the state conditions are the ones
        // of `GrantRecord::state`.
        const WHERE: &str = "WHERE (?1 IS NULL OR username = ?1) AND (?2 IS NULL OR protocol = ?2) \
             AND (?3 IS NULL \
             OR (?3 = 'revoked' AND revoked_at IS NOT NULL) \
             OR (?3 = 'consumed' AND revoked_at IS NULL AND consumed_at IS NOT NULL) \
             OR (?3 = 'expired' AND revoked_at IS NULL AND consumed_at IS NULL AND expires_at <= ?4) \
             OR (?3 = 'active' AND revoked_at IS NULL AND consumed_at IS NULL AND expires_at > ?4))";
        let state = q.state.map(|s| s.as_str());
        let protocol = q.protocol.map(|p| p.as_str());
        let mut tx = self.pool.begin().await.db()?;
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM enrollment_grants {WHERE}"
        )))
        .bind(&q.username)
        .bind(protocol)
        .bind(state)
        .bind(q.now)
        .fetch_one(&mut *tx)
        .await
        .db()?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM enrollment_grants {WHERE} \
             ORDER BY created_at DESC, rowid DESC LIMIT ?5 OFFSET ?6"
        )))
        .bind(&q.username)
        .bind(protocol)
        .bind(state)
        .bind(q.now)
        .bind(i64::from(q.limit))
        .bind(i64::try_from(q.offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(Page {
            items: GrantRecord::from_rows(&rows)?,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    async fn revoke_grant(&self, id: &str, at: i64) -> Result<GrantRecord> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE enrollment_grants SET revoked_at = ?1 \
             WHERE id = ?2 AND consumed_at IS NULL AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await
        .db()?;
        let sql = format!("SELECT {COLUMNS} FROM enrollment_grants WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .db()?;
        let g = match row {
            None => return Err(CoreError::NotFound(format!("enrollment grant {id:?}"))),
            Some(r) => GrantRecord::from_row(&r)?,
        };
        if g.consumed_at.is_some() {
            return Err(CoreError::GrantConsumed(id.to_owned()));
        }
        tx.commit().await.db()?;
        Ok(g)
    }
}
