//! [`EnrollmentConfigStore`] for SQLite. Enrollment configurations (certificate sources) and the selection of one.

use super::*;

#[async_trait]
impl EnrollmentConfigStore for SqliteStore {
    async fn enrollment_configs(&self) -> Result<Vec<EnrollmentConfigRecord>> {
        let rows = sqlx::query(
            "SELECT name, kind, ca_cert_pem, created_at, scep_url, scep_ca_sha256, \
             scep_recipient_pem, scep_caps FROM enrollment_configs ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| -> Result<EnrollmentConfigRecord> {
                let url: Option<String> = r.col("scep_url")?;
                let scep = match url {
                    Some(url) => Some(ScepParams {
                        url,
                        ca_sha256: r.col("scep_ca_sha256")?,
                        recipient_cert_pem: r.col("scep_recipient_pem")?,
                        caps: r.col("scep_caps")?,
                    }),
                    None => None,
                };
                Ok(EnrollmentConfigRecord {
                    name: r.col("name")?,
                    kind: r.col("kind")?,
                    ca_cert_pem: r.col("ca_cert_pem")?,
                    created_at: r.col("created_at")?,
                    scep,
                })
            })
            .collect()
    }

    async fn add_enrollment_config(&self, c: &EnrollmentConfigRecord) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO enrollment_configs (name, kind, ca_cert_pem, created_at, scep_url, \
             scep_ca_sha256, scep_recipient_pem, scep_caps) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.name)
        .bind(&c.kind)
        .bind(&c.ca_cert_pem)
        .bind(c.created_at)
        .bind(c.scep.as_ref().map(|p| p.url.as_str()))
        .bind(c.scep.as_ref().map(|p| p.ca_sha256.as_str()))
        .bind(c.scep.as_ref().map(|p| p.recipient_cert_pem.as_str()))
        .bind(c.scep.as_ref().map(|p| p.caps.as_str()))
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(CoreError::Conflict(
                format!("enrollment configuration {:?} already exists", c.name),
            )),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn ensure_enrollment_config(
        &self,
        name: &str,
        kind: &str,
        ca_cert_pem: &str,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrollment_configs (name, kind, ca_cert_pem, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, ca_cert_pem = excluded.ca_cert_pem",
        )
        .bind(name)
        .bind(kind)
        .bind(ca_cert_pem)
        .bind(at)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn devices_outside_config(
        &self,
        config: &str,
        limit: u32,
    ) -> Result<(Vec<DeviceRecord>, u64)> {
        let cond = "d.status = 'active' AND d.mode = 'mutual' AND d.reregister_required = 0 \
                    AND COALESCE(d.enrollment_config, 'local') <> ?";
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM devices d WHERE {cond}"
        )))
        .bind(config)
        .fetch_one(&self.pool)
        .await
        .db()?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d WHERE {cond} ORDER BY d.registered_at, d.id LIMIT ?"
        )))
        .bind(config)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .db()?;
        Ok((DeviceRecord::from_rows(&rows)?, total.unsigned_abs()))
    }

    async fn select_enrollment_config(&self, config: &str, at: i64) -> Result<()> {
        let res = self.select_enrollment_config_tx(config, at).await;
        self.forget_mutual_auth();
        res
    }
}
