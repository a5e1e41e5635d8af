//! One test per storage-trait method, on a fresh store of the backend under test.

use crate::apply::ApplyExt;
use crate::backend::{Backend, Fresh};
use ferrocore_core::CoreError;
use ferrocore_core::store::{
    CertRecord, CheckinEffects, CheckinRecord, DeviceQuery, DeviceRecord, EnrollmentConfigRecord,
    GrantQuery, GrantRecord, PolicyRecord, Registration, ScepChallengeRecord, ScepGrant,
    ScepParams, ScepRequestKey, UserRecord,
};
use ferrocore_proto::{
    AuthMode, CertStatus, ClientKind, DeviceStatus, GrantProtocol, GrantState, Listener,
    MigrationStatus, Platform,
};

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

/// Every test of this file, for `suite!`.
macro_rules! tests {
    ($run:ident) => {
        $run!(methods::storage_status);
        $run!(methods::mutual_auth);
        $run!(methods::enable_mutual_auth);
        $run!(methods::sync_tls_enabled);
        $run!(methods::set_sync_tls_enabled);
        $run!(methods::count_sync_tls_devices);
        $run!(methods::next_crl_number);
        $run!(methods::create_user);
        $run!(methods::user);
        $run!(methods::list_users);
        $run!(methods::delete_user);
        $run!(methods::policy);
        $run!(methods::list_policies);
        $run!(methods::put_policy);
        $run!(methods::delete_policy);
        $run!(methods::assign_policy);
        $run!(methods::device_by_uuid);
        $run!(methods::device);
        $run!(methods::apply_registration);
        $run!(methods::identity_by_serial);
        $run!(methods::record_checkin);
        $run!(methods::apply_renewal);
        $run!(methods::apply_migration);
        $run!(methods::retire_expired);
        $run!(methods::renewal_at_risk);
        $run!(methods::list_devices);
        $run!(methods::checkins);
        $run!(methods::retire_device);
        $run!(methods::certificates);
        $run!(methods::certificate);
        $run!(methods::cert_status);
        $run!(methods::revoke_certificate);
        $run!(methods::revoked_certificates);
        $run!(methods::create_grant);
        $run!(methods::grant_by_secret);
        $run!(methods::grant);
        $run!(methods::list_grants);
        $run!(methods::revoke_grant);
        $run!(methods::apply_est_enrollment);
        $run!(methods::enrollment_configs);
        $run!(methods::add_enrollment_config);
        $run!(methods::ensure_enrollment_config);
        $run!(methods::devices_outside_config);
        $run!(methods::select_enrollment_config);
        $run!(methods::set_static_scep_challenge);
        $run!(methods::static_scep_challenge);
        $run!(methods::apply_scep_enrollment);
        $run!(methods::scep_request);
        $run!(methods::scep_transaction);
        $run!(methods::apply_scep_renewal);
    };
}
pub(crate) use tests;

fn user_record(name: &str) -> UserRecord {
    UserRecord {
        username: name.into(),
        password_hash: format!("hash-of-{name}"),
        email: Some(format!("{name}@example.com")),
        created_at: T0,
    }
}

/// A fresh store with users alice and bob.
async fn fresh<B: Backend>() -> Fresh {
    let f = B::fresh().await;
    for u in ["alice", "bob"] {
        f.store.create_user(&user_record(u)).await.unwrap();
    }
    f
}

fn id(uuid: &str) -> String {
    format!("d-{uuid}")
}

