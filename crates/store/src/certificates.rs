//! [`CertificateStore`] for SQLite. Issued certificates and their revocation.

use super::*;

#[async_trait]
impl CertificateStore for SqliteStore {
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
        let total = cq.fetch_one(&self.pool).await.db()?;
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
            .db()?;
        Ok(Page {
            items: CertRecord::from_rows(&rows)?,
            total: total.unsigned_abs(),
        })
    }

    async fn certificate(&self, serial: &str) -> Result<Option<CertRecord>> {
        let row = sqlx::query("SELECT * FROM certificates WHERE serial = ?")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        CertRecord::from_opt(row)
    }

    async fn cert_status(&self, serial: &str) -> Result<Option<CertStatusRow>> {
        let row = sqlx::query(
            "SELECT enrollment_config, status, revoked_at, revocation_reason FROM certificates \
             WHERE serial = ?",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.map(|r| -> Result<CertStatusRow> {
            Ok(CertStatusRow {
                enrollment_config: r.col("enrollment_config")?,
                status: cert_status(&r.col::<String>("status")?)?,
                revoked_at: r.col("revoked_at")?,
                revocation_reason: r.col("revocation_reason")?,
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
                .db()?;
        match status.as_deref() {
            None => return Err(CoreError::NotFound(format!("certificate {serial}"))),
            Some("revoked") => return Err(CoreError::AlreadyRevoked(serial.to_owned())),
            _ => {}
        }
        revoke_in(&mut tx, &[serial.to_owned()], reason, at).await?;
        tx.commit().await.db()
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
        .db()?;
        rows.iter()
            .map(|r| -> Result<RevokedRow> {
                Ok(RevokedRow {
                    serial: r.col("serial")?,
                    revoked_at: r.col::<Option<i64>>("revoked_at")?.unwrap_or(0),
                    reason: r
                        .col::<Option<String>>("revocation_reason")?
                        .unwrap_or_else(|| "unspecified".into()),
                })
            })
            .collect()
    }
}
