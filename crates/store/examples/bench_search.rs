//! Advanced-search and retirement-sweep benchmark on the SQLite store (issue 3, "Benchmark").
//!
//! ```text
//! cargo run --release -p ferrocore-store --example bench_search [-- --devices N] [--runs R]
//! ```
//!
//! Creates a fresh database in a temporary directory with [`SqliteStore::open`] (so the real
//! migrations apply, indexes included), bulk-loads `N` devices (default 1,000,000) with
//! realistic distributions, re-opens the store (fresh pool, default SQLite settings, as the
//! server runs it) and times, through the [`Store`] trait methods the admin API calls, the
//! queries an administrator runs: each is run once "cold" (first run on the fresh pool; the
//! OS page cache is warm from the load) and then `R` times (default 20) for median and p95.
//! Last, the full retirement sweep `retire_expired(now - 30 d, now)` runs once (it changes the
//! data, so it goes after every query), and once more to show a sweep with nothing to do.
//!
//! Data set (deterministic pseudo-random, seeded):
//! - ~10,000 users `user00001`..; each device belongs to a uniformly drawn user (~100 each);
//! - platforms android 50 %, ios 35 %, macos 5 %, windows 10 %; client kind agent or mdm by
//!   platform, with a spread of versions;
//! - migration status none ~96 %, success ~2 % (mutual), pending ~1 % and not supported ~1 %
//!   (legacy); otherwise mode mutual 80 % / legacy 20 %;
//! - every mutual device and every pending one has an identity certificate: one row in
//!   `certificates` (status active) and `cert_not_after` uniform over now - 60 d .. now + 365 d,
//!   so about 7 % of them are expired past the 30-day grace (the sweep's backlog). Legacy
//!   devices without a certificate have `cert_not_after` NULL, as registration leaves it;
//! - the certificate `der` is a 32-byte dummy blob: neither search nor the sweep reads it;
//! - `registered_at` increases with the row over the last 3 years; `last_checkin_at` uniform
//!   over the last 30 days; every device on policy `default` (renewal window blank = 60 d);
//!   mutual devices on enrollment configuration `local` (as migration 0004 sets them);
//! - all devices start active.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferrocore_core::store::DeviceQuery;
use ferrocore_core::store::traits::*;
use ferrocore_proto::{AuthMode, DeviceStatus, MigrationStatus, Platform};
use ferrocore_store::SqliteStore;
use sqlx::AssertSqlSafe;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;
const USERS: u64 = 10_000;
const GRACE: i64 = 30 * DAY;
const PAGE: u32 = 50;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + i64::try_from(self.below((hi - lo) as u64)).unwrap()
    }
    fn hex(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes * 2);
        while s.len() < bytes * 2 {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(bytes * 2);
        s
    }
    fn uuid(&mut self) -> String {
        let h = self.hex(16);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

struct Device {
    id: String,
    uuid: String,
    username: String,
    platform: &'static str,
    kind: &'static str,
    version: &'static str,
    mode: &'static str,
    listener: &'static str,
    registered_at: i64,
    last_checkin_at: i64,
    cert: Option<(String, i64, &'static str)>,
    secret_hash: Option<String>,
    migration: &'static str,
}

fn gen_device(rng: &mut Rng, i: u64, n: u64, now: i64) -> Device {
    let r = rng.below(100);
    let platform = match r {
        0..50 => "android",
        50..85 => "ios",
        85..90 => "macos",
        _ => "windows",
    };
    let k = rng.below(100);
    let (kind, version) = match platform {
        "android" => {
            let v = ["9.8.0", "10.0.0", "10.1.0", "10.2.0", "11.0.0"];
            ("agent", v[rng.below(5) as usize])
        }
        "ios" if k < 70 => {
            let v = ["11.0.0", "11.1.0", "11.2.0", "12.0.0"];
            ("agent", v[rng.below(4) as usize])
        }
        "ios" => ("mdm", ["16.7", "17.5", "18.1"][rng.below(3) as usize]),
        "macos" => ("mdm", ["13.6", "14.5", "15.1"][rng.below(3) as usize]),
        _ if k < 40 => ("agent", ["3.2.0", "3.3.0"][rng.below(2) as usize]),
        _ => ("mdm", ["10.0.19045", "10.0.22631"][rng.below(2) as usize]),
    };
    let m = rng.below(100);
    let migration = match m {
        0 => "pending",
        1..3 => "success",
        3 => "not_supported",
        _ => "none",
    };
    let mode = match migration {
        "pending" | "not_supported" => "legacy",
        "success" => "mutual",
        _ if rng.below(100) < 80 => "mutual",
        _ => "legacy",
    };
    let listener = if mode == "mutual" || rng.below(10) == 0 {
        "device"
    } else {
        "sync_tls"
    };
    let start = now - 3 * 365 * DAY;
    let registered_at = start + i64::try_from(i * (3 * 365 * DAY as u64 - DAY as u64) / n).unwrap();
    let last_checkin_at = rng.range(now - 30 * DAY, now);
    let cert = (mode == "mutual" || migration == "pending").then(|| {
        let reason = if migration == "none" {
            "registration"
        } else {
            "migration"
        };
        (
            rng.hex(16),
            rng.range(now - 60 * DAY, now + 365 * DAY),
            reason,
        )
    });
    let secret_hash = (mode == "legacy").then(|| rng.hex(32));
    Device {
        id: rng.uuid(),
        uuid: rng.uuid(),
        username: format!("user{:05}", rng.below(USERS) + 1),
        platform,
        kind,
        version,
        mode,
        listener,
        registered_at,
        last_checkin_at,
        cert,
        secret_hash,
        migration,
    }
}

const DEV_COLS: &str = "(id, device_uuid, username, platform, client_kind, client_version, mode, \
    listener, status, registered_with_ma, registered_at, last_checkin_at, retired_at, \
    current_cert_serial, cert_not_after, secret_hash, policy, previous_cert_serial, \
    migration_status, renewal_count, enrollment_config)";
const CERT_COLS: &str = "(serial, device_id, subject, not_before, not_after, issued_at, status, \
    revoked_at, revocation_reason, der, issue_reason, replaces_serial)";

fn values_sql(table: &str, cols: &str, per_row: &str, rows: usize) -> String {
    let mut s = format!("INSERT INTO {table} {cols} VALUES ");
    for i in 0..rows {
        if i > 0 {
            s.push(',');
        }
        s.push_str(per_row);
    }
    s
}

async fn insert_batch(conn: &mut sqlx::SqliteConnection, batch: &[Device]) {
    let dev_sql = values_sql(
        "devices",
        DEV_COLS,
        "(?,?,?,?,?,?,?,?,'active',?,?,?,NULL,?,?,?,'default',NULL,?,0,?)",
        batch.len(),
    );
    let mut q = sqlx::query(AssertSqlSafe(dev_sql));
    for d in batch {
        q = q
            .bind(d.id.clone())
            .bind(d.uuid.clone())
            .bind(d.username.clone())
            .bind(d.platform)
            .bind(d.kind)
            .bind(d.version)
            .bind(d.mode)
            .bind(d.listener)
            .bind(d.mode == "mutual")
            .bind(d.registered_at)
            .bind(d.last_checkin_at)
            .bind(d.cert.as_ref().map(|c| c.0.clone()))
            .bind(d.cert.as_ref().map(|c| c.1))
            .bind(d.secret_hash.clone())
            .bind(d.migration)
            .bind((d.mode == "mutual").then_some("local"));
    }
    q.execute(&mut *conn).await.unwrap();
    let certs: Vec<&Device> = batch.iter().filter(|d| d.cert.is_some()).collect();
    if certs.is_empty() {
        return;
    }
    let cert_sql = values_sql(
        "certificates",
        CERT_COLS,
        "(?,?,?,?,?,?,'active',NULL,NULL,?,?,NULL)",
        certs.len(),
    );
    let mut q = sqlx::query(AssertSqlSafe(cert_sql));
    for d in certs {
        let (serial, not_after, reason) = d.cert.clone().unwrap();
        q = q
            .bind(serial)
            .bind(d.id.clone())
            .bind(format!("CN={}", d.uuid))
            .bind(not_after - 365 * DAY)
            .bind(not_after)
            .bind(not_after - 365 * DAY)
            .bind(vec![0u8; 32])
            .bind(reason);
    }
    q.execute(&mut *conn).await.unwrap();
}

/// Loads `n` devices on one connection of the store's pool, in transactions of 100,000
/// devices, 500-row multi-VALUES statements. Returns the number of certificates.
async fn load(store: &SqliteStore, n: u64, now: i64) -> u64 {
    const BATCH: u64 = 500;
    const TX: u64 = 100_000;
    let mut rng = Rng(0x5EED_F3EE_C0DE);
    let mut conn = store.pool().acquire().await.unwrap();
    // Loader only: a bigger page cache for index maintenance. The store is re-opened before
    // the measurements, so the queries run with the server's default settings.
    sqlx::query("PRAGMA cache_size = -262144")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    for u in 1..=USERS {
        sqlx::query(
            "INSERT INTO users (username, password_hash, email, created_at) VALUES (?, 'x', NULL, ?)",
        )
        .bind(format!("user{u:05}"))
        .bind(now - 3 * 365 * DAY)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    let mut certs = 0u64;
    let mut i = 0u64;
    while i < n {
        sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
        let tx_end = (i + TX).min(n);
        while i < tx_end {
            let end = (i + BATCH).min(tx_end);
            let batch: Vec<Device> = (i..end).map(|j| gen_device(&mut rng, j, n, now)).collect();
            certs += batch.iter().filter(|d| d.cert.is_some()).count() as u64;
            insert_batch(&mut conn, &batch).await;
            i = end;
        }
        sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    }
    certs
}

struct Stats {
    rows: usize,
    total: u64,
    cold: Duration,
    median: Duration,
    p95: Duration,
}

async fn measure<F, Fut>(runs: usize, f: F) -> Stats
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (usize, u64)>,
{
    let t = Instant::now();
    let (rows, total) = f().await;
    let cold = t.elapsed();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let r = f().await;
        times.push(t.elapsed());
        assert_eq!(r, (rows, total), "query result changed between runs");
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    Stats {
        rows,
        total,
        cold,
        median: pct(0.5),
        p95: pct(0.95),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut n: u64 = 1_000_000;
    let mut runs: usize = 20;
    let mut keep: Option<std::path::PathBuf> = None;
    let mut from: Option<std::path::PathBuf> = None;
    let mut load_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--devices" => n = args.next().expect("--devices N").parse().expect("number"),
            "--runs" => runs = args.next().expect("--runs R").parse().expect("number"),
            "--db" => keep = Some(args.next().expect("--db PATH").into()),
            "--from" => from = Some(args.next().expect("--from PATH").into()),
            "--load-only" => load_only = true,
            other => panic!(
                "unknown argument {other} (use --devices N, --runs R, --db PATH, --load-only, \
                 --from PATH)"
            ),
        }
    }
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // `--db PATH` keeps the database (a new file) for EXPLAIN QUERY PLAN afterwards.
    let path = keep.unwrap_or_else(|| dir.path().join("bench.db"));
    assert!(!path.exists(), "{} exists; give a new file", path.display());

    if let Some(src) = &from {
        // Benchmark a copy of a database kept by an earlier `--db PATH --load-only` run
        // (opening it applies any newer migration, as a server upgrade would).
        std::fs::copy(src, &path).unwrap();
        n = {
            let st = SqliteStore::open(&path).await.unwrap();
            let c: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices")
                .fetch_one(st.pool())
                .await
                .unwrap();
            st.pool().close().await;
            c.unsigned_abs()
        };
        println!("copied {} ({n} devices)\n", src.display());
    } else {
        let store = SqliteStore::open(&path).await.unwrap();
        let t = Instant::now();
        let certs = load(&store, n, now).await;
        let load_time = t.elapsed();
        store.pool().close().await;
        drop(store);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(path.with_extension("db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        println!(
            "loaded {n} devices and {certs} certificates in {:.1} s (database {:.0} MB)\n",
            load_time.as_secs_f64(),
            size as f64 / 1e6
        );
        if load_only {
            return;
        }
    }

    let store = SqliteStore::open(&path).await.unwrap();
    let s = &store;
    let page = |q: DeviceQuery| async move {
        let p = s.list_devices(&q).await.unwrap();
        (p.items.len(), p.total)
    };
    let base = DeviceQuery {
        limit: PAGE,
        ..DeviceQuery::default()
    };
    let deep = format!("unfiltered, deep page (offset {})", n / 2);
    let user = format!("user{:05}", 4242);
    let cases: Vec<(&str, &str, DeviceQuery)> = vec![
        (
            "a",
            "expiring in the next 30 days (status active, cert expiry now..now+30d)",
            DeviceQuery {
                status: Some(DeviceStatus::Active),
                cert_expires_after: Some(now),
                cert_expires_before: Some(now + 30 * DAY),
                ..base.clone()
            },
        ),
        (
            "b",
            "migration status Pending",
            DeviceQuery {
                migration_status: Some(MigrationStatus::Pending),
                ..base.clone()
            },
        ),
        (
            "c",
            "one user's devices (user04242)",
            DeviceQuery {
                username: Some(user.clone()),
                ..base.clone()
            },
        ),
        (
            "d",
            "inside renewal window now",
            DeviceQuery {
                in_renewal_window_at: Some(now),
                ..base.clone()
            },
        ),
        (
            "e",
            "android + mutual + last check-in before now-7d",
            DeviceQuery {
                platform: Some(Platform::Android),
                mode: Some(AuthMode::Mutual),
                last_checkin_before: Some(now - 7 * DAY),
                ..base.clone()
            },
        ),
        (
            "f",
            deep.as_str(),
            DeviceQuery {
                offset: n / 2,
                ..base.clone()
            },
        ),
        ("f0", "unfiltered, first page", base.clone()),
    ];

    println!("| # | query | rows | total | cold ms | median ms | p95 ms | target |");
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    for (tag, what, q) in &cases {
        let st = measure(runs, || page(q.clone())).await;
        let ok = if st.median < Duration::from_millis(50) {
            "< 50 ms: met"
        } else {
            "< 50 ms: MISSED"
        };
        println!(
            "| {tag} | {what} | {} | {} | {} | {} | {} | {ok} |",
            st.rows,
            st.total,
            ms(st.cold),
            ms(st.median),
            ms(st.p95)
        );
    }
    let st = measure(runs, || async {
        let p = s.renewal_at_risk(now, GRACE, PAGE, 0).await.unwrap();
        (p.items.len(), p.total)
    })
    .await;
    let ok = if st.median < Duration::from_millis(50) {
        "< 50 ms: met"
    } else {
        "< 50 ms: MISSED"
    };
    println!(
        "| g | renewal-at-risk report, first page | {} | {} | {} | {} | {} | {ok} |",
        st.rows,
        st.total,
        ms(st.cold),
        ms(st.median),
        ms(st.p95)
    );

    let t = Instant::now();
    let retired = s.retire_expired(now - GRACE, now).await.unwrap();
    let sweep = t.elapsed();
    let ok = if sweep < Duration::from_secs(10) {
        "< 10 s: met"
    } else {
        "< 10 s: MISSED"
    };
    println!(
        "| h | retirement sweep `retire_expired(now-30d, now)` | {retired} retired | | {} | | | {ok} |",
        ms(sweep)
    );
    let t = Instant::now();
    let again = s.retire_expired(now - GRACE, now).await.unwrap();
    let sweep2 = t.elapsed();
    println!(
        "| h2 | the same sweep again (nothing left to retire) | {again} retired | | {} | | | {} |",
        ms(sweep2),
        if sweep2 < Duration::from_secs(10) {
            "< 10 s: met"
        } else {
            "< 10 s: MISSED"
        }
    );
    let revoked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM certificates WHERE revocation_reason = 'cessation_of_operation'",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    println!(
        "\nsweep revoked {revoked} certificates; {runs} timed runs per query after the cold one"
    );
}