fn cert(serial: &str, uuid: &str, reason: &str, not_after: i64) -> CertRecord {
    CertRecord {
        serial: serial.into(),
        device_id: Some(id(uuid)),
        subject: format!("CN={uuid}"),
        not_before: T0,
        not_after,
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

/// A mutual-mode agent of alice with certificate `serial` valid until `not_after`.
fn reg(uuid: &str, serial: &str, not_after: i64) -> Registration {
    Registration {
        device: DeviceRecord {
            id: id(uuid),
            device_uuid: uuid.into(),
            username: "alice".into(),
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
            current_cert_serial: Some(serial.into()),
            cert_not_after: Some(not_after),
            secret_hash: None,
            policy: "default".into(),
            previous_cert_serial: None,
            migration_status: MigrationStatus::None,
            renewal_count: 0,
            enrollment_config: Some("local".into()),
            reregister_required: false,
        },
        cert: Some(cert(serial, uuid, "registration", not_after)),
    }
}

/// A legacy (sync-TLS) device of alice, no certificate.
fn legacy(uuid: &str) -> Registration {
    let mut r = reg(uuid, "-", T0);
    r.device.mode = AuthMode::Legacy;
    r.device.listener = Listener::SyncTls;
    r.device.current_cert_serial = None;
    r.device.cert_not_after = None;
    r.device.enrollment_config = None;
    r.device.secret_hash = Some("secret-hash".into());
    r.cert = None;
    r
}

async fn register(f: &Fresh, uuid: &str, serial: &str) -> String {
    f.store
        .apply_registration(&reg(uuid, serial, T0 + 365 * DAY), T0)
        .await
        .unwrap()
}

fn grant_record(gid: &str, protocol: GrantProtocol, user: &str) -> GrantRecord {
    GrantRecord {
        id: gid.into(),
        secret_hash: format!("hash-{gid}"),
        protocol,
        username: user.into(),
        platform: Platform::Android,
        device_uuid: None,
        created_at: T0,
        expires_at: T0 + DAY,
        consumed_at: None,
        consumed_by_serial: None,
        device_id: None,
        revoked_at: None,
    }
}

fn scep_key(n: &str, signer: &str) -> ScepRequestKey {
    ScepRequestKey {
        transaction_id: format!("tx-{n}"),
        request_hash: format!("req-{n}"),
        signer_spki_sha256: signer.repeat(64),
    }
}

fn one_time(gid: &str) -> ScepGrant {
    ScepGrant {
        hash: format!("hash-{gid}"),
        username: "alice".into(),
        platform: Platform::Android,
        device_uuid: None,
        static_config: None,
    }
}

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const C: &str = "cccccccc-0000-4000-8000-000000000003";

// ---------------------------------------------------------------- settings

pub async fn storage_status<B: Backend>() {
    let f = fresh::<B>().await;
    let s = f.store.storage_status().await.unwrap();
    assert!(s.database_bytes > 0, "{s:?}");
    assert!(s.wal_limit_bytes > 0, "{s:?}");
    assert!(s.max_wal_bytes >= s.wal_bytes, "{s:?}");
}

pub async fn mutual_auth<B: Backend>() {
    let f = fresh::<B>().await;
    let row = f.store.mutual_auth().await.unwrap();
    assert_eq!(row.enabled_at, None);
    assert_eq!(row.enrollment_config, "local");
}

pub async fn enable_mutual_auth<B: Backend>() {
    let f = fresh::<B>().await;
    assert_eq!(
        f.store.enable_mutual_auth(T0).await.unwrap().enabled_at,
        Some(T0)
    );
    // Enabling again keeps the first time; it is never disabled.
    assert_eq!(
        f.store.enable_mutual_auth(T0 + 5).await.unwrap().enabled_at,
        Some(T0)
    );
    assert_eq!(f.store.mutual_auth().await.unwrap().enabled_at, Some(T0));
}

pub async fn sync_tls_enabled<B: Backend>() {
    let f = fresh::<B>().await;
    assert!(f.store.sync_tls_enabled().await.unwrap(), "on by default");
}

pub async fn set_sync_tls_enabled<B: Backend>() {
    let f = fresh::<B>().await;
    f.store.apply_registration(&legacy(A), T0).await.unwrap();
    let e = f
        .store
        .set_sync_tls_enabled(false, false)
        .await
        .unwrap_err();
    assert!(
        matches!(e, CoreError::LegacyDevicesExist { count: 1 }),
        "{e:?}"
    );
    assert!(
        f.store.sync_tls_enabled().await.unwrap(),
        "refused: unchanged"
    );
    f.store.set_sync_tls_enabled(false, true).await.unwrap();
    assert!(!f.store.sync_tls_enabled().await.unwrap());
    f.store.set_sync_tls_enabled(true, false).await.unwrap();
    assert!(f.store.sync_tls_enabled().await.unwrap());
}

pub async fn count_sync_tls_devices<B: Backend>() {
    let f = fresh::<B>().await;
    assert_eq!(f.store.count_sync_tls_devices().await.unwrap(), 0);
    f.store.apply_registration(&legacy(A), T0).await.unwrap();
    f.store.apply_registration(&legacy(B), T0).await.unwrap();
    register(&f, C, "c1").await;
    assert_eq!(f.store.count_sync_tls_devices().await.unwrap(), 2);
    f.store.retire_device(&id(A), T0 + 1).await.unwrap();
    assert_eq!(f.store.count_sync_tls_devices().await.unwrap(), 1);
}

pub async fn next_crl_number<B: Backend>() {
    let f = fresh::<B>().await;
    let a = f.store.next_crl_number().await.unwrap();
    let b = f.store.next_crl_number().await.unwrap();
    assert_eq!(b, a + 1);
}

// ---------------------------------------------------------------- users

pub async fn create_user<B: Backend>() {
    let f = B::fresh().await;
    f.store.create_user(&user_record("carol")).await.unwrap();
    let e = f
        .store
        .create_user(&user_record("carol"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, CoreError::UserExists(ref u) if u == "carol"),
        "{e:?}"
    );
}

pub async fn user<B: Backend>() {
    let f = fresh::<B>().await;
    let u = f.store.user("alice").await.unwrap().unwrap();
    assert_eq!(
        (
            u.username.as_str(),
            u.password_hash.as_str(),
            u.email.as_deref(),
            u.created_at
        ),
        ("alice", "hash-of-alice", Some("alice@example.com"), T0)
    );
    assert!(f.store.user("nobody").await.unwrap().is_none());
}

pub async fn list_users<B: Backend>() {
    let f = fresh::<B>().await;
    f.store.create_user(&user_record("aaron")).await.unwrap();
    let names: Vec<String> = f
        .store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["aaron", "alice", "bob"]);
}

pub async fn delete_user<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    let e = f.store.delete_user("alice", T0).await.unwrap_err();
    assert!(matches!(e, CoreError::Conflict(_)), "active device: {e:?}");
    f.store
        .create_grant(&grant_record("g1", GrantProtocol::Est, "bob"))
        .await
        .unwrap();
    f.store.delete_user("bob", T0 + 1).await.unwrap();
    assert!(f.store.user("bob").await.unwrap().is_none());
    let g = f.store.grant("g1").await.unwrap().unwrap();
    assert_eq!(
        g.revoked_at,
        Some(T0 + 1),
        "unused grants revoked with the user"
    );
    let e = f.store.delete_user("bob", T0 + 2).await.unwrap_err();
    assert!(matches!(e, CoreError::NotFound(_)), "{e:?}");
}

