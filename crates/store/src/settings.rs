//! [`SettingsStore`] for SQLite. Settings: mutual authentication (never disabled), the sync-TLS port switch, CRL numbers, and the database's own sizes.

use super::*;

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn storage_status(&self) -> Result<StorageStatus> {
        Ok(self.wal.status())
    }

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
        res.db()?;
        self.mutual_auth().await
    }

    async fn sync_tls_enabled(&self) -> Result<bool> {
        let v: String =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'sync_tls_enabled'")
                .fetch_one(&self.pool)
                .await
                .db()?;
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
            .db()?;
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
            .db()?;
        tx.commit().await.db()
    }

    async fn count_sync_tls_devices(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM devices WHERE status = 'active' AND listener = 'sync_tls'",
        )
        .fetch_one(&self.pool)
        .await
        .db()?;
        Ok(count.unsigned_abs())
    }

    async fn next_crl_number(&self) -> Result<u64> {
        let mut tx = self.begin().await?;
        let v: String = sqlx::query_scalar(
            "UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) \
             WHERE key = 'crl_number' RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        v.parse().map_err(CoreError::internal)
    }
}
