//! [`StorefrontStore`] for SQLite: the storefront setting, the app catalogue and AppConnect
//! check-ins (migration `0007_storefront.sql`). Each write is one statement (atomic).

use super::{SqliteStore, db_err, parse_enum};
use async_trait::async_trait;
use ferrocore_core::error::{CoreError, Result};
use ferrocore_core::storefront::{AppConnectRecord, AppRecord, StorefrontStore};
use ferrocore_proto::{Platform, StorefrontAuth};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

fn app_from_row(r: &SqliteRow) -> Result<AppRecord> {
    Ok(AppRecord {
        id: r.try_get("id").map_err(db_err)?,
        platform: parse_enum::<Platform>(&r.try_get::<String, _>("platform").map_err(db_err)?)?,
        name: r.try_get("name").map_err(db_err)?,
        version: r.try_get("version").map_err(db_err)?,
        size: u64::try_from(r.try_get::<i64, _>("size").map_err(db_err)?)
            .map_err(CoreError::internal)?,
        sha256: r.try_get("sha256").map_err(db_err)?,
        published_at: r.try_get("published_at").map_err(db_err)?,
    })
}

const APP_COLUMNS: &str = "id, platform, name, version, size, sha256, published_at";

#[async_trait]
impl StorefrontStore for SqliteStore {
    async fn storefront_auth(&self) -> Result<StorefrontAuth> {
        let auth: String = sqlx::query_scalar("SELECT auth FROM storefront_settings WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        auth.parse().map_err(CoreError::Internal)
    }

    async fn set_storefront_auth(&self, auth: StorefrontAuth, at: i64) -> Result<()> {
        sqlx::query("UPDATE storefront_settings SET auth = ?, changed_at = ? WHERE id = 1")
            .bind(auth.as_str())
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
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
            .map_err(db_err)?,
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {APP_COLUMNS} FROM apps ORDER BY published_at DESC, name"
            )))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?,
        };
        rows.iter().map(app_from_row).collect()
    }

    async fn app(&self, id: &str) -> Result<Option<AppRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(app_from_row)
        .transpose()
    }

    async fn remove_app(&self, id: &str) -> Result<bool> {
        let res = sqlx::query("DELETE FROM apps WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
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
        .map_err(db_err)?;
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
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(AppConnectRecord {
                    app_id: r.try_get("app_id").map_err(db_err)?,
                    first_checkin_at: r.try_get("first_checkin_at").map_err(db_err)?,
                    last_checkin_at: r.try_get("last_checkin_at").map_err(db_err)?,
                    count: u64::try_from(r.try_get::<i64, _>("count").map_err(db_err)?)
                        .map_err(CoreError::internal)?,
                })
            })
            .collect()
    }
}