// ---------------------------------------------------------------- policies

fn policy_record(name: &str, window: Option<u32>) -> PolicyRecord {
    PolicyRecord {
        name: name.into(),
        checkin_interval_secs: 3600,
        cert_lifetime_days: 90,
        renewal_window_days: window,
        migrate_client: true,
    }
}

pub async fn policy<B: Backend>() {
    let f = fresh::<B>().await;
    let d = f.store.policy("default").await.unwrap().unwrap();
    assert_eq!(d.name, "default");
    assert!(f.store.policy("none").await.unwrap().is_none());
}

pub async fn list_policies<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .put_policy(&policy_record("a-short", Some(10)))
        .await
        .unwrap();
    let names: Vec<String> = f
        .store
        .list_policies()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["a-short", "default"]);
}

pub async fn put_policy<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .put_policy(&policy_record("p", Some(10)))
        .await
        .unwrap();
    f.store.put_policy(&policy_record("p", None)).await.unwrap();
    let p = f.store.policy("p").await.unwrap().unwrap();
    assert_eq!(
        (
            p.checkin_interval_secs,
            p.cert_lifetime_days,
            p.renewal_window_days,
            p.migrate_client
        ),
        (3600, 90, None, true),
        "replaced"
    );
}

pub async fn delete_policy<B: Backend>() {
    let f = fresh::<B>().await;
    f.store.put_policy(&policy_record("p", None)).await.unwrap();
    register(&f, A, "a1").await;
    f.store.assign_policy(&id(A), "p").await.unwrap();
    let e = f.store.delete_policy("p").await.unwrap_err();
    assert!(matches!(e, CoreError::Conflict(_)), "in use: {e:?}");
    f.store.assign_policy(&id(A), "default").await.unwrap();
    f.store.delete_policy("p").await.unwrap();
    assert!(f.store.policy("p").await.unwrap().is_none());
    let e = f.store.delete_policy("p").await.unwrap_err();
    assert!(matches!(e, CoreError::NotFound(_)), "{e:?}");
}

pub async fn assign_policy<B: Backend>() {
    let f = fresh::<B>().await;
    f.store.put_policy(&policy_record("p", None)).await.unwrap();
    register(&f, A, "a1").await;
    f.store.assign_policy(&id(A), "p").await.unwrap();
    assert_eq!(f.store.device(&id(A)).await.unwrap().unwrap().policy, "p");
    let e = f.store.assign_policy("no-device", "p").await.unwrap_err();
    assert!(matches!(e, CoreError::NotFound(_)), "{e:?}");
}

// ---------------------------------------------------------------- devices

pub async fn device_by_uuid<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    let d = f.store.device_by_uuid(A).await.unwrap().unwrap();
    assert_eq!(
        (d.id.as_str(), d.username.as_str()),
        (id(A).as_str(), "alice")
    );
    assert!(f.store.device_by_uuid(B).await.unwrap().is_none());
}

pub async fn device<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    let d = f.store.device(&id(A)).await.unwrap().unwrap();
    let want = reg(A, "a1", T0 + 365 * DAY).device;
    assert_eq!(
        (
            &d.device_uuid,
            d.platform,
            d.client_kind,
            &d.client_version,
            d.mode,
            d.listener,
            d.status,
            d.registered_with_ma,
        ),
        (
            &want.device_uuid,
            want.platform,
            want.client_kind,
            &want.client_version,
            want.mode,
            want.listener,
            want.status,
            want.registered_with_ma,
        )
    );
    assert_eq!(
        (
            d.registered_at,
            &d.current_cert_serial,
            d.cert_not_after,
            &d.policy,
            d.migration_status,
            d.renewal_count,
            &d.enrollment_config,
            d.reregister_required,
        ),
        (
            want.registered_at,
            &want.current_cert_serial,
            want.cert_not_after,
            &want.policy,
            want.migration_status,
            want.renewal_count,
            &want.enrollment_config,
            want.reregister_required,
        )
    );
    assert!(f.store.device("d-none").await.unwrap().is_none());
}

