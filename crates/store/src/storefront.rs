//! [`StorefrontStore`] for SQLite: the storefront setting, the app catalogue and AppConnect
//! check-ins (migration `0007_storefront.sql`). Each write is one statement (atomic).

use super::*;
use async_trait::async_trait;
use ferrocore_core::error::{CoreError, Result};
use ferrocore_core::storefront::{AppConnectRecord, AppRecord, StorefrontStore};
use ferrocore_proto::{Platform, StorefrontAuth};

const APP_COLUMNS: &str = "id, platform, name, version, size, sha256, published_at";

#[async_trait]
impl StorefrontStore for SqliteStore {
    async fn storefront_auth(&self) -> Result<StorefrontAuth> {
        let auth: String = sqlx::query_scalar("SELECT auth FROM storefront_settings WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .db()?;
        auth.parse().map_err(CoreError::Internal)
    }

    async fn set_storefront_auth(&self, auth: StorefrontAuth, at: i64) -> Result<()> {
        sqlx::query("UPDATE storefront_settings SET auth = ?, changed_at = ? WHERE id = 1")
            .bind(auth.as_str())
            .bind(at)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(())
    }

    async fn add_app(&self, app: &AppRecord) -> Result<()> {
        let size = i64::try_from(app.size).map_err(CoreError::internal)?;
        let res = sqlx::query(
            "INSERT INTO apps (id, platform, name, version, size, sha256, published_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&app.id)
        .bind(app.platform.as_str())
        .bind(&app.name)
        .bind(&app.version)
        .bind(size)
        .bind(&app.sha256)
        .bind(app.published_at)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(CoreError::Conflict(format!(
                    "{} {} {} is already published",
                    app.platform, app.name, app.version
                )))
            }
            Err(e) => Err(db_err(e)),
        }
    }

    async fn apps(&self, platform: Option<Platform>) -> Result<Vec<AppRecord>> {
        let rows = match platform {
            Some(p) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {APP_COLUMNS} FROM apps WHERE platform = ? \
                 ORDER BY published_at DESC, name"
            )))
            .bind(p.as_str())
            .fetch_all(&self.pool)
            .await
            .db()?,
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {APP_COLUMNS} FROM apps ORDER BY published_at DESC, name"
            )))
            .fetch_all(&self.pool)
            .await
            .db()?,
        };
        AppRecord::from_rows(&rows)
    }

    async fn app(&self, id: &str) -> Result<Option<AppRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .db()?
        .as_ref()
        .map(AppRecord::from_row)
        .transpose()
    }

    async fn remove_app(&self, id: &str) -> Result<bool> {
        let res = sqlx::query("DELETE FROM apps WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(res.rows_affected() > 0)
    }

    async fn record_appconnect_checkin(
        &self,
        device_id: &str,
        app_id: &str,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO appconnect_checkins (device_id, app_id, first_checkin_at, last_checkin_at, count) \
             VALUES (?, ?, ?, ?, 1) \
             ON CONFLICT (device_id, app_id) DO UPDATE SET \
               last_checkin_at = excluded.last_checkin_at, count = count + 1",
        )
        .bind(device_id)
        .bind(app_id)
        .bind(at)
        .bind(at)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn appconnect_checkins(&self, device_id: &str) -> Result<Vec<AppConnectRecord>> {
        let rows = sqlx::query(
            "SELECT app_id, first_checkin_at, last_checkin_at, count FROM appconnect_checkins \
             WHERE device_id = ? ORDER BY app_id",
        )
        .bind(device_id)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                Ok(AppConnectRecord {
                    app_id: r.col("app_id")?,
                    first_checkin_at: r.col("first_checkin_at")?,
                    last_checkin_at: r.col("last_checkin_at")?,
                    count: r.num::<u64>("count")?,
                })
            })
            .collect()
    }
}
