//! SCEP storage for SQLite (migration `0009_scep.sql`): static challenges per enrollment
//! configuration (hashes only) and the certificate issued per SCEP transaction; one-time
//! challenges are enrollment grants (`grants.rs`, consumed here with
//! [`super::grants::consume_in`]). `record_request` runs inside the enrollment and
//! renewal transactions of `lib.rs` (`apply_enrollment`, `apply_reissue`).

use super::*;
use async_trait::async_trait;
use ferrocore_core::error::{CoreError, Result};
use ferrocore_core::store::{
    CertRecord, ScepChallengeRecord, ScepGrant, ScepRequestKey, ScepStore,
};
use ferrocore_proto::Platform;

type Tx = WriteTx;

#[async_trait]
impl ScepStore for SqliteStore {
    async fn set_static_scep_challenge(
        &self,
        config: &str,
        c: Option<&ScepChallengeRecord>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM scep_static_challenges WHERE config = ?")
            .bind(config)
            .execute(&mut *tx)
            .await
            .db()?;
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
            .db()?;
        }
        tx.commit().await.db()
    }

    async fn static_scep_challenge(&self, hash: &str) -> Result<Option<ScepGrant>> {
        let row = sqlx::query(
            "SELECT hash, username, platform, config FROM scep_static_challenges WHERE hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.map(|r| -> Result<ScepGrant> {
            Ok(ScepGrant {
                hash: r.col("hash")?,
                username: r.col("username")?,
                platform: r.parsed::<Platform>("platform")?,
                device_uuid: None,
                static_config: r.col("config")?,
            })
        })
        .transpose()
    }

    async fn scep_request(&self, request_hash: &str) -> Result<Option<CertRecord>> {
        let row = sqlx::query(
            "SELECT c.* FROM scep_transactions t JOIN certificates c ON c.serial = t.cert_serial \
             WHERE t.request_hash = ?",
        )
        .bind(request_hash)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        CertRecord::from_opt(row)
    }

    async fn scep_transaction(
        &self,
        transaction_id: &str,
        signer_spki_sha256: &str,
    ) -> Result<Option<CertRecord>> {
        let row = sqlx::query(
            "SELECT c.* FROM scep_transactions t JOIN certificates c ON c.serial = t.cert_serial \
             WHERE t.transaction_id = ? AND t.signer_spki_sha256 = ? \
             ORDER BY t.created_at DESC, t.rowid DESC LIMIT 1",
        )
        .bind(transaction_id)
        .bind(signer_spki_sha256)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        CertRecord::from_opt(row)
    }
}

pub(crate) async fn record_request(
    tx: &mut Tx,
    request: &ScepRequestKey,
    serial: &str,
    device_id: &str,
    at: i64,
) -> Result<()> {
    let done = sqlx::query(
        "INSERT INTO scep_transactions (request_hash, transaction_id, cert_serial, device_id, \
         created_at, signer_spki_sha256) VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT(request_hash) DO NOTHING",
    )
    .bind(&request.request_hash)
    .bind(&request.transaction_id)
    .bind(serial)
    .bind(device_id)
    .bind(at)
    .bind(&request.signer_spki_sha256)
    .execute(&mut **tx)
    .await
    .db()?;
    if done.rows_affected() != 1 {
        return Err(CoreError::Conflict(format!(
            "SCEP request {:?} already has a certificate",
            request.transaction_id
        )));
    }
    Ok(())
}
