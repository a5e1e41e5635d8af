//! One transaction per state change (ARCHITECTURE.md): for each state change the store makes
//! — retirement, re-registration, renewal (also SCEP's and migration's), the sync-TLS switch,
//! enrollment-configuration selection, grant consumption (EST and SCEP), a check-in with its
//! effects, user deletion — a fault injected at its first, second, ... row write leaves the
//! database exactly as it was (a full dump of every table compared), and once the fault comes
//! after its last write the change is made.
//!
//! The fault: [`Faulty`] arms every connection of the store's pool with an update hook that
//! counts row writes and a progress handler that interrupts the statement making the n-th one
//! (SQLite then rolls back the transaction it is in). A state change split into two
//! transactions leaves the first one committed when the fault hits the second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferrocore_core::CoreError;
#[path = "support/apply.rs"]
mod apply;
use apply::ApplyExt;
use ferrocore_core::store::traits::*;
use ferrocore_core::store::{
    CertRecord, CheckinEffects, CheckinRecord, DeviceRecord, EnrollmentConfigRecord, GrantRecord,
    Registration, ScepChallengeRecord, ScepGrant, ScepRequestKey, UserRecord,
};
use ferrocore_proto::{
    AuthMode, CertStatus, ClientKind, DeviceStatus, GrantProtocol, Listener, MigrationStatus,
    Platform,
};
use ferrocore_store::SqliteStore;
use sqlx::Row;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const T0: i64 = 1_800_000_000;

/// Counts row writes while armed and fails the statement that makes the `fail_at`-th one.
#[derive(Default)]
struct Fault {
    armed: AtomicBool,
    writes: AtomicUsize,
    fail_at: AtomicUsize,
    fired: AtomicUsize,
}

/// The store with a fault injector on every pooled connection.
struct Faulty {
    dir: tempfile::TempDir,
    store: Mutex<Arc<SqliteStore>>,
    fault: Arc<Fault>,
}

/// A state change under test: one call of the store.
type Op<'a, T> = Pin<Box<dyn Future<Output = Result<T, CoreError>> + Send + 'a>>;

impl Faulty {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fault = Arc::new(Fault::default());
        let store = Self::open(&dir, &fault).await;
        Faulty {
            dir,
            store: Mutex::new(store),
            fault,
        }
    }

    fn store(&self) -> Arc<SqliteStore> {
        self.store.lock().unwrap().clone()
    }

    /// After a fault SQLite has rolled the transaction back, but sqlx's connection still
    /// counts it as open: the test goes on with a freshly opened store on the same file.
    async fn reopen(&self) {
        let old = self.store();
        old.pool().close().await;
        let new = Self::open(&self.dir, &self.fault).await;
        *self.store.lock().unwrap() = new;
    }

    async fn open(dir: &tempfile::TempDir, fault: &Arc<Fault>) -> Arc<SqliteStore> {
        let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
        // Take every connection the pool will ever hold at once, and arm each.
        let max = store.pool().options().get_max_connections();
        let mut conns = Vec::new();
        for _ in 0..max {
            conns.push(store.pool().acquire().await.unwrap());
        }
        for c in &mut conns {
            let trip = Arc::new(AtomicBool::new(false));
            let mut h = c.lock_handle().await.unwrap();
            let (f, t) = (fault.clone(), trip.clone());
            h.set_update_hook(move |_| {
                if f.armed.load(Ordering::SeqCst)
                    && f.writes.fetch_add(1, Ordering::SeqCst) + 1
                        == f.fail_at.load(Ordering::SeqCst)
                {
                    t.store(true, Ordering::SeqCst);
                }
            });
            let f = fault.clone();
            h.set_progress_handler(1, move || {
                if trip.swap(false, Ordering::SeqCst) {
                    f.fired.fetch_add(1, Ordering::SeqCst);
                    return false;
                }
                true
            });
        }
        drop(conns);
        store
    }

    fn arm(&self, n: usize) {
        self.fault.writes.store(0, Ordering::SeqCst);
        self.fault.fired.store(0, Ordering::SeqCst);
        self.fault.fail_at.store(n, Ordering::SeqCst);
        self.fault.armed.store(true, Ordering::SeqCst);
    }

    /// Disarms; `(row writes seen, faults fired)`.
    fn disarm(&self) -> (usize, usize) {
        self.fault.armed.store(false, Ordering::SeqCst);
        (
            self.fault.writes.load(Ordering::SeqCst),
            self.fault.fired.load(Ordering::SeqCst),
        )
    }

    /// Every row of every table, as SQL literals, sorted.
    async fn dump(&self) -> BTreeMap<String, Vec<String>> {
        let store = self.store();
        let pool = store.pool();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .fetch_all(pool)
                .await
                .unwrap();
        let mut out = BTreeMap::new();
        for t in tables {
            let cols: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT name FROM pragma_table_info('{t}')"
            )))
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| format!("quote(\"{}\")", r.get::<String, _>(0)))
            .collect();
            let sql = format!("SELECT {} FROM \"{t}\"", cols.join(" || ',' || "));
            let mut rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
                .unwrap();
            rows.sort();
            out.insert(t, rows);
        }
        out
    }

    /// Runs `op` with a fault at its 1st, 2nd, ... row write until it succeeds: each failed
    /// run must leave the dump unchanged; the successful one must change it. Returns the
    /// number of row writes the state change makes (at least `min_writes`).
    async fn check<'a, T>(
        &self,
        what: &str,
        min_writes: usize,
        op: impl Fn(Arc<SqliteStore>) -> Op<'a, T>,
    ) -> T {
        let before = self.dump().await;
        for n in 1.. {
            let store = self.store();
            self.arm(n);
            let res = op(store.clone()).await;
            let (writes, fired) = self.disarm();
            drop(store);
            match res {
                Err(e) => {
                    self.reopen().await;
                    assert_eq!(
                        fired, 1,
                        "{what}: failed without the fault at write {n}: {e:?}"
                    );
                    let now = self.dump().await;
                    for (table, rows) in &before {
                        assert_eq!(
                            &now[table], rows,
                            "{what}: fault at row write {n} of the state change left table \
                             {table} changed"
                        );
                    }
                    assert_eq!(now, before, "{what}: fault at write {n}");
                }
                Ok(v) => {
                    assert_eq!(fired, 0, "{what}: succeeded although a write failed");
                    assert!(writes < n, "{what}: write {n} was not failed");
                    assert!(
                        writes >= min_writes,
                        "{what}: {writes} row writes, expected at least {min_writes}"
                    );
                    assert_ne!(self.dump().await, before, "{what}: nothing was written");
                    eprintln!("{what}: {writes} row writes, each fault left nothing");
                    return v;
                }
            }
        }
        unreachable!()
    }
}