pub async fn apply_registration<B: Backend>() {
    let f = fresh::<B>().await;
    let first = register(&f, A, "a1").await;
    // Re-registration of the same uuid under another proposed id keeps the device id and
    // supersedes the previous identity.
    let mut again = reg(A, "a2", T0 + 400 * DAY);
    again.device.id = "d-other".into();
    again.cert.as_mut().unwrap().device_id = Some("d-other".into());
    let second = f.store.apply_registration(&again, T0 + 10).await.unwrap();
    assert_eq!(first, second);
    let old = f.store.certificate("a1").await.unwrap().unwrap();
    assert_eq!(
        (old.status, old.revocation_reason.as_deref()),
        (CertStatus::Revoked, Some("superseded"))
    );
    let d = f.store.device(&first).await.unwrap().unwrap();
    assert_eq!(d.current_cert_serial.as_deref(), Some("a2"));
    assert_eq!(
        f.store.certificate("a2").await.unwrap().unwrap().device_id,
        Some(first)
    );
}

pub async fn identity_by_serial<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    let i = f.store.identity_by_serial("a1").await.unwrap().unwrap();
    assert_eq!(
        (
            i.cert_serial.as_str(),
            i.cert_der.as_slice(),
            i.cert_status,
            i.device.id
        ),
        ("a1", b"a1".as_slice(), CertStatus::Active, id(A))
    );
    assert!(f.store.identity_by_serial("zz").await.unwrap().is_none());
}

pub async fn record_checkin<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    f.store
        .apply_renewal(&id(A), &cert("a2", A, "renewal", T0 + DAY), "a1", T0 + 1)
        .await
        .unwrap();
    let c = CheckinRecord {
        device_id: id(A),
        at: T0 + 5,
        listener: Listener::Device,
        mode: AuthMode::Mutual,
    };
    f.store
        .record_checkin(&c, &CheckinEffects::default())
        .await
        .unwrap();
    assert_eq!(
        f.store
            .device(&id(A))
            .await
            .unwrap()
            .unwrap()
            .last_checkin_at,
        Some(T0 + 5)
    );
    // With effects: version, supersede the previous certificate.
    let c = CheckinRecord { at: T0 + 6, ..c };
    let fx = CheckinEffects {
        client_version: Some("10.2.0".into()),
        supersede: Some("a1".into()),
        ..CheckinEffects::default()
    };
    f.store.record_checkin(&c, &fx).await.unwrap();
    let d = f.store.device(&id(A)).await.unwrap().unwrap();
    assert_eq!(
        (
            d.client_version.as_str(),
            d.previous_cert_serial,
            d.last_checkin_at
        ),
        ("10.2.0", None, Some(T0 + 6))
    );
    assert_eq!(
        f.store.certificate("a1").await.unwrap().unwrap().status,
        CertStatus::Revoked
    );
}

pub async fn apply_renewal<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    f.store
        .apply_renewal(&id(A), &cert("a2", A, "renewal", T0 + DAY), "a1", T0 + 1)
        .await
        .unwrap();
    f.store
        .apply_renewal(&id(A), &cert("a3", A, "renewal", T0 + DAY), "a2", T0 + 2)
        .await
        .unwrap();
    let d = f.store.device(&id(A)).await.unwrap().unwrap();
    assert_eq!(
        (
            d.current_cert_serial.as_deref(),
            d.previous_cert_serial.as_deref(),
            d.renewal_count
        ),
        (Some("a3"), Some("a2"), 2)
    );
    // a1 (neither current nor the one used) was superseded by the second renewal.
    let mut got = Vec::new();
    for serial in ["a1", "a2", "a3"] {
        got.push(f.store.certificate(serial).await.unwrap().unwrap().status);
    }
    assert_eq!(
        got,
        [CertStatus::Revoked, CertStatus::Active, CertStatus::Active]
    );
}

pub async fn apply_migration<B: Backend>() {
    let f = fresh::<B>().await;
    f.store.apply_registration(&legacy(A), T0).await.unwrap();
    f.store
        .apply_migration(&id(A), &cert("m1", A, "migration", T0 + DAY), T0 + 1)
        .await
        .unwrap();
    f.store
        .apply_migration(&id(A), &cert("m2", A, "migration", T0 + DAY), T0 + 2)
        .await
        .unwrap();
    let d = f.store.device(&id(A)).await.unwrap().unwrap();
    assert_eq!(
        (d.migration_status, d.current_cert_serial.as_deref()),
        (MigrationStatus::Pending, Some("m2"))
    );
    assert_eq!(
        f.store.certificate("m1").await.unwrap().unwrap().status,
        CertStatus::Revoked,
        "the earlier pending migration certificate is revoked"
    );
}

pub async fn retire_expired<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .apply_registration(&reg(A, "a1", T0 + DAY), T0)
        .await
        .unwrap();
    f.store
        .apply_registration(&reg(B, "b1", T0 + 10 * DAY), T0)
        .await
        .unwrap();
    assert_eq!(
        f.store
            .retire_expired(T0 + 2 * DAY, T0 + 3 * DAY)
            .await
            .unwrap(),
        1
    );
    let a = f.store.device(&id(A)).await.unwrap().unwrap();
    assert_eq!(
        (a.status, a.retired_at),
        (DeviceStatus::Retired, Some(T0 + 3 * DAY))
    );
    assert_eq!(
        f.store
            .certificate("a1")
            .await
            .unwrap()
            .unwrap()
            .revocation_reason
            .as_deref(),
        Some("cessation_of_operation")
    );
    assert_eq!(
        f.store.device(&id(B)).await.unwrap().unwrap().status,
        DeviceStatus::Active
    );
    assert_eq!(
        f.store
            .retire_expired(T0 + 2 * DAY, T0 + 3 * DAY)
            .await
            .unwrap(),
        0
    );
}

