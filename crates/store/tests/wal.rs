//! The write-ahead log stays bounded under sustained writes with overlapping reads (issue 22),
//! and nothing committed is lost by emptying it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/apply.rs"]
mod apply;
use apply::ApplyExt;
use ferrocore_core::store::traits::*;
use ferrocore_core::store::{
    CertRecord, CheckinEffects, CheckinRecord, DeviceRecord, Registration, UserRecord,
};
use ferrocore_proto::{
    AuthMode, CertStatus, ClientKind, DeviceStatus, Listener, MigrationStatus, Platform,
};
use ferrocore_store::{SqliteStore, StoreOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const LIMIT: u64 = 1 << 20;
const DEVICES: usize = 8;

fn registration(i: usize) -> Registration {
    let id = format!("dev-{i}");
    Registration {
        device: DeviceRecord {
            id: id.clone(),
            device_uuid: format!("uuid-{i}"),
            username: "alice".into(),
            platform: Platform::Android,
            client_kind: ClientKind::Agent,
            client_version: "10.1.0".into(),
            mode: AuthMode::Mutual,
            listener: Listener::Device,
            status: DeviceStatus::Active,
            registered_with_ma: true,
            registered_at: 1,
            last_checkin_at: None,
            retired_at: None,
            current_cert_serial: Some(format!("{i:04x}")),
            cert_not_after: Some(1_000_000),
            secret_hash: None,
            policy: "default".into(),
            previous_cert_serial: None,
            migration_status: MigrationStatus::None,
            renewal_count: 0,
            enrollment_config: Some("local".into()),
            reregister_required: false,
        },
        cert: Some(CertRecord {
            serial: format!("{i:04x}"),
            device_id: Some(id),
            subject: "CN=alice".into(),
            not_before: 1,
            not_after: 1_000_000,
            issued_at: 1,
            status: CertStatus::Active,
            revoked_at: None,
            revocation_reason: None,
            der: vec![0; 600],
            issue_reason: "registration".into(),
            replaces_serial: None,
            enrollment_config: "local".into(),
        }),
    }
}

/// Rows of `sql` in a copy of the database file alone (without its WAL).
async fn count_in_file_only(db: &std::path::Path, sql: &str) -> i64 {
    let copy = db.with_extension("copy");
    std::fs::copy(db, &copy).unwrap();
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&copy)
        .read_only(true);
    let mut c = sqlx::ConnectOptions::connect(&opts).await.unwrap();
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut c)
        .await
        .unwrap();
    std::fs::remove_file(&copy).unwrap();
    n
}

/// A 1 MiB limit; four writers check in and register without pause while four readers keep
/// reading (so a reader is nearly always inside the log, which is what kept PASSIVE
/// checkpoints from ever restarting it). The WAL file, sampled every millisecond, stays under
/// a small multiple of the limit; afterwards every committed check-in and registration is in
/// the database file itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wal_stays_bounded_under_sustained_writes_with_overlapping_reads() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let wal_path = dir.path().join("t.db-wal");
    let store = Arc::new(
        SqliteStore::open_with(
            &db,
            &StoreOptions {
                wal_limit_bytes: LIMIT,
            },
        )
        .await
        .unwrap(),
    );
    store
        .create_user(&UserRecord {
            username: "alice".into(),
            password_hash: "x".into(),
            email: None,
            created_at: 1,
        })
        .await
        .unwrap();
    for i in 0..DEVICES {
        store.apply_registration(&registration(i), 1).await.unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let checkins = Arc::new(AtomicU64::new(0));
    let registrations = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..4_usize {
        let (store, stop, checkins, registrations) = (
            store.clone(),
            stop.clone(),
            checkins.clone(),
            registrations.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0_usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if w == 0 && n.is_multiple_of(10) {
                    // A registration: device and certificate rows (a bigger transaction).
                    let i = 1000 + n;
                    store.apply_registration(&registration(i), 2).await.unwrap();
                    registrations.fetch_add(1, Ordering::Relaxed);
                } else {
                    let c = CheckinRecord {
                        device_id: format!("dev-{}", (n + w) % DEVICES),
                        at: i64::try_from(n).unwrap(),
                        listener: Listener::Device,
                        mode: AuthMode::Mutual,
                    };
                    store
                        .record_checkin(&c, &CheckinEffects::default())
                        .await
                        .unwrap();
                    checkins.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for r in 0..4_usize {
        let (store, stop, reads) = (store.clone(), stop.clone(), reads.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = r;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = format!("dev-{}", n % DEVICES);
                store.checkins(&id, 50).await.unwrap();
                store
                    .identity_by_serial(&format!("{:04x}", n % DEVICES))
                    .await
                    .unwrap();
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // Until 40 times the limit went through the log (or 60 s passed), sample its size.
    let started = Instant::now();
    let mut max_wal = 0_u64;
    while started.elapsed() < Duration::from_secs(60) {
        max_wal = max_wal.max(std::fs::metadata(&wal_path).map_or(0, |m| m.len()));
        // ~6 frames of 4 KiB per check-in, ~12 per registration.
        let written = checkins.load(Ordering::Relaxed) * 24_000
            + registrations.load(Ordering::Relaxed) * 48_000;
        if written > 40 * LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let (checkins, registrations) = (
        checkins.load(Ordering::Relaxed),
        registrations.load(Ordering::Relaxed),
    );
    let status = store.storage_status().await.unwrap();
    eprintln!(
        "{checkins} check-ins, {registrations} registrations, {} reads in {:?}; \
         max WAL {max_wal} bytes (limit {LIMIT}); {status:?}",
        reads.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(
        checkins > 1000,
        "too little load to show anything: {checkins}"
    );
    assert!(
        reads.load(Ordering::Relaxed) > 100,
        "the readers did not overlap"
    );
    assert!(
        max_wal < 4 * LIMIT,
        "WAL reached {max_wal} bytes, limit {LIMIT}: {status:?}"
    );
    assert!(status.wal_truncations > 0, "{status:?}");
    assert_eq!(status.wal_limit_bytes, LIMIT);
    assert!(status.max_wal_bytes < 4 * LIMIT, "{status:?}");

    // Everything committed reaches the database file once the log is checkpointed.
    let (frames, copied) = store.checkpoint().await.unwrap();
    assert_eq!(
        frames, copied,
        "a checkpoint with no load copies the whole log"
    );
    assert_eq!(
        count_in_file_only(&db, "SELECT COUNT(*) FROM checkins").await,
        i64::try_from(checkins).unwrap()
    );
    assert_eq!(
        count_in_file_only(&db, "SELECT COUNT(*) FROM devices").await,
        i64::try_from(DEVICES as u64 + registrations).unwrap()
    );
    assert_eq!(
        count_in_file_only(&db, "SELECT COUNT(*) FROM certificates").await,
        i64::try_from(DEVICES as u64 + registrations).unwrap()
    );
}