fn device(uuid: &str, user: &str) -> DeviceRecord {
    DeviceRecord {
        id: format!("d-{uuid}"),
        device_uuid: uuid.into(),
        username: user.into(),
        platform: Platform::Android,
        client_kind: ClientKind::Agent,
        client_version: "10.1.0".into(),
        mode: AuthMode::Mutual,
        listener: Listener::Device,
        status: DeviceStatus::Active,
        registered_with_ma: true,
        registered_at: T0,
        last_checkin_at: None,
        retired_at: None,
        current_cert_serial: None,
        cert_not_after: None,
        secret_hash: None,
        policy: "default".into(),
        previous_cert_serial: None,
        migration_status: MigrationStatus::None,
        renewal_count: 0,
        enrollment_config: Some("local".into()),
        reregister_required: false,
    }
}

fn cert(serial: &str, device_id: &str, reason: &str) -> CertRecord {
    CertRecord {
        serial: serial.into(),
        device_id: Some(device_id.into()),
        subject: "CN=alice".into(),
        not_before: T0,
        not_after: T0 + 86_400,
        issued_at: T0,
        status: CertStatus::Active,
        revoked_at: None,
        revocation_reason: None,
        der: serial.as_bytes().to_vec(),
        issue_reason: reason.into(),
        replaces_serial: None,
        enrollment_config: "local".into(),
    }
}

fn registration(uuid: &str, serial: &str) -> Registration {
    let mut d = device(uuid, "alice");
    d.current_cert_serial = Some(serial.into());
    d.cert_not_after = Some(T0 + 86_400);
    Registration {
        cert: Some(cert(serial, &d.id, "registration")),
        device: d,
    }
}

fn grant(id: &str, protocol: GrantProtocol, user: &str) -> GrantRecord {
    GrantRecord {
        id: id.into(),
        secret_hash: format!("hash-{id}"),
        protocol,
        username: user.into(),
        platform: Platform::Android,
        device_uuid: None,
        created_at: T0,
        expires_at: T0 + 3600,
        consumed_at: None,
        consumed_by_serial: None,
        device_id: None,
        revoked_at: None,
    }
}

fn request(n: &str) -> ScepRequestKey {
    ScepRequestKey {
        transaction_id: format!("tx-{n}"),
        request_hash: format!("req-{n}"),
        signer_spki_sha256: "00".repeat(32),
    }
}

const A: &str = "aaaaaaaa-1234-4234-8234-123456789abc";
const B: &str = "bbbbbbbb-1234-4234-8234-123456789abc";

