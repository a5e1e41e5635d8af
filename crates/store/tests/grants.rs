//! The SQLite migration that merged the former `est_tokens` and `scep_challenges` tables into
//! enrollment grants. (Consumption and refusals run over every backend in
//! `conformance/grants.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/grants.rs"]
mod support_grants;
use ferrocore_core::directory::LocalDirectory;
use ferrocore_core::issuance::LocalIssuer;
use ferrocore_core::service::{PkiPublication, sha256_hex};
use ferrocore_core::store::traits::*;
use ferrocore_core::{Core, CoreError, ManualClock};
use ferrocore_pki::LocalCa;
use ferrocore_proto::{GrantProtocol, GrantState, Platform};
use ferrocore_store::SqliteStore;
use std::path::Path;
use std::sync::Arc;
use support_grants::{est_with, query};
use time::{Duration, OffsetDateTime};

const T0: i64 = 1_800_000_000;

struct World {
    _dir: tempfile::TempDir,
    _clock: Arc<ManualClock>,
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
    World {
        _dir: dir,
        _clock: clock,
        store,
        core,
    }
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
    // Android agents enroll with a certificate (EST) only once mutual authentication is on.
    w.core.enable_mutual_auth().await.unwrap();
    let serial = est_with(&w.core, "est_active").await.unwrap();
    let g = by(GrantProtocol::Est, "est_active").await;
    assert_eq!(g.consumed_by_serial.as_deref(), Some(serial.as_str()));
    for t in ["est_active", "est_used", "est_expired"] {
        assert!(
            matches!(est_with(&w.core, t).await, Err(CoreError::EstTokenInvalid)),
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
