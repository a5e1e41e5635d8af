//! [`DeviceStore`] for SQLite. Devices: registration, identities, check-ins, renewal, migration, retirement, search.

use super::*;
use ferrocore_proto::GrantProtocol;

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn device_by_uuid(&self, device_uuid: &str) -> Result<Option<DeviceRecord>> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.device_uuid = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(device_uuid)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        DeviceRecord::from_opt(row)
    }

    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        DeviceRecord::from_opt(row)
    }

    async fn apply_enrollment(&self, e: &EnrollmentWrite, at: i64) -> Result<Applied> {
        let reg = &e.registration;
        let mut tx = self.begin().await?;
        let applied = registration_in(&mut tx, reg, at).await?;
        if let Some(g) = &e.grant {
            let serial = reg.cert.as_ref().map(|c| c.serial.as_str());
            let consumed = grants::consume_in(
                &mut tx,
                g.protocol,
                &g.secret_hash,
                at,
                serial,
                &applied.device_id,
            )
            .await?;
            if !consumed {
                return Err(match g.protocol {
                    GrantProtocol::Est => CoreError::EstTokenInvalid,
                    GrantProtocol::Scep => CoreError::ScepChallengeInvalid,
                });
            }
        }
        if let (Some(request), Some(c)) = (&e.scep_request, &reg.cert) {
            scep::record_request(&mut tx, request, &c.serial, &applied.device_id, at).await?;
        }
        tx.commit().await.db()?;
        Ok(applied)
    }

    async fn apply_reissue(&self, r: &ReissueWrite, at: i64) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let revoked = match &r.kind {
            ReissueKind::Renewal { authenticated_with } => {
                renewal_in(&mut tx, &r.device_id, &r.cert, authenticated_with, at).await?
            }
            ReissueKind::Migration => migration_in(&mut tx, &r.device_id, &r.cert, at).await?,
            ReissueKind::Storefront => storefront_in(&mut tx, &r.device_id, &r.cert, at).await?,
        };
        if let Some(request) = &r.scep_request {
            scep::record_request(&mut tx, request, &r.cert.serial, &r.device_id, at).await?;
        }
        tx.commit().await.db()?;
        Ok(revoked)
    }

    async fn identity_by_serial(&self, serial: &str) -> Result<Option<Identity>> {
        let sql = format!(
            "SELECT c.serial AS cert_serial, c.der AS cert_der, c.status AS cert_status, \
             c.revocation_reason, \
             {DEVICE_COLUMNS} FROM certificates c JOIN devices d ON d.id = c.device_id \
             WHERE c.serial = ?"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        row.map(|r| -> Result<Identity> {
            Ok(Identity {
                cert_serial: r.col("cert_serial")?,
                cert_der: r.col("cert_der")?,
                cert_status: cert_status(&r.col::<String>("cert_status")?)?,
                revocation_reason: r.col("revocation_reason")?,
                device: DeviceRecord::from_row(&r)?,
            })
        })
        .transpose()
    }

    async fn record_checkin(&self, c: &CheckinRecord, fx: &CheckinEffects) -> Result<()> {
        let insert =
            sqlx::query("INSERT INTO checkins (device_id, at, listener, mode) VALUES (?, ?, ?, ?)")
                .bind(&c.device_id)
                .bind(c.at)
                .bind(c.listener.as_str())
                .bind(c.mode.as_str());
        let plain = fx.client_version.is_none()
            && fx.supersede.is_none()
            && !fx.migration_success
            && !fx.migration_not_supported
            && !fx.mutual;
        if plain {
            // Hot path: one statement; the trigger updates devices.last_checkin_at in it. It
            // writes, so it takes the writer turn like a transaction.
            let _turn = self.writer.lock().await;
            insert.execute(&self.pool).await.db()?;
            if let Err(e) = self.wal.backstop(&self.pool).await {
                tracing::warn!(error = %e, "WAL truncation failed");
            }
            return Ok(());
        }
        let mut tx = self.begin().await?;
        insert.execute(&mut *tx).await.db()?;
        if let Some(v) = &fx.client_version {
            sqlx::query("UPDATE devices SET client_version = ? WHERE id = ?")
                .bind(v)
                .bind(&c.device_id)
                .execute(&mut *tx)
                .await
                .db()?;
        }
        if let Some(old) = &fx.supersede {
            revoke_in(&mut tx, std::slice::from_ref(old), "superseded", c.at).await?;
            sqlx::query("UPDATE devices SET previous_cert_serial = NULL WHERE id = ?")
                .bind(&c.device_id)
                .execute(&mut *tx)
                .await
                .db()?;
        }
        if fx.migration_success {
            sqlx::query(
                "UPDATE devices SET migration_status = 'success', mode = 'mutual', \
                 listener = 'device', secret_hash = NULL WHERE id = ?",
            )
            .bind(&c.device_id)
            .execute(&mut *tx)
            .await
            .db()?;
        }
        if fx.mutual {
            sqlx::query(
                "UPDATE devices SET mode = 'mutual', listener = 'device', secret_hash = NULL \
                 WHERE id = ?",
            )
            .bind(&c.device_id)
            .execute(&mut *tx)
            .await
            .db()?;
        }
        if fx.migration_not_supported {
            sqlx::query("UPDATE devices SET migration_status = 'not_supported' WHERE id = ?")
                .bind(&c.device_id)
                .execute(&mut *tx)
                .await
                .db()?;
        }
        tx.commit().await.db()
    }

    async fn retire_expired(&self, expired_before: i64, at: i64) -> Result<u64> {
        // `+status`: find the certificates through the expired devices (certificates_device),
        // not by scanning every active certificate (certificates_revoked). Same rows.
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE certificates SET status = 'revoked', revoked_at = ?1, \
             revocation_reason = 'cessation_of_operation' \
             WHERE +status = 'active' AND device_id IN \
             (SELECT id FROM devices WHERE status = 'active' AND cert_not_after < ?2)",
        )
        .bind(at)
        .bind(expired_before)
        .execute(&mut *tx)
        .await
        .db()?;
        let res = sqlx::query(
            "UPDATE devices SET status = 'retired', retired_at = ?1 \
             WHERE status = 'active' AND cert_not_after < ?2",
        )
        .bind(at)
        .bind(expired_before)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(res.rows_affected())
    }

    async fn renewal_at_risk(
        &self,
        now: i64,
        _grace_secs: i64,
        limit: u32,
        offset: u64,
    ) -> Result<Page<AtRisk>> {
        // Window start = not_after - window days; at risk from then until the device is
        // actually retired (the sweep, hourly, retires it once the grace is over: until then
        // it is still listed). (not_after - window <= now is written not_after <= now +
        // window: an index bound.)
        let cond = "d.status = 'active' AND d.cert_not_after IS NOT NULL \
             AND d.cert_not_after <= ?1 + COALESCE(p.renewal_window_days, 60) * 86400";
        // Counted per policy (a handful of rows) over `devices_policy_expiry`, index only; the
        // page walks `devices_cert_not_after` in report order and stops after one page.
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM policies p CROSS JOIN devices d \
             WHERE p.name = d.policy AND {cond}"
        )))
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .db()?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS}, COALESCE(p.renewal_window_days, 60) AS window_days \
             FROM devices d JOIN policies p ON p.name = d.policy WHERE {cond} \
             ORDER BY d.cert_not_after, d.id LIMIT ?2 OFFSET ?3"
        )))
        .bind(now)
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .db()?;
        let items = rows
            .iter()
            .map(|r| -> Result<AtRisk> {
                Ok(AtRisk {
                    device: DeviceRecord::from_row(r)?,
                    window_days: r.num::<u32>("window_days")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Page {
            items,
            total: total.unsigned_abs(),
        })
    }

    async fn list_devices(&self, q: &DeviceQuery) -> Result<Page<DeviceRecord>> {
        let mut filters = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        if let Some(u) = &q.username {
            filters.push("d.username = ?");
            binds.push(u.clone());
        }
        if let Some(p) = q.platform {
            filters.push("d.platform = ?");
            binds.push(p.as_str().into());
        }
        if let Some(k) = q.client_kind {
            filters.push("d.client_kind = ?");
            binds.push(k.as_str().into());
        }
        if let Some(v) = &q.client_version {
            filters.push("d.client_version = ?");
            binds.push(v.clone());
        }
        if let Some(m) = q.mode {
            filters.push("d.mode = ?");
            binds.push(m.as_str().into());
        }
        if let Some(m) = q.migration_status {
            filters.push("d.migration_status = ?");
            binds.push(m.as_str().into());
        }
        if let Some(s) = q.status {
            filters.push("d.status = ?");
            binds.push(device_status_str(s).into());
        }
        let mut int_binds: Vec<i64> = Vec::new();
        if let Some(t) = q.cert_expires_after {
            filters.push("d.cert_not_after >= ?");
            int_binds.push(t);
        }
        if let Some(t) = q.cert_expires_before {
            filters.push("d.cert_not_after <= ?");
            int_binds.push(t);
        }
        // Inside the window: not_after - window <= t, written not_after <= t + window so that,
        // with the policy joined (every device has exactly one), it bounds an index range.
        if let Some(t) = q.in_renewal_window_at {
            filters.push(
                "d.cert_not_after >= ? AND d.cert_not_after <= ? + 86400 * \
                 COALESCE(p.renewal_window_days, 60)",
            );
            int_binds.push(t);
            int_binds.push(t);
        }
        if let Some(t) = q.last_checkin_after {
            filters.push("d.last_checkin_at >= ?");
            int_binds.push(t);
        }
        if let Some(t) = q.last_checkin_before {
            filters.push("d.last_checkin_at <= ?");
            int_binds.push(t);
        }
        let where_ = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        // The window filter joins the device's policy. Without a more selective indexed filter
        // (user, migration status), drive the join from the policies (a handful of rows) into
        // `devices_policy_expiry`: one index range per policy, so the count reads no table row.
        let window = q.in_renewal_window_at.is_some();
        let (from, where_) = if window && q.username.is_none() && q.migration_status.is_none() {
            (
                "policies p CROSS JOIN devices d",
                format!("{where_} AND d.policy = p.name"),
            )
        } else if window {
            ("devices d JOIN policies p ON p.name = d.policy", where_)
        } else {
            ("devices d", where_)
        };
        let count_sql = format!("SELECT COUNT(*) FROM {from} {where_}");
        let mut count_q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql));
        for b in &binds {
            count_q = count_q.bind(b.clone());
        }
        for b in &int_binds {
            count_q = count_q.bind(*b);
        }
        let total = count_q.fetch_one(&self.pool).await.db()?;
        // Page plan. Left alone, SQLite reads every match through the filter's index and sorts
        // them to find one page: fine for a few thousand matches, slow for 100,000. Walking
        // `devices_registered` in page order instead stops after about (offset + limit) * rows /
        // matches rows, so it is chosen when that is less than the matches (the count just
        // taken tells the selectivity; MAX(rowid) estimates the rows). Same rows either way.
        let walk = if filters.is_empty() || total <= 0 {
            false
        } else {
            let rows: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) FROM devices")
                .fetch_one(&self.pool)
                .await
                .db()?;
            let wanted = i128::from(q.limit) + i128::from(q.offset);
            wanted * i128::from(rows) < i128::from(total) * i128::from(total)
        };
        let from = match (walk, window) {
            (true, true) => {
                "devices d INDEXED BY devices_registered JOIN policies p ON p.name = d.policy"
            }
            (true, false) => "devices d INDEXED BY devices_registered",
            (false, _) => from,
        };
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM {from} {where_} ORDER BY d.registered_at, d.id LIMIT ? OFFSET ?"
        );
        let mut list_q = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            list_q = list_q.bind(b.clone());
        }
        for b in &int_binds {
            list_q = list_q.bind(*b);
        }
        let rows = list_q
            .bind(i64::from(q.limit))
            .bind(i64::try_from(q.offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .db()?;
        Ok(Page {
            items: DeviceRecord::from_rows(&rows)?,
            total: total.unsigned_abs(),
        })
    }

    async fn checkins(&self, device_id: &str, limit: u32) -> Result<Vec<CheckinRecord>> {
        let rows = sqlx::query(
            "SELECT device_id, at, listener, mode FROM checkins WHERE device_id = ? \
             ORDER BY at DESC, id DESC LIMIT ?",
        )
        .bind(device_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| -> Result<CheckinRecord> {
                Ok(CheckinRecord {
                    device_id: r.col("device_id")?,
                    at: r.col("at")?,
                    listener: r.parsed("listener")?,
                    mode: r.parsed("mode")?,
                })
            })
            .collect()
    }

    async fn retire_device(&self, id: &str, at: i64) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM devices WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .db()?;
        match status.as_deref() {
            None => return Err(CoreError::NotFound(format!("device {id}"))),
            Some("retired") => {
                return Err(CoreError::Conflict(format!(
                    "device {id} is already retired"
                )));
            }
            _ => {}
        }
        let serials: Vec<String> = sqlx::query_scalar(ACTIVE_CERTS_OF_DEVICE)
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .db()?;
        revoke_in(&mut tx, &serials, "cessation_of_operation", at).await?;
        sqlx::query("UPDATE devices SET status = 'retired', retired_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
        tx.commit().await.db()?;
        Ok(serials)
    }
}