/// Users alice and bob; device A (alice) registered with certificate a1 and renewed to a2 (so
/// two active certificates), device B (alice) with b1; bob has an unused grant and the static
/// SCEP challenge of `local`.
async fn world() -> Faulty {
    let f = Faulty::new().await;
    let s = f.store();
    for user in ["alice", "bob"] {
        s.create_user(&UserRecord {
            username: user.into(),
            password_hash: "x".into(),
            email: None,
            created_at: T0,
        })
        .await
        .unwrap();
    }
    s.apply_registration(&registration(A, "a1"), T0)
        .await
        .unwrap();
    s.apply_renewal(
        &format!("d-{A}"),
        &cert("a2", &format!("d-{A}"), "renewal"),
        "a1",
        T0,
    )
    .await
    .unwrap();
    s.apply_registration(&registration(B, "b1"), T0)
        .await
        .unwrap();
    s.create_grant(&grant("g-bob", GrantProtocol::Scep, "bob"))
        .await
        .unwrap();
    s.set_static_scep_challenge(
        "local",
        Some(&ScepChallengeRecord {
            hash: "static-bob".into(),
            username: "bob".into(),
            platform: Platform::Ios,
            created_at: T0,
        }),
    )
    .await
    .unwrap();
    f
}

#[tokio::test]
async fn every_state_change_commits_whole_or_leaves_nothing() {
    let a = &format!("d-{A}");

    let f = world().await;
    let revoked = f
        .check("retirement", 3, |s| {
            Box::pin(async move { s.retire_device(a, T0 + 10).await })
        })
        .await;
    assert_eq!(revoked.len(), 2);

    let f = world().await;
    let reg = &registration(A, "a3");
    f.check("re-registration", 4, |s| {
        Box::pin(async move { s.apply_registration(reg, T0 + 10).await })
    })
    .await;

    let f = world().await;
    let new = &cert("a3", a, "renewal");
    f.check("renewal", 3, |s| {
        Box::pin(async move { s.apply_renewal(a, new, "a2", T0 + 10).await })
    })
    .await;

    let f = world().await;
    let (new, req) = &(cert("a3", a, "scep_renewal"), request("r"));
    f.check("SCEP renewal", 4, |s| {
        Box::pin(async move { s.apply_scep_renewal(a, new, "a2", req, T0 + 10).await })
    })
    .await;

    let f = world().await;
    let new = &cert("a3", a, "migration");
    f.check("migration", 4, |s| {
        Box::pin(async move { s.apply_migration(a, new, T0 + 10).await })
    })
    .await;

    let f = world().await;
    let checkin = &CheckinRecord {
        device_id: a.clone(),
        at: T0 + 10,
        listener: Listener::Device,
        mode: AuthMode::Mutual,
    };
    let effects = &CheckinEffects {
        client_version: Some("10.2.0".into()),
        supersede: Some("a1".into()),
        ..CheckinEffects::default()
    };
    f.check("check-in with its effects", 4, |s| {
        Box::pin(async move { s.record_checkin(checkin, effects).await })
    })
    .await;

    // One row write only (the count is a read): atomic by construction, checked all the same.
    let f = world().await;
    f.check("sync-TLS switch", 1, |s| {
        Box::pin(async move { s.set_sync_tls_enabled(false, false).await })
    })
    .await;

    let f = world().await;
    f.store()
        .add_enrollment_config(&EnrollmentConfigRecord {
            name: "other".into(),
            kind: "local_ca".into(),
            ca_cert_pem: "-".into(),
            created_at: T0,
            scep: None,
        })
        .await
        .unwrap();
    f.check("enrollment-configuration selection", 3, |s| {
        Box::pin(async move { s.select_enrollment_config("other", T0 + 10).await })
    })
    .await;
    assert_eq!(
        f.store().mutual_auth().await.unwrap().enrollment_config,
        "other"
    );

    let f = world().await;
    f.store()
        .create_grant(&grant("g-est", GrantProtocol::Est, "alice"))
        .await
        .unwrap();
    let reg = &registration(B, "b2");
    f.check("EST grant consumption", 3, |s| {
        Box::pin(async move {
            s.apply_est_enrollment(reg, Some("hash-g-est"), T0 + 10)
                .await
        })
    })
    .await;

    let f = world().await;
    f.store()
        .create_grant(&grant("g-scep", GrantProtocol::Scep, "alice"))
        .await
        .unwrap();
    let g = &ScepGrant {
        hash: "hash-g-scep".into(),
        username: "alice".into(),
        platform: Platform::Android,
        device_uuid: None,
        static_config: None,
    };
    let (reg, req) = &(registration(B, "b2"), request("s"));
    f.check("SCEP grant consumption", 4, |s| {
        Box::pin(async move { s.apply_scep_enrollment(reg, g, req, T0 + 10).await })
    })
    .await;

    let f = world().await;
    f.check("user deletion", 3, |s| {
        Box::pin(async move { s.delete_user("bob", T0 + 10).await })
    })
    .await;
}
