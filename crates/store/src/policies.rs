//! [`PolicyStore`] for SQLite. Sync policies and their assignment to devices.

use super::*;

#[async_trait]
impl PolicyStore for SqliteStore {
    async fn policy(&self, name: &str) -> Result<Option<PolicyRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!("{POLICY_SELECT} WHERE name = ?")))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        PolicyRecord::from_opt(row)
    }

    async fn list_policies(&self) -> Result<Vec<PolicyRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!("{POLICY_SELECT} ORDER BY name")))
            .fetch_all(&self.pool)
            .await
            .db()?;
        PolicyRecord::from_rows(&rows)
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
        .db()?;
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
            .db()?;
        if res.rows_affected() == 0 {
            return Err(CoreError::NotFound(format!("device {device_id}")));
        }
        Ok(())
    }
}
