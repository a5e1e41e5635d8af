//! [`UserStore`] for SQLite. Local users.

use super::*;

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &UserRecord) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO users (username, password_hash, email, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.email)
        .bind(user.created_at)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(CoreError::UserExists(user.username.clone()))
            }
            Err(e) => Err(db_err(e)),
        }
    }

    async fn user(&self, username: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(
            "SELECT username, password_hash, email, created_at FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        UserRecord::from_opt(row)
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let rows = sqlx::query(
            "SELECT username, password_hash, email, created_at FROM users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await
        .db()?;
        UserRecord::from_rows(&rows)
    }

    async fn delete_user(&self, username: &str, at: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM devices WHERE username = ? AND +status = 'active'",
        )
        .bind(username)
        .fetch_one(&mut *tx)
        .await
        .db()?;
        if active > 0 {
            return Err(CoreError::Conflict(format!(
                "user {username:?} has {active} active device(s); retire them first"
            )));
        }
        let res = sqlx::query("DELETE FROM users WHERE username = ?")
            .bind(username)
            .execute(&mut *tx)
            .await
            .db()?;
        if res.rows_affected() == 0 {
            return Err(CoreError::NotFound(format!("user {username:?}")));
        }
        // Their outstanding grants would otherwise still issue certificates.
        sqlx::query(
            "UPDATE enrollment_grants SET revoked_at = ? \
             WHERE username = ? AND consumed_at IS NULL AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(username)
        .execute(&mut *tx)
        .await
        .db()?;
        sqlx::query("DELETE FROM scep_static_challenges WHERE username = ?")
            .bind(username)
            .execute(&mut *tx)
            .await
            .db()?;
        tx.commit().await.db()
    }
}