pub async fn renewal_at_risk<B: Backend>() {
    let f = fresh::<B>().await;
    // Default window 60 days; grace 30 days.
    for (uuid, serial, not_after) in [
        (A, "a1", T0 + 10 * DAY),  // inside the window
        (B, "b1", T0 + 100 * DAY), // not yet
        (C, "c1", T0 - 10 * DAY),  // expired, inside the grace
    ] {
        f.store
            .apply_registration(&reg(uuid, serial, not_after), T0 - 400 * DAY)
            .await
            .unwrap();
    }
    let page = f.store.renewal_at_risk(T0, 30 * DAY, 10, 0).await.unwrap();
    let ids: Vec<_> = page.items.iter().map(|a| a.device.id.clone()).collect();
    assert_eq!(ids, [id(C), id(A)], "ordered by expiry");
    assert_eq!(page.total, 2);
    assert!(page.items.iter().all(|a| a.window_days == 60));
    let page = f.store.renewal_at_risk(T0, 30 * DAY, 1, 1).await.unwrap();
    assert_eq!((page.items.len(), page.total), (1, 2));
}

pub async fn list_devices<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    f.store
        .apply_registration(&legacy(B), T0 + 1)
        .await
        .unwrap();
    let all = f
        .store
        .list_devices(&DeviceQuery {
            limit: 10,
            ..DeviceQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.total, 2);
    let legacy_only = f
        .store
        .list_devices(&DeviceQuery {
            mode: Some(AuthMode::Legacy),
            limit: 10,
            ..DeviceQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = legacy_only.items.into_iter().map(|d| d.id).collect();
    assert_eq!((ids, legacy_only.total), (vec![id(B)], 1));
    let page = f
        .store
        .list_devices(&DeviceQuery {
            limit: 1,
            offset: 1,
            ..DeviceQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = page.items.into_iter().map(|d| d.id).collect();
    assert_eq!((ids, page.total), (vec![id(B)], 2), "registration order");
}

pub async fn checkins<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    for at in [T0 + 1, T0 + 2, T0 + 3] {
        f.store
            .record_checkin(
                &CheckinRecord {
                    device_id: id(A),
                    at,
                    listener: Listener::Device,
                    mode: AuthMode::Mutual,
                },
                &CheckinEffects::default(),
            )
            .await
            .unwrap();
    }
    let got: Vec<i64> = f
        .store
        .checkins(&id(A), 2)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.at)
        .collect();
    assert_eq!(got, [T0 + 3, T0 + 2], "newest first, limited");
}

pub async fn retire_device<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    f.store
        .apply_renewal(&id(A), &cert("a2", A, "renewal", T0 + DAY), "a1", T0 + 1)
        .await
        .unwrap();
    let mut revoked = f.store.retire_device(&id(A), T0 + 5).await.unwrap();
    revoked.sort();
    assert_eq!(revoked, ["a1", "a2"]);
    assert_eq!(
        f.store.device(&id(A)).await.unwrap().unwrap().status,
        DeviceStatus::Retired
    );
    let e = f.store.retire_device(&id(A), T0 + 6).await.unwrap_err();
    assert!(matches!(e, CoreError::Conflict(_)), "{e:?}");
    let e = f.store.retire_device("d-none", T0 + 6).await.unwrap_err();
    assert!(matches!(e, CoreError::NotFound(_)), "{e:?}");
}

// ---------------------------------------------------------------- certificates

pub async fn certificates<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    register(&f, B, "b1").await;
    f.store
        .apply_renewal(&id(A), &cert("a2", A, "renewal", T0 + DAY), "a1", T0 + 1)
        .await
        .unwrap();
    let of_a = f.store.certificates(Some(&id(A)), 10, 0).await.unwrap();
    let serials: Vec<_> = of_a.items.into_iter().map(|c| c.serial).collect();
    assert_eq!(
        (serials, of_a.total),
        (vec!["a1".to_owned(), "a2".into()], 2)
    );
    let all = f.store.certificates(None, 1, 1).await.unwrap();
    assert_eq!((all.items.len(), all.total), (1, 3));
}

pub async fn certificate<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    let c = f.store.certificate("a1").await.unwrap().unwrap();
    let want = cert("a1", A, "registration", T0 + 365 * DAY);
    assert_eq!(
        (
            c.subject,
            c.not_before,
            c.not_after,
            c.issued_at,
            c.der,
            c.issue_reason,
            c.enrollment_config
        ),
        (
            want.subject,
            want.not_before,
            want.not_after,
            want.issued_at,
            want.der,
            want.issue_reason,
            want.enrollment_config
        )
    );
    assert!(f.store.certificate("zz").await.unwrap().is_none());
}

