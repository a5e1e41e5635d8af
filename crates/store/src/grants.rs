//! One-time enrollment grants for SQLite (migration `0011_enrollment_grants.sql`, which moved
//! the rows of the former `est_tokens` and `scep_challenges` tables): create, look up, list,
//! revoke, and [`consume_in`], the one conditional write that consumes a grant inside the
//! transaction recording the certificate it paid for (EST in `lib.rs`, SCEP in `scep.rs`).

use super::{SqliteStore, db_err, parse_enum};
use ferrocore_core::error::{CoreError, Result};
use ferrocore_core::store::{GrantQuery, GrantRecord, Page};
use ferrocore_proto::{GrantProtocol, Platform};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

type Tx = super::WriteTx;

const COLUMNS: &str = "id, secret_hash, protocol, username, platform, device_uuid, created_at, \
    expires_at, consumed_at, consumed_by_serial, device_id, revoked_at";

fn grant_from_row(r: &SqliteRow) -> Result<GrantRecord> {
    Ok(GrantRecord {
        id: r.try_get("id").map_err(db_err)?,
        secret_hash: r.try_get("secret_hash").map_err(db_err)?,
        protocol: parse_enum::<GrantProtocol>(
            &r.try_get::<String, _>("protocol").map_err(db_err)?,
        )?,
        username: r.try_get("username").map_err(db_err)?,
        platform: parse_enum::<Platform>(&r.try_get::<String, _>("platform").map_err(db_err)?)?,
        device_uuid: r.try_get("device_uuid").map_err(db_err)?,
        created_at: r.try_get("created_at").map_err(db_err)?,
        expires_at: r.try_get("expires_at").map_err(db_err)?,
        consumed_at: r.try_get("consumed_at").map_err(db_err)?,
        consumed_by_serial: r.try_get("consumed_by_serial").map_err(db_err)?,
        device_id: r.try_get("device_id").map_err(db_err)?,
        revoked_at: r.try_get("revoked_at").map_err(db_err)?,
    })
}

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
    .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

impl SqliteStore {
    pub(crate) async fn grant_insert(&self, g: &GrantRecord) -> Result<()> {
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
        .map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn grant_by_hash(
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
            .map_err(db_err)?;
        row.map(|r| grant_from_row(&r)).transpose()
    }

    pub(crate) async fn grant_by_id(&self, id: &str) -> Result<Option<GrantRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM enrollment_grants WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| grant_from_row(&r)).transpose()
    }

    pub(crate) async fn grant_list(&self, q: &GrantQuery) -> Result<Page<GrantRecord>> {
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM enrollment_grants {WHERE}"
        )))
        .bind(&q.username)
        .bind(protocol)
        .bind(state)
        .bind(q.now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
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
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Page {
            items: rows.iter().map(grant_from_row).collect::<Result<_>>()?,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    pub(crate) async fn grant_revoke(&self, id: &str, at: i64) -> Result<GrantRecord> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE enrollment_grants SET revoked_at = ?1 \
             WHERE id = ?2 AND consumed_at IS NULL AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let sql = format!("SELECT {COLUMNS} FROM enrollment_grants WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let g = match row {
            None => return Err(CoreError::NotFound(format!("enrollment grant {id:?}"))),
            Some(r) => grant_from_row(&r)?,
        };
        if g.consumed_at.is_some() {
            return Err(CoreError::GrantConsumed(id.to_owned()));
        }
        tx.commit().await.map_err(db_err)?;
        Ok(g)
    }
}
