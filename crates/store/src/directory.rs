//! [`DirectoryUserStore`] for SQLite: directory users by (source, immutable ID), migration
//! `0020_directory_users.sql`. Each write is one statement (atomic).

use super::{SqliteStore, db_err};
use async_trait::async_trait;
use ferrocore_core::directory_sources::{DirectoryUserRecord, DirectoryUserStore};
use ferrocore_core::error::{CoreError, Result};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

const COLUMNS: &str = "source, external_id, username, login, dn, upn, mail, display_name, sid, \
                       groups_json, policy, state, first_seen_at, last_seen_at, checked_at";

fn from_row(r: &SqliteRow) -> Result<DirectoryUserRecord> {
    let groups: String = r.try_get("groups_json").map_err(db_err)?;
    Ok(DirectoryUserRecord {
        source: r.try_get("source").map_err(db_err)?,
        external_id: r.try_get("external_id").map_err(db_err)?,
        username: r.try_get("username").map_err(db_err)?,
        login: r.try_get("login").map_err(db_err)?,
        dn: r.try_get("dn").map_err(db_err)?,
        upn: r.try_get("upn").map_err(db_err)?,
        mail: r.try_get("mail").map_err(db_err)?,
        display_name: r.try_get("display_name").map_err(db_err)?,
        sid: r.try_get("sid").map_err(db_err)?,
        groups: serde_json::from_str(&groups).map_err(CoreError::internal)?,
        policy: r.try_get("policy").map_err(db_err)?,
        state: r.try_get("state").map_err(db_err)?,
        first_seen_at: r.try_get("first_seen_at").map_err(db_err)?,
        last_seen_at: r.try_get("last_seen_at").map_err(db_err)?,
        checked_at: r.try_get("checked_at").map_err(db_err)?,
    })
}

#[async_trait]
impl DirectoryUserStore for SqliteStore {
    async fn directory_user(
        &self,
        source: &str,
        external_id: &str,
    ) -> Result<Option<DirectoryUserRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM directory_users WHERE source = ? AND external_id = ?"
        )))
        .bind(source)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(from_row)
        .transpose()
    }

    async fn directory_user_by_name(&self, username: &str) -> Result<Option<DirectoryUserRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM directory_users WHERE username = ?"
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(from_row)
        .transpose()
    }

    async fn put_directory_user(&self, rec: &DirectoryUserRecord) -> Result<()> {
        let groups = serde_json::to_string(&rec.groups).map_err(CoreError::internal)?;
        let res = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO directory_users ({COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (source, external_id) DO UPDATE SET \
               login = excluded.login, dn = excluded.dn, upn = excluded.upn, \
               mail = excluded.mail, display_name = excluded.display_name, sid = excluded.sid, \
               groups_json = excluded.groups_json, policy = excluded.policy, \
               state = excluded.state, last_seen_at = excluded.last_seen_at, \
               checked_at = excluded.checked_at"
        )))
        .bind(&rec.source)
        .bind(&rec.external_id)
        .bind(&rec.username)
        .bind(&rec.login)
        .bind(&rec.dn)
        .bind(&rec.upn)
        .bind(&rec.mail)
        .bind(&rec.display_name)
        .bind(&rec.sid)
        .bind(groups)
        .bind(&rec.policy)
        .bind(&rec.state)
        .bind(rec.first_seen_at)
        .bind(rec.last_seen_at)
        .bind(rec.checked_at)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(CoreError::Conflict(format!(
                    "another directory user is already recorded as {:?}",
                    rec.username
                )))
            }
            Err(e) => Err(db_err(e)),
        }
    }

    async fn directory_users(&self) -> Result<Vec<DirectoryUserRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM directory_users ORDER BY username"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(from_row)
        .collect()
    }
}
