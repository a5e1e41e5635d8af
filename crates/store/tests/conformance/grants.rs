//! One-time enrollment grants (SCEP challenges, EST tokens) on the backend under test:
//! consumption inside the enrollment's transaction, and refusal of revoked, expired, reused
//! and other-protocol grants.

use crate::apply::ApplyExt;
use crate::backend::Backend;
use crate::grants_support::{est_with, query};
use ferrocore_core::directory::LocalDirectory;
use ferrocore_core::issuance::LocalIssuer;
use ferrocore_core::service::PkiPublication;
use ferrocore_core::store::Store;
use ferrocore_core::store::{
    CertRecord, DeviceRecord, GrantQuery, Registration, ScepGrant, ScepRequestKey,
};
use ferrocore_core::{Core, CoreError, ManualClock};
use ferrocore_pki::LocalCa;
use ferrocore_proto::{
    AuthMode, CertStatus, ClientKind, DeviceStatus, GrantProtocol, GrantState, Listener,
    MigrationStatus, NewScepChallenge, Platform,
};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const T0: i64 = 1_800_000_000;

struct World {
    _fresh: crate::backend::Fresh,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
    core: Core,
}

async fn world<B: Backend>() -> World {
    let start = OffsetDateTime::from_unix_timestamp(T0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let fresh = B::fresh().await;
    let store = fresh.store.clone();
    let ca = LocalCa::generate("Test CA", start - Duration::days(1)).unwrap();
    let core = Core::new(
        store.clone(),
        Arc::new(LocalDirectory::new(store.clone())),
        Arc::new(LocalIssuer::new(ca)),
        clock.clone(),
        PkiPublication::default(),
    );
    let w = World {
        _fresh: fresh,
        clock,
        store,
        core,
    };
    w.core.add_user("alice", "Alice-pass1", None).await.unwrap();
    w.core.add_user("bob", "Bob-pass12", None).await.unwrap();
    // The grants here are mostly for Android agents, which enroll with a certificate (EST)
    // only once mutual authentication is on (Table 4).
    w.core.enable_mutual_auth().await.unwrap();
    w
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

pub async fn revoked_expired_reused_and_other_protocol_grants_are_refused<B: Backend>() {
    let w = world::<B>();
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
        est_with(&w.core, &scep.challenge).await,
        Err(CoreError::EstTokenInvalid)
    ));

    // Revoked: refused like an unknown token, listed as revoked; revoking again is harmless.
    let r = w.core.revoke_grant(&est.record.id).await.unwrap();
    assert_eq!(r.state, GrantState::Revoked);
    assert!(matches!(
        est_with(&w.core, &est.secret).await,
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
    let serial = est_with(&w.core, &t.secret).await.unwrap();
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
        est_with(&w.core, &t.secret).await,
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
        est_with(&w.core, &short.secret).await,
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

pub async fn consumption_is_one_transaction_with_the_enrollment<B: Backend>() {
    let w = world::<B>().await;
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
        .apply_est_enrollment(
            &registration(uuid, "aa01"),
            Some(&est.record.secret_hash),
            T0,
        )
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
        .apply_scep_enrollment(&registration(uuid, "aa02"), &grant, &key, later)
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
        .apply_est_enrollment(&registration(uuid, "aa03"), None, at)
        .await
        .unwrap();
    let other = "abcdefab-1234-4234-8234-123456789abc";
    assert!(
        w.store
            .apply_est_enrollment(
                &registration(other, "aa03"),
                Some(&fresh.record.secret_hash),
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
        .apply_est_enrollment(
            &registration(other, "aa04"),
            Some(&fresh.record.secret_hash),
            at,
        )
        .await
        .unwrap();
    let g = w.core.grant(&fresh.record.id).await.unwrap();
    assert_eq!(
        (g.state, g.device_id.as_deref(), g.cert_serial.as_deref()),
        (GrantState::Consumed, Some(id.as_str()), Some("aa04"))
    );
}