pub async fn cert_status<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    let s = f.store.cert_status("a1").await.unwrap().unwrap();
    assert_eq!(
        (s.status, s.enrollment_config.as_str(), s.revoked_at),
        (CertStatus::Active, "local", None)
    );
    f.store
        .revoke_certificate("a1", "key_compromise", T0 + 9)
        .await
        .unwrap();
    let s = f.store.cert_status("a1").await.unwrap().unwrap();
    assert_eq!(
        (s.status, s.revoked_at, s.revocation_reason.as_deref()),
        (CertStatus::Revoked, Some(T0 + 9), Some("key_compromise"))
    );
    assert!(f.store.cert_status("zz").await.unwrap().is_none());
}

pub async fn revoke_certificate<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    f.store
        .revoke_certificate("a1", "key_compromise", T0 + 9)
        .await
        .unwrap();
    let e = f
        .store
        .revoke_certificate("a1", "key_compromise", T0 + 10)
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::AlreadyRevoked(_)), "{e:?}");
    let e = f
        .store
        .revoke_certificate("zz", "key_compromise", T0 + 10)
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::NotFound(_)), "{e:?}");
}

pub async fn revoked_certificates<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .apply_registration(&reg(A, "a1", T0 + DAY), T0)
        .await
        .unwrap();
    f.store
        .apply_registration(&reg(B, "b1", T0 + 10 * DAY), T0)
        .await
        .unwrap();
    register(&f, C, "c1").await;
    f.store
        .revoke_certificate("a1", "key_compromise", T0 + 1)
        .await
        .unwrap();
    f.store
        .revoke_certificate("b1", "superseded", T0 + 2)
        .await
        .unwrap();
    let rows = f
        .store
        .revoked_certificates("local", T0 + 2 * DAY)
        .await
        .unwrap();
    let got: Vec<_> = rows
        .into_iter()
        .map(|r| (r.serial, r.revoked_at, r.reason))
        .collect();
    assert_eq!(
        got,
        [("b1".to_owned(), T0 + 2, "superseded".to_owned())],
        "a1 expired"
    );
    assert!(
        f.store
            .revoked_certificates("other", T0)
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------- grants

pub async fn create_grant<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .create_grant(&grant_record("g1", GrantProtocol::Scep, "alice"))
        .await
        .unwrap();
    let g = f.store.grant("g1").await.unwrap().unwrap();
    assert_eq!(
        (
            g.protocol,
            g.username.as_str(),
            g.platform,
            g.expires_at,
            g.state(T0)
        ),
        (
            GrantProtocol::Scep,
            "alice",
            Platform::Android,
            T0 + DAY,
            GrantState::Active
        )
    );
    assert!(
        f.store
            .create_grant(&grant_record("g1", GrantProtocol::Scep, "alice"))
            .await
            .is_err(),
        "ids are unique"
    );
}

pub async fn grant_by_secret<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .create_grant(&grant_record("g1", GrantProtocol::Est, "alice"))
        .await
        .unwrap();
    let g = f
        .store
        .grant_by_secret(GrantProtocol::Est, "hash-g1")
        .await
        .unwrap();
    assert_eq!(g.map(|g| g.id).as_deref(), Some("g1"));
    assert!(
        f.store
            .grant_by_secret(GrantProtocol::Scep, "hash-g1")
            .await
            .unwrap()
            .is_none(),
        "other protocol"
    );
}

pub async fn grant<B: Backend>() {
    let f = fresh::<B>().await;
    assert!(f.store.grant("g1").await.unwrap().is_none());
    f.store
        .create_grant(&grant_record("g1", GrantProtocol::Est, "bob"))
        .await
        .unwrap();
    assert_eq!(f.store.grant("g1").await.unwrap().unwrap().username, "bob");
}

pub async fn list_grants<B: Backend>() {
    let f = fresh::<B>().await;
    for (gid, p, u) in [
        ("g1", GrantProtocol::Est, "alice"),
        ("g2", GrantProtocol::Scep, "alice"),
        ("g3", GrantProtocol::Scep, "bob"),
    ] {
        let mut g = grant_record(gid, p, u);
        g.created_at = T0 + i64::from(gid.as_bytes()[1]);
        f.store.create_grant(&g).await.unwrap();
    }
    f.store.revoke_grant("g3", T0 + 1).await.unwrap();
    let q = |state, username: Option<&str>, protocol| GrantQuery {
        state,
        username: username.map(str::to_owned),
        protocol,
        now: T0 + 10,
        limit: 10,
        offset: 0,
    };
    let ids = |p: ferrocore_core::store::Page<GrantRecord>| {
        p.items.into_iter().map(|g| g.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(f.store.list_grants(&q(None, None, None)).await.unwrap()),
        ["g3", "g2", "g1"],
        "newest first"
    );
    assert_eq!(
        ids(f
            .store
            .list_grants(&q(Some(GrantState::Active), None, None))
            .await
            .unwrap()),
        ["g2", "g1"]
    );
    assert_eq!(
        ids(f
            .store
            .list_grants(&q(None, Some("alice"), Some(GrantProtocol::Scep)))
            .await
            .unwrap()),
        ["g2"]
    );
    assert_eq!(
        ids(f
            .store
            .list_grants(&q(Some(GrantState::Revoked), None, None))
            .await
            .unwrap()),
        ["g3"]
    );
    let mut expired = q(Some(GrantState::Expired), None, None);
    expired.now = T0 + 2 * DAY;
    assert_eq!(f.store.list_grants(&expired).await.unwrap().total, 2);
}

pub async fn revoke_grant<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .create_grant(&grant_record("g1", GrantProtocol::Est, "alice"))
        .await
        .unwrap();
    assert_eq!(
        f.store.revoke_grant("g1", T0 + 1).await.unwrap().revoked_at,
        Some(T0 + 1)
    );
    assert_eq!(
        f.store.revoke_grant("g1", T0 + 2).await.unwrap().revoked_at,
        Some(T0 + 1),
        "unchanged"
    );
    let e = f.store.revoke_grant("none", T0).await.unwrap_err();
    assert!(matches!(e, CoreError::NotFound(_)), "{e:?}");
    f.store
        .create_grant(&grant_record("g2", GrantProtocol::Est, "alice"))
        .await
        .unwrap();
    f.store
        .apply_est_enrollment(&reg(A, "a1", T0 + DAY), Some("hash-g2"), T0 + 1)
        .await
        .unwrap();
    let e = f.store.revoke_grant("g2", T0 + 2).await.unwrap_err();
    assert!(matches!(e, CoreError::GrantConsumed(_)), "{e:?}");
}

