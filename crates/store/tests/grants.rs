//! One-time enrollment grants (SCEP challenges, EST tokens) on the real SQLite store: the
//! migration that merged the two former tables, consumption inside the enrollment's
//! transaction, and refusal of revoked, expired, reused and other-protocol grants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferrocore_core::directory::LocalDirectory;
use ferrocore_core::est::EstCredential;
use ferrocore_core::issuance::LocalIssuer;
use ferrocore_core::service::{PkiPublication, sha256_hex};
use ferrocore_core::store::{
    CertRecord, DeviceRecord, EnrollmentWrite, GrantQuery, GrantUse, Registration, ScepGrant,
    ScepRequestKey, Store,
};
use ferrocore_core::{Core, CoreError, ManualClock};
use ferrocore_pki::LocalCa;
use ferrocore_proto::{
    AuthMode, CertStatus, ClientKind, DeviceStatus, GrantProtocol, GrantState, Listener,
    MigrationStatus, NewScepChallenge, Platform,
};
use ferrocore_store::SqliteStore;
use std::path::Path;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const T0: i64 = 1_800_000_000;

struct World {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    store: Arc<SqliteStore>,
    core: Core,
}

async fn world_at(dir: tempfile::TempDir, db: &Path) -> World {
    let start = OffsetDateTime::from_unix_timestamp(T0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(SqliteStore::open(db).await.unwrap());
    let ca = LocalCa::generate("Test CA", start - Duration::days(1)).unwrap();
    let core = Core::new(
        store.clone(),
        Arc::new(LocalDirectory::new(store.clone())),
        Arc::new(LocalIssuer::new(ca)),
        clock.clone(),
        PkiPublication::default(),
    );
    // The grants here are mostly for Android agents, which enroll with a certificate (EST)
    // only once mutual authentication is on (Table 4).
    core.enable_mutual_auth().await.unwrap();
    World {
        _dir: dir,
        clock,
        store,
        core,
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let w = world_at(dir, &db).await;
    w.core.add_user("alice", "Alice-pass1", None).await.unwrap();
    w.core.add_user("bob", "Bob-pass12", None).await.unwrap();
    w
}

fn csr() -> ferrocore_pki::VerifiedCsr {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let der = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec();
    ferrocore_pki::parse_csr(&der).unwrap()
}

async fn est_with(w: &World, token: &str) -> Result<String, CoreError> {
    w.core
        .est_enroll(EstCredential::Token(token.to_owned()), None, &csr())
        .await
        .map(|e| e.issued.serial_hex)
}

fn query(state: Option<GrantState>) -> GrantQuery {
    GrantQuery {
        state,
        limit: 100,
        ..GrantQuery::default()
    }
}

async fn ids(w: &World, q: GrantQuery) -> Vec<String> {
    w.core
        .grants(q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|g| g.id)
        .collect()
}

#[tokio::test]
async fn migration_moves_est_tokens_and_scep_challenges_into_grants() {
    // A database as the release before grants left it: every migration before 0011.
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let names: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let grants = names
        .iter()
        .find(|n| n.ends_with("_enrollment_grants.sql"))
        .unwrap()
        .clone();
    for name in names.iter().filter(|n| **n < grants) {
        std::fs::copy(src.join(name), old.join(name)).unwrap();
    }
    let db = dir.path().join("t.db");
    {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        for sql in [
            "INSERT INTO devices (id, device_uuid, username, platform, client_kind, client_version, \
             mode, listener, status, registered_with_ma, registered_at, policy) VALUES \
             ('dev-1', '11111111-2222-4333-8444-555555555555', 'alice', 'ios', 'mdm', '1.0', \
             'mutual', 'device', 'active', 1, 1799999000, 'default')",
            "INSERT INTO certificates (serial, device_id, subject, not_before, not_after, issued_at, \
             status, der) VALUES ('0abc', 'dev-1', 'CN=alice', 1799999000, 1900000000, 1799999000, \
             'active', x'00')",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        // EST tokens: active, used (paid for certificate 0abc), expired.
        for (id, secret, expires, used_at, serial) in [
            ("est-active", "est_active", T0 + 3600, None, None),
            (
                "est-used",
                "est_used",
                T0 + 3600,
                Some(T0 - 10),
                Some("0abc"),
            ),
            ("est-expired", "est_expired", T0 - 1, None, None),
        ] {
            sqlx::query(
                "INSERT INTO est_tokens (id, token_hash, username, platform, device_uuid, \
                 created_at, expires_at, used_at, used_by_serial) \
                 VALUES (?, ?, 'alice', 'android', NULL, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(sha256_hex(secret.as_bytes()))
            .bind(T0 - 100)
            .bind(expires)
            .bind(used_at)
            .bind(serial)
            .execute(&pool)
            .await
            .unwrap();
        }
        // SCEP challenges: active (bound to a device UUID), consumed by dev-1.
        for (secret, consumed_at, device_id, uuid) in [
            (
                "scepactive",
                None,
                None,
                Some("66666666-7777-4888-9999-000000000000"),
            ),
            ("scepconsumed", Some(T0 - 5), Some("dev-1"), None),
        ] {
            sqlx::query(
                "INSERT INTO scep_challenges (hash, username, platform, device_uuid, created_at, \
                 expires_at, consumed_at, device_id) VALUES (?, 'bob', 'ios', ?, ?, ?, ?, ?)",
            )
            .bind(sha256_hex(secret.as_bytes()))
            .bind(uuid)
            .bind(T0 - 50)
            .bind(T0 + 3600)
            .bind(consumed_at)
            .bind(device_id)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }

    // Opening the store applies 0011.
    let w = world_at(dir, &db).await;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(w.store.pool())
            .await
            .unwrap();
    assert!(
        tables.contains(&"enrollment_grants".to_owned()),
        "{tables:?}"
    );
    assert!(!tables.contains(&"est_tokens".to_owned()), "{tables:?}");
    assert!(
        !tables.contains(&"scep_challenges".to_owned()),
        "{tables:?}"
    );

    let by = |p, s: &str| {
        let store = w.store.clone();
        let h = sha256_hex(s.as_bytes());
        async move { store.grant_by_secret(p, &h).await.unwrap().unwrap() }
    };
    let g = by(GrantProtocol::Est, "est_active").await;
    assert_eq!(
        (g.id.as_str(), g.state(T0), g.username.as_str(), g.platform),
        ("est-active", GrantState::Active, "alice", Platform::Android)
    );
    let g = by(GrantProtocol::Est, "est_used").await;
    assert_eq!(g.state(T0), GrantState::Consumed);
    assert_eq!(g.consumed_at, Some(T0 - 10));
    assert_eq!(g.consumed_by_serial.as_deref(), Some("0abc"));
    assert_eq!(g.device_id.as_deref(), Some("dev-1"));
    assert_eq!(
        by(GrantProtocol::Est, "est_expired").await.state(T0),
        GrantState::Expired
    );
    let s_active = by(GrantProtocol::Scep, "scepactive").await;
    assert_eq!(s_active.state(T0), GrantState::Active);
    assert_eq!(
        s_active.device_uuid.as_deref(),
        Some("66666666-7777-4888-9999-000000000000")
    );
    assert_eq!((s_active.id.len(), &s_active.id[14..15]), (36, "4"));
    assert!(uuid_like(&s_active.id), "{}", s_active.id);
    let s_used = by(GrantProtocol::Scep, "scepconsumed").await;
    assert_eq!(s_used.state(T0), GrantState::Consumed);
    assert_eq!(s_used.device_id.as_deref(), Some("dev-1"));
    assert_ne!(s_used.id, s_active.id);
    // The protocols stay apart: a SCEP challenge's hash is no EST grant.
    assert!(
        w.store
            .grant_by_secret(GrantProtocol::Est, &sha256_hex(b"scepactive"))
            .await
            .unwrap()
            .is_none()
    );

    // The hashes stay valid: the moved active EST token enrolls, once; the used and the
    // expired ones are refused.
    w.core.add_user("alice", "Alice-pass1", None).await.unwrap();
    let serial = est_with(&w, "est_active").await.unwrap();
    let g = by(GrantProtocol::Est, "est_active").await;
    assert_eq!(g.consumed_by_serial.as_deref(), Some(serial.as_str()));
    for t in ["est_active", "est_used", "est_expired"] {
        assert!(
            matches!(est_with(&w, t).await, Err(CoreError::EstTokenInvalid)),
            "{t}"
        );
    }
    // The list sees all five with their states.
    let all = w.core.grants(query(None)).await.unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(
        w.core
            .grants(query(Some(GrantState::Active)))
            .await
            .unwrap()
            .items
            .iter()
            .map(|g| g.id.clone())
            .collect::<Vec<_>>(),
        vec![s_active.id.clone()]
    );
}

fn uuid_like(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[tokio::test]
async fn revoked_expired_reused_and_other_protocol_grants_are_refused() {
    let w = world();
    let w = w.await;
    let est = w
        .core
        .create_grant(GrantProtocol::Est, "alice", Platform::Android, None, None)
        .await
        .unwrap();
    let scep = w
        .core
        .create_scep_challenge(&NewScepChallenge {
            username: "bob".into(),
            platform: Platform::Ios,
            device_uuid: None,
            ttl_secs: Some(600),
        })
        .await
        .unwrap();
    let scep_id = scep.id.clone().unwrap();
    assert_eq!(
        w.core.grant(&scep_id).await.unwrap().protocol,
        GrantProtocol::Scep
    );

    // Listed as active, filtered by user and protocol, newest first, paged.
    assert_eq!(
        ids(&w, query(Some(GrantState::Active))).await,
        vec![scep_id.clone(), est.record.id.clone()]
    );
    let mut q = query(None);
    q.username = Some("alice".into());
    assert_eq!(ids(&w, q).await, vec![est.record.id.clone()]);
    let mut q = query(None);
    q.protocol = Some(GrantProtocol::Scep);
    assert_eq!(ids(&w, q).await, vec![scep_id.clone()]);
    let mut q = query(None);
    q.limit = 1;
    q.offset = 1;
    let page = w.core.grants(q).await.unwrap();
    assert_eq!(
        (page.total, page.items.len(), page.items[0].id.clone()),
        (2, 1, est.record.id.clone())
    );

    // A SCEP challenge is no EST token (and the EST grant stays usable).
    assert!(matches!(
        est_with(&w, &scep.challenge).await,
        Err(CoreError::EstTokenInvalid)
    ));

    // Revoked: refused like an unknown token, listed as revoked; revoking again is harmless.
    let r = w.core.revoke_grant(&est.record.id).await.unwrap();
    assert_eq!(r.state, GrantState::Revoked);
    assert!(matches!(
        est_with(&w, &est.secret).await,
        Err(CoreError::EstTokenInvalid)
    ));
    assert_eq!(
        ids(&w, query(Some(GrantState::Revoked))).await,
        vec![est.record.id.clone()]
    );
    assert_eq!(
        w.core
            .revoke_grant(&est.record.id)
            .await
            .unwrap()
            .revoked_at,
        r.revoked_at
    );
    assert!(matches!(
        w.core.revoke_grant("no-such-grant").await,
        Err(CoreError::NotFound(_))
    ));

    // Used once, then refused; a consumed grant cannot be revoked.
    let t = w
        .core
        .create_grant(GrantProtocol::Est, "alice", Platform::Windows, None, None)
        .await
        .unwrap();
    let serial = est_with(&w, &t.secret).await.unwrap();
    let g = w.core.grant(&t.record.id).await.unwrap();
    assert_eq!(g.state, GrantState::Consumed);
    assert_eq!(g.cert_serial.as_deref(), Some(serial.as_str()));
    let dev = w
        .store
        .certificate(&serial)
        .await
        .unwrap()
        .unwrap()
        .device_id;
    assert_eq!(g.device_id, dev);
    assert!(matches!(
        est_with(&w, &t.secret).await,
        Err(CoreError::EstTokenInvalid)
    ));
    let e = w.core.revoke_grant(&t.record.id).await.unwrap_err();
    assert_eq!(e.code(), "grant_consumed");
    assert_eq!(
        w.core.grant(&t.record.id).await.unwrap().state,
        GrantState::Consumed
    );

    // Expired: refused, listed as expired.
    let short = w
        .core
        .create_grant(GrantProtocol::Est, "bob", Platform::Ios, None, Some(60))
        .await
        .unwrap();
    w.clock.advance(Duration::seconds(60));
    assert!(matches!(
        est_with(&w, &short.secret).await,
        Err(CoreError::EstTokenInvalid)
    ));
    assert!(
        ids(&w, query(Some(GrantState::Expired)))
            .await
            .contains(&short.record.id)
    );

    // Lifetimes outside the protocol's range are refused.
    for (p, ttl) in [
        (GrantProtocol::Scep, 59),
        (GrantProtocol::Est, 0),
        (GrantProtocol::Est, 30 * 86_400 + 1),
    ] {
        let e = w
            .core
            .create_grant(p, "bob", Platform::Ios, None, Some(ttl))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "bad_request", "{p} {ttl}");
    }
}

fn registration(uuid: &str, serial: &str) -> Registration {
    let device = DeviceRecord {
        id: format!("d-{uuid}"),
        device_uuid: uuid.into(),
        username: "alice".into(),
        platform: Platform::Android,
        client_kind: ClientKind::Agent,
        client_version: "10.1.0".into(),
        mode: AuthMode::Mutual,
        listener: Listener::Device,
        status: DeviceStatus::Active,
        registered_with_ma: false,
        registered_at: T0,
        last_checkin_at: None,
        retired_at: None,
        current_cert_serial: Some(serial.into()),
        cert_not_after: Some(T0 + 86_400),
        secret_hash: None,
        policy: "default".into(),
        previous_cert_serial: None,
        migration_status: MigrationStatus::None,
        renewal_count: 0,
        enrollment_config: Some("local".into()),
        reregister_required: false,
    };
    let cert = CertRecord {
        serial: serial.into(),
        device_id: Some(device.id.clone()),
        subject: "CN=alice".into(),
        not_before: T0,
        not_after: T0 + 86_400,
        issued_at: T0,
        status: CertStatus::Active,
        revoked_at: None,
        revocation_reason: None,
        der: vec![0],
        issue_reason: "est".into(),
        replaces_serial: None,
        enrollment_config: "local".into(),
    };
    Registration {
        device,
        cert: Some(cert),
    }
}

fn est_write(uuid: &str, serial: &str, token_hash: Option<&str>) -> EnrollmentWrite {
    EnrollmentWrite {
        registration: registration(uuid, serial),
        grant: token_hash.map(|h| GrantUse {
            protocol: GrantProtocol::Est,
            secret_hash: h.to_owned(),
        }),
        scep_request: None,
    }
}

#[tokio::test]
async fn consumption_is_one_transaction_with_the_enrollment() {
    let w = world().await;
    let uuid = "12345678-1234-4234-8234-123456789abc";

    // The grant was revoked after the enrollment looked it up: the store refuses it and
    // writes neither device nor certificate.
    let est = w
        .core
        .create_grant(GrantProtocol::Est, "alice", Platform::Android, None, None)
        .await
        .unwrap();
    w.core.revoke_grant(&est.record.id).await.unwrap();
    let e = w
        .store
        .apply_enrollment(&est_write(uuid, "aa01", Some(&est.record.secret_hash)), T0)
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::EstTokenInvalid), "{e:?}");
    assert!(w.store.device_by_uuid(uuid).await.unwrap().is_none());
    assert!(w.store.certificate("aa01").await.unwrap().is_none());

    // Likewise for SCEP, and the transaction record is not written either.
    let scep = w
        .core
        .create_grant(GrantProtocol::Scep, "alice", Platform::Android, None, None)
        .await
        .unwrap();
    let grant = ScepGrant {
        hash: scep.record.secret_hash.clone(),
        username: "alice".into(),
        platform: Platform::Android,
        device_uuid: None,
        static_config: None,
    };
    let key = ScepRequestKey {
        transaction_id: "tx-1".into(),
        request_hash: "req-1".into(),
        signer_spki_sha256: "00".repeat(32),
    };
    w.clock.advance(Duration::seconds(3600));
    let later = T0 + 3600;
    let e = w
        .store
        .apply_enrollment(
            &EnrollmentWrite {
                registration: registration(uuid, "aa02"),
                grant: Some(GrantUse {
                    protocol: GrantProtocol::Scep,
                    secret_hash: grant.hash.clone(),
                }),
                scep_request: Some(key),
            },
            later,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, CoreError::ScepChallengeInvalid),
        "expired: {e:?}"
    );
    assert!(w.store.device_by_uuid(uuid).await.unwrap().is_none());
    assert!(w.store.scep_request("req-1").await.unwrap().is_none());

    // The registration itself fails (its certificate serial is taken): the grant stays
    // unused.
    let fresh = w
        .core
        .create_grant(GrantProtocol::Est, "alice", Platform::Android, None, None)
        .await
        .unwrap();
    let at = later;
    w.store
        .apply_enrollment(&est_write(uuid, "aa03", None), at)
        .await
        .unwrap();
    let other = "abcdefab-1234-4234-8234-123456789abc";
    assert!(
        w.store
            .apply_enrollment(
                &est_write(other, "aa03", Some(&fresh.record.secret_hash)),
                at
            )
            .await
            .is_err()
    );
    assert_eq!(
        w.core.grant(&fresh.record.id).await.unwrap().state,
        GrantState::Active
    );
    // And a good one consumes it together with device and certificate.
    let id = w
        .store
        .apply_enrollment(
            &est_write(other, "aa04", Some(&fresh.record.secret_hash)),
            at,
        )
        .await
        .unwrap()
        .device_id;
    let g = w.core.grant(&fresh.record.id).await.unwrap();
    assert_eq!(
        (g.state, g.device_id.as_deref(), g.cert_serial.as_deref()),
        (GrantState::Consumed, Some(id.as_str()), Some("aa04"))
    );
}
