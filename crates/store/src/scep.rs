//! SCEP storage for SQLite (migration `0009_scep.sql`): challenge passwords (hashes only),
//! static challenges per enrollment configuration, and the certificate issued per SCEP
//! transaction. Enrollment and renewal share the registration / renewal steps of `lib.rs`
//! inside one transaction with the challenge consumption and the transaction record.

use super::{SqliteStore, WriteTx, cert_from_row, db_err, parse_enum, registration_in, renewal_in};
use ferrocore_core::error::{CoreError, Result};
use ferrocore_core::store::{
    CertRecord, Registration, ScepChallengeRecord, ScepGrant, ScepRequestKey,
};
use ferrocore_proto::Platform;
use sqlx::Row;

type Tx = WriteTx;

impl SqliteStore {
    pub(crate) async fn scep_create_challenge(&self, c: &ScepChallengeRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO scep_challenges (hash, username, platform, device_uuid, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.hash)
        .bind(&c.username)
        .bind(c.platform.as_str())
        .bind(&c.device_uuid)
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn scep_set_static(
        &self,
        config: &str,
        c: Option<&ScepChallengeRecord>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM scep_static_challenges WHERE config = ?")
            .bind(config)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(c) = c {
            sqlx::query(
                "INSERT INTO scep_static_challenges (config, hash, username, platform, created_at) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(config)
            .bind(&c.hash)
            .bind(&c.username)
            .bind(c.platform.as_str())
            .bind(c.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    pub(crate) async fn scep_grant_of(&self, hash: &str, now: i64) -> Result<Option<ScepGrant>> {
        let row = sqlx::query(
            "SELECT hash, username, platform, device_uuid, NULL AS config FROM scep_challenges \
             WHERE hash = ?1 AND consumed_at IS NULL AND expires_at > ?2 \
             UNION ALL SELECT hash, username, platform, NULL, config FROM scep_static_challenges \
             WHERE hash = ?1 LIMIT 1",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| -> Result<ScepGrant> {
            Ok(ScepGrant {
                hash: r.try_get("hash").map_err(db_err)?,
                username: r.try_get("username").map_err(db_err)?,
                platform: parse_enum::<Platform>(
                    &r.try_get::<String, _>("platform").map_err(db_err)?,
                )?,
                device_uuid: r.try_get("device_uuid").map_err(db_err)?,
                static_config: r.try_get("config").map_err(db_err)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn scep_enroll(
        &self,
        reg: &Registration,
        grant: &ScepGrant,
        request: &ScepRequestKey,
        at: i64,
    ) -> Result<String> {
        let mut tx = self.begin().await?;
        if grant.static_config.is_none() {
            let done = sqlx::query(
                "UPDATE scep_challenges SET consumed_at = ?1, device_id = ?2 \
                 WHERE hash = ?3 AND consumed_at IS NULL AND expires_at > ?1",
            )
            .bind(at)
            .bind(&reg.device.id)
            .bind(&grant.hash)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if done.rows_affected() != 1 {
                return Err(CoreError::ScepChallengeInvalid);
            }
        }
        let device_id = registration_in(&mut tx, reg, at).await?;
        if let Some(c) = &reg.cert {
            record_request(&mut tx, request, &c.serial, &device_id, at).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(device_id)
    }

    pub(crate) async fn scep_request_cert(&self, request_hash: &str) -> Result<Option<CertRecord>> {
        let row = sqlx::query(
            "SELECT c.* FROM scep_transactions t JOIN certificates c ON c.serial = t.cert_serial \
             WHERE t.request_hash = ?",
        )
        .bind(request_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| cert_from_row(&r)).transpose()
    }

    pub(crate) async fn scep_transaction_cert(
        &self,
        transaction_id: &str,
    ) -> Result<Option<CertRecord>> {
        let row = sqlx::query(
            "SELECT c.* FROM scep_transactions t JOIN certificates c ON c.serial = t.cert_serial \
             WHERE t.transaction_id = ? ORDER BY t.created_at DESC, t.rowid DESC LIMIT 1",
        )
        .bind(transaction_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| cert_from_row(&r)).transpose()
    }

    pub(crate) async fn scep_renew(
        &self,
        device_id: &str,
        new: &CertRecord,
        authenticated_with: &str,
        request: &ScepRequestKey,
        at: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        renewal_in(&mut tx, device_id, new, authenticated_with, at).await?;
        record_request(&mut tx, request, &new.serial, device_id, at).await?;
        tx.commit().await.map_err(db_err)
    }
}

async fn record_request(
    tx: &mut Tx,
    request: &ScepRequestKey,
    serial: &str,
    device_id: &str,
    at: i64,
) -> Result<()> {
    let done = sqlx::query(
        "INSERT INTO scep_transactions (request_hash, transaction_id, cert_serial, device_id, created_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT(request_hash) DO NOTHING",
    )
    .bind(&request.request_hash)
    .bind(&request.transaction_id)
    .bind(serial)
    .bind(device_id)
    .bind(at)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    if done.rows_affected() != 1 {
        return Err(CoreError::Conflict(format!(
            "SCEP request {:?} already has a certificate",
            request.transaction_id
        )));
    }
    Ok(())
}