pub async fn apply_est_enrollment<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .create_grant(&grant_record("g1", GrantProtocol::Est, "alice"))
        .await
        .unwrap();
    let dev = f
        .store
        .apply_est_enrollment(&reg(A, "a1", T0 + DAY), Some("hash-g1"), T0 + 1)
        .await
        .unwrap();
    let g = f.store.grant("g1").await.unwrap().unwrap();
    assert_eq!(
        (g.consumed_at, g.consumed_by_serial.as_deref(), g.device_id),
        (Some(T0 + 1), Some("a1"), Some(dev))
    );
    // Used once only; nothing is written by the refused second use.
    let e = f
        .store
        .apply_est_enrollment(&reg(B, "b1", T0 + DAY), Some("hash-g1"), T0 + 2)
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::EstTokenInvalid), "{e:?}");
    assert!(f.store.device_by_uuid(B).await.unwrap().is_none());
    // Without a token (Basic authentication) it is a registration.
    f.store
        .apply_est_enrollment(&reg(C, "c1", T0 + DAY), None, T0 + 3)
        .await
        .unwrap();
    assert!(f.store.certificate("c1").await.unwrap().is_some());
}

// ---------------------------------------------------------------- enrollment configurations

fn scep_config(name: &str) -> EnrollmentConfigRecord {
    EnrollmentConfigRecord {
        name: name.into(),
        kind: "scep".into(),
        ca_cert_pem: "-----CA-----".into(),
        created_at: T0,
        scep: Some(ScepParams {
            url: "http://ca.example/scep".into(),
            ca_sha256: "ab".repeat(32),
            recipient_cert_pem: "-----RA-----".into(),
            caps: "AES\nSHA-256".into(),
        }),
    }
}

pub async fn enrollment_configs<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .ensure_enrollment_config("local", "local_ca", "-----LOCAL-----", T0)
        .await
        .unwrap();
    f.store
        .add_enrollment_config(&scep_config("corp"))
        .await
        .unwrap();
    let all = f.store.enrollment_configs().await.unwrap();
    let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["corp", "local"]);
    assert_eq!(all[0].scep, scep_config("corp").scep);
    assert_eq!(
        (all[1].kind.as_str(), all[1].scep.is_none()),
        ("local_ca", true)
    );
}

pub async fn add_enrollment_config<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .add_enrollment_config(&scep_config("corp"))
        .await
        .unwrap();
    let e = f
        .store
        .add_enrollment_config(&scep_config("corp"))
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::Conflict(_)), "{e:?}");
}

pub async fn ensure_enrollment_config<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .ensure_enrollment_config("local", "local_ca", "one", T0)
        .await
        .unwrap();
    f.store
        .ensure_enrollment_config("local", "local_ca", "two", T0 + 1)
        .await
        .unwrap();
    let all = f.store.enrollment_configs().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].ca_cert_pem.as_str(), all[0].created_at),
        ("two", T0),
        "CA updated"
    );
}

pub async fn devices_outside_config<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    register(&f, B, "b1").await;
    f.store.apply_registration(&legacy(C), T0).await.unwrap();
    let (devs, total) = f.store.devices_outside_config("corp", 1).await.unwrap();
    assert_eq!((devs.len(), total), (1, 2), "mutual devices only, limited");
    let (devs, total) = f.store.devices_outside_config("local", 10).await.unwrap();
    assert_eq!((devs.len(), total), (0, 0));
}

pub async fn select_enrollment_config<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .add_enrollment_config(&scep_config("corp"))
        .await
        .unwrap();
    register(&f, A, "a1").await;
    f.store
        .select_enrollment_config("corp", T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        f.store.mutual_auth().await.unwrap().enrollment_config,
        "corp"
    );
    assert!(
        f.store
            .device(&id(A))
            .await
            .unwrap()
            .unwrap()
            .reregister_required
    );
    // Back to the device's own configuration: the flag goes.
    f.store
        .select_enrollment_config("local", T0 + 2)
        .await
        .unwrap();
    assert!(
        !f.store
            .device(&id(A))
            .await
            .unwrap()
            .unwrap()
            .reregister_required
    );
}

// ---------------------------------------------------------------- SCEP

pub async fn set_static_scep_challenge<B: Backend>() {
    let f = fresh::<B>().await;
    let ch = |hash: &str| ScepChallengeRecord {
        hash: hash.into(),
        username: "bob".into(),
        platform: Platform::Ios,
        created_at: T0,
    };
    f.store
        .set_static_scep_challenge("local", Some(&ch("h1")))
        .await
        .unwrap();
    f.store
        .set_static_scep_challenge("local", Some(&ch("h2")))
        .await
        .unwrap();
    assert!(
        f.store.static_scep_challenge("h1").await.unwrap().is_none(),
        "replaced"
    );
    assert!(f.store.static_scep_challenge("h2").await.unwrap().is_some());
    f.store
        .set_static_scep_challenge("local", None)
        .await
        .unwrap();
    assert!(
        f.store.static_scep_challenge("h2").await.unwrap().is_none(),
        "cleared"
    );
}

pub async fn static_scep_challenge<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .set_static_scep_challenge(
            "local",
            Some(&ScepChallengeRecord {
                hash: "h1".into(),
                username: "bob".into(),
                platform: Platform::Ios,
                created_at: T0,
            }),
        )
        .await
        .unwrap();
    let g = f.store.static_scep_challenge("h1").await.unwrap().unwrap();
    assert_eq!(
        (
            g.hash.as_str(),
            g.username.as_str(),
            g.platform,
            g.device_uuid,
            g.static_config.as_deref()
        ),
        ("h1", "bob", Platform::Ios, None, Some("local"))
    );
}

pub async fn apply_scep_enrollment<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .create_grant(&grant_record("g1", GrantProtocol::Scep, "alice"))
        .await
        .unwrap();
    let dev = f
        .store
        .apply_scep_enrollment(
            &reg(A, "a1", T0 + DAY),
            &one_time("g1"),
            &scep_key("1", "a"),
            T0 + 1,
        )
        .await
        .unwrap();
    assert_eq!(dev, id(A));
    assert_eq!(
        f.store
            .grant("g1")
            .await
            .unwrap()
            .unwrap()
            .consumed_by_serial
            .as_deref(),
        Some("a1")
    );
    let e = f
        .store
        .apply_scep_enrollment(
            &reg(B, "b1", T0 + DAY),
            &one_time("g1"),
            &scep_key("2", "b"),
            T0 + 2,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::ScepChallengeInvalid), "{e:?}");
    assert!(f.store.scep_request("req-2").await.unwrap().is_none());
}

pub async fn scep_request<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .create_grant(&grant_record("g1", GrantProtocol::Scep, "alice"))
        .await
        .unwrap();
    f.store
        .apply_scep_enrollment(
            &reg(A, "a1", T0 + DAY),
            &one_time("g1"),
            &scep_key("1", "a"),
            T0 + 1,
        )
        .await
        .unwrap();
    assert_eq!(
        f.store.scep_request("req-1").await.unwrap().unwrap().serial,
        "a1"
    );
    assert!(f.store.scep_request("req-9").await.unwrap().is_none());
}

pub async fn scep_transaction<B: Backend>() {
    let f = fresh::<B>().await;
    f.store
        .create_grant(&grant_record("g1", GrantProtocol::Scep, "alice"))
        .await
        .unwrap();
    f.store
        .apply_scep_enrollment(
            &reg(A, "a1", T0 + DAY),
            &one_time("g1"),
            &scep_key("1", "a"),
            T0 + 1,
        )
        .await
        .unwrap();
    let c = f
        .store
        .scep_transaction("tx-1", &"a".repeat(64))
        .await
        .unwrap();
    assert_eq!(c.map(|c| c.serial).as_deref(), Some("a1"));
    assert!(
        f.store
            .scep_transaction("tx-1", &"b".repeat(64))
            .await
            .unwrap()
            .is_none(),
        "another signer"
    );
}

pub async fn apply_scep_renewal<B: Backend>() {
    let f = fresh::<B>().await;
    register(&f, A, "a1").await;
    f.store
        .apply_scep_renewal(
            &id(A),
            &cert("a2", A, "scep_renewal", T0 + DAY),
            "a1",
            &scep_key("r", "c"),
            T0 + 1,
        )
        .await
        .unwrap();
    let d = f.store.device(&id(A)).await.unwrap().unwrap();
    assert_eq!(
        (
            d.current_cert_serial.as_deref(),
            d.previous_cert_serial.as_deref(),
            d.renewal_count
        ),
        (Some("a2"), Some("a1"), 1)
    );
    assert_eq!(
        f.store.scep_request("req-r").await.unwrap().unwrap().serial,
        "a2"
    );
}
