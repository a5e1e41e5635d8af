//! Certificate-lifecycle scenarios: the domain (`Core`) on the real SQLite store, with an
//! injected clock moved through renewal window, expiry, grace and retirement.

use crate::backend::Backend;
use ferrocore_core::directory::LocalDirectory;
use ferrocore_core::issuance::LocalIssuer;
use ferrocore_core::service::{
    CheckedIn, DeviceCredential, PkiPublication, PresentedCert, Purpose,
};
use ferrocore_core::store::DeviceQuery;
use ferrocore_core::{Clock, Core, CoreError, ManualClock};
use ferrocore_pki::LocalCa;
use ferrocore_proto::{
    Action, AuthMode, CertStatus, CheckinRequest, ClientKind, DeviceStatus, Listener,
    MigrationStatus, Platform, PolicyChange, RegisterRequest,
};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const DAY: Duration = Duration::days(1);

struct World {
    _fresh: crate::backend::Fresh,
    /// Scratch files (openssl's input).
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    core: Core,
    ca_der: Vec<u8>,
}

async fn world<B: Backend>() -> World {
    let start = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let fresh = B::fresh().await;
    let store = fresh.store.clone();
    let ca = LocalCa::generate("Test CA", start - Duration::days(1)).unwrap();
    let ca_der = ca.cert_der().to_vec();
    let (signer, signer_key) = ca.issue_ocsp_signer(Duration::days(90), start).unwrap();
    let responder = ferrocore_pki::OcspResponder::new(&ca_der, &signer.der, &signer_key).unwrap();
    let core = Core::new(
        store.clone(),
        Arc::new(LocalDirectory::new(store)),
        Arc::new(LocalIssuer::new(ca)),
        clock.clone(),
        PkiPublication::default(),
    );
    core.add_user("alice", "Alice-pass1", None).await.unwrap();
    core.install_ocsp_responder("local", Arc::new(responder));
    World {
        _fresh: fresh,
        _dir: tempfile::tempdir().unwrap(),
        clock,
        core,
        ca_der,
    }
}

fn csr() -> (rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    (key, csr)
}

/// A registered device as the agent holds it.
struct Dev {
    uuid: String,
    id: String,
    cert: Option<PresentedCert>,
    secret: Option<String>,
}

impl World {
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    async fn register(&self, platform: Platform, version: &str) -> Dev {
        let uuid = uuid_v4();
        self.register_uuid(platform, version, &uuid).await
    }

    async fn register_uuid(&self, platform: Platform, version: &str, uuid: &str) -> Dev {
        let (_k, csr) = csr();
        let r = self
            .core
            .register(
                RegisterRequest {
                    username: "alice".into(),
                    password: "Alice-pass1".into(),
                    platform,
                    client_kind: ClientKind::Agent,
                    client_version: version.into(),
                    device_uuid: uuid.to_owned(),
                    csr_pem: Some(csr),
                },
                Listener::Device,
            )
            .await
            .unwrap();
        Dev {
            uuid: uuid.to_owned(),
            id: r.device.id.clone(),
            cert: r
                .device
                .current_cert_serial
                .clone()
                .map(|serial| PresentedCert {
                    serial,
                    not_after: r.device.cert_not_after.unwrap(),
                    sha256: None,
                }),
            secret: r.device_secret,
        }
    }

    async fn checkin(&self, d: &Dev) -> Result<CheckedIn, CoreError> {
        let (cred, via) = match (&d.cert, &d.secret) {
            (Some(c), _) => (DeviceCredential::Certificate(c.clone()), Listener::Device),
            (None, Some(s)) => (
                DeviceCredential::Secret {
                    device_uuid: d.uuid.clone(),
                    secret: s.clone(),
                },
                Listener::SyncTls,
            ),
            _ => unreachable!(),
        };
        self.core
            .checkin(cred, via, CheckinRequest::default())
            .await
    }

    async fn renew(&self, d: &mut Dev) -> Result<(), CoreError> {
        let (_k, csr) = csr();
        let r = self.core.renew(d.cert.as_ref().unwrap(), &csr).await?;
        d.cert = Some(PresentedCert {
            serial: r.issued.serial_hex.clone(),
            not_after: r.issued.not_after.unix_timestamp(),
            sha256: None,
        });
        Ok(())
    }

    fn set(&self, t: OffsetDateTime) {
        self.clock.set(t);
    }
}

fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn crl_serials(der: &[u8]) -> Vec<String> {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    crl.iter_revoked_certificates()
        .map(|r| ferrocore_pki::serial_hex_from_bytes(r.raw_serial()))
        .collect()
}

fn not_after(d: &Dev) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(d.cert.as_ref().unwrap().not_after).unwrap()
}

fn wants_renewal(c: &CheckedIn) -> bool {
    c.actions.iter().any(|a| matches!(a, Action::Renew { .. }))
}

async fn mutual_world<B: Backend>() -> World {
    let w = world::<B>().await;
    w.core.enable_mutual_auth().await.unwrap();
    w
}

/// Android 10.1 and iOS 11.1.0 agents renew: window start, day before expiry, and within
/// the 30-day grace after expiry; one identity throughout.
pub async fn renewing_agents_through_window_expiry_and_grace<B: Backend>() {
    for (platform, version) in [(Platform::Android, "10.1"), (Platform::Ios, "11.1.0")] {
        let w = mutual_world::<B>().await;
        let mut d = w.register(platform, version).await;
        let start = w.now();
        assert_eq!(
            not_after(&d) - start,
            Duration::days(365),
            "default lifetime"
        );

        // Before the 60-day (blank) window: no renewal offered, renewal refused.
        w.set(not_after(&d) - Duration::days(61));
        let c = w.checkin(&d).await.unwrap();
        assert!(
            !wants_renewal(&c),
            "{platform}: no renewal before the window"
        );
        let l = c.lifecycle.unwrap();
        assert_eq!(l.renewal_window_days, 60);
        assert!(l.supports_renewal);
        assert!(matches!(
            w.renew(&mut d).await,
            Err(CoreError::RenewalNotDue { .. })
        ));

        // Window start: renewal offered, and performed.
        w.set(not_after(&d) - Duration::days(60));
        assert!(wants_renewal(&w.checkin(&d).await.unwrap()));
        let old = d.cert.clone().unwrap();
        w.renew(&mut d).await.unwrap();
        // The old certificate still works until the device uses the new one...
        let mut with_old = Dev {
            uuid: d.uuid.clone(),
            id: d.id.clone(),
            cert: Some(old.clone()),
            secret: None,
        };
        w.checkin(&with_old).await.unwrap();
        // ...then it is revoked as superseded and appears in the CRL.
        let c = w.checkin(&d).await.unwrap();
        assert!(!wants_renewal(&c));
        assert!(matches!(
            w.checkin(&with_old).await,
            Err(CoreError::CertRevoked { reason }) if reason == "superseded"
        ));
        let old_rec = w
            .core
            .store()
            .certificate(&old.serial)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old_rec.status, CertStatus::Revoked);
        let crl = w.core.crl();
        assert!(
            crl_serials(&crl.der).contains(&old.serial),
            "superseded serial in CRL"
        );
        with_old.cert = None;

        // The day before expiry of the new certificate: in the window, renew again.
        w.set(not_after(&d) - DAY);
        assert!(wants_renewal(&w.checkin(&d).await.unwrap()));

        // At expiry + 1 s: check-ins refused, renewal accepted (grace).
        w.set(not_after(&d) + Duration::seconds(1));
        assert!(matches!(
            w.checkin(&d).await,
            Err(CoreError::CertExpired { .. })
        ));
        // Expiry + 29 days: still within the grace.
        w.set(not_after(&d) + Duration::days(29));
        assert!(matches!(
            w.checkin(&d).await,
            Err(CoreError::CertExpired { .. })
        ));
        w.renew(&mut d).await.unwrap();
        w.checkin(&d).await.unwrap();
        let dev = w.core.device(&d.id).await.unwrap();
        assert_eq!(dev.status, DeviceStatus::Active);
        assert_eq!(dev.renewal_count, 2);
    }
}

/// Out of contact past expiry + 30 days: retired at once on contact, and by the sweep —
/// on Android and iOS, for agents that renew and agents that do not.
pub async fn past_the_grace_the_device_is_retired<B: Backend>() {
    for (platform, version) in [
        (Platform::Android, "10.1.0"),
        (Platform::Android, "10.0"),
        (Platform::Ios, "11.1.0"),
        (Platform::Ios, "10.5"),
    ] {
        let w = mutual_world::<B>().await;
        let mut d = w.register(platform, version).await;
        let quiet = w.register(platform, version).await;
        // Expiry + 29 days: still a device (renewing agents may renew; others are refused).
        w.set(not_after(&d) + Duration::days(29));
        assert!(matches!(
            w.checkin(&d).await,
            Err(CoreError::CertExpired { .. })
        ));
        assert_eq!(
            w.core.sweep_expired().await.unwrap(),
            0,
            "{platform} {version}"
        );
        // Expiry + 31 days. Contact: refused and the device retired now.
        w.set(not_after(&d) + Duration::days(31));
        assert!(
            matches!(w.renew(&mut d).await, Err(CoreError::DeviceRetired)),
            "{platform} {version}"
        );
        let dev = w.core.device(&d.id).await.unwrap();
        assert_eq!(dev.status, DeviceStatus::Retired);
        // The silent one is retired by the sweep, its certificate revoked.
        assert_eq!(
            w.core.device(&quiet.id).await.unwrap().status,
            DeviceStatus::Active
        );
        assert_eq!(w.core.sweep_expired().await.unwrap(), 1);
        assert_eq!(
            w.core.device(&quiet.id).await.unwrap().status,
            DeviceStatus::Retired
        );
        let serial = &quiet.cert.as_ref().unwrap().serial;
        assert_eq!(
            w.core
                .store()
                .certificate(serial)
                .await
                .unwrap()
                .unwrap()
                .status,
            CertStatus::Revoked
        );
        // (Already expired, so no longer listed in the CRL: RFC 5280 lets expired entries go.)
        assert!(!crl_serials(&w.core.crl().der).contains(serial));
        // Nothing left to sweep; the retired device is told to register again.
        assert_eq!(w.core.sweep_expired().await.unwrap(), 0);
        assert!(matches!(
            w.checkin(&quiet).await,
            Err(CoreError::DeviceRetired)
        ));
    }
}

/// Android before 10.1 and iOS before 11.1.0 never renew: refused at expiry with "register
/// again", and registering again replaces the identity.
pub async fn agents_without_renewal_register_again<B: Backend>() {
    for (platform, version) in [(Platform::Android, "10.0.9"), (Platform::Ios, "11.0")] {
        let w = mutual_world::<B>().await;
        let mut d = w.register(platform, version).await;
        w.set(not_after(&d) - DAY);
        let c = w.checkin(&d).await.unwrap();
        assert!(
            !wants_renewal(&c),
            "{platform} {version} is never offered renewal"
        );
        assert!(!c.lifecycle.unwrap().supports_renewal);
        assert!(matches!(
            w.renew(&mut d).await,
            Err(CoreError::RenewalNotSupported)
        ));
        w.set(not_after(&d) + DAY);
        let err = w.checkin(&d).await.unwrap_err();
        assert!(matches!(err, CoreError::CertExpired { .. }));
        assert!(err.to_string().contains("register again"), "{err}");
        assert!(matches!(
            w.renew(&mut d).await,
            Err(CoreError::CertExpired { .. })
        ));
        let again = w.register_uuid(platform, version, &d.uuid).await;
        assert_eq!(again.id, d.id, "same device record");
        w.checkin(&again).await.unwrap();
        assert!(matches!(
            w.checkin(&d).await,
            Err(CoreError::CertRevoked { .. })
        ));
    }
}

/// Ten renewals, one identity: the certificate chain is recorded with reasons.
pub async fn ten_renewals_keep_one_identity<B: Backend>() {
    let w = mutual_world::<B>().await;
    w.core
        .create_policy(
            "short",
            &PolicyChange {
                cert_lifetime_days: Some(60),
                renewal_window_days: Some(serde_json::json!(60)),
                ..PolicyChange::default()
            },
        )
        .await
        .unwrap();
    let mut d = w.register(Platform::Android, "12.0").await;
    w.core.assign_policy(&d.id, "short").await.unwrap();
    let first = d.cert.clone().unwrap().serial;
    // A 60-day window on a 60-day certificate: renewal is due at once, so all ten superseded
    // certificates are still unexpired and must all be in the CRL.
    w.set(not_after(&d) - Duration::days(60));
    for _ in 0..10 {
        w.set(w.now() + Duration::hours(1));
        assert!(wants_renewal(&w.checkin(&d).await.unwrap()));
        w.renew(&mut d).await.unwrap();
        w.checkin(&d).await.unwrap();
    }
    let dev = w.core.device(&d.id).await.unwrap();
    assert_eq!(dev.renewal_count, 10);
    assert_eq!(dev.status, DeviceStatus::Active);
    let certs = w.core.certificates(Some(&d.id), 100, 0).await.unwrap();
    assert_eq!(certs.total, 11);
    let active: Vec<_> = certs
        .items
        .iter()
        .filter(|c| c.status == CertStatus::Active)
        .collect();
    assert_eq!(active.len(), 1, "only the newest is active");
    assert_eq!(
        certs
            .items
            .iter()
            .filter(|c| c.issue_reason == "renewal")
            .count(),
        10
    );
    // The chain links back to the registration certificate.
    let mut serial = dev.current_cert_serial.clone().unwrap();
    let mut hops = 0;
    while let Some(prev) = certs
        .items
        .iter()
        .find(|c| c.serial == serial)
        .and_then(|c| c.replaces_serial.clone())
    {
        serial = prev;
        hops += 1;
    }
    assert_eq!((hops, serial), (10, first));
    // Every superseded certificate is in the CRL.
    let crl = w.core.crl();
    assert_eq!(crl_serials(&crl.der).len(), 10);
}

pub async fn bad_renewal_input_is_refused<B: Backend>() {
    let w = mutual_world::<B>().await;
    for bad in [
        serde_json::json!(0),
        serde_json::json!(61),
        serde_json::json!(-1),
        serde_json::json!("text"),
        serde_json::json!(1.5),
        serde_json::json!(true),
    ] {
        let err = w
            .core
            .change_policy(
                "default",
                &PolicyChange {
                    renewal_window_days: Some(bad.clone()),
                    ..PolicyChange::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_setting", "{bad}");
        assert!(err.to_string().contains("1 to 60"), "{err}");
    }
    // Blank means 60; 1 and 60 are accepted; nothing half-applied by the refusals.
    let p = w.core.policy("default").await.unwrap();
    assert_eq!(p.renewal_window_days, None);
    for (v, want) in [
        ("\"\"", None),
        ("1", Some(1)),
        ("60", Some(60)),
        ("null", None),
    ] {
        let p = w
            .core
            .change_policy(
                "default",
                &PolicyChange {
                    renewal_window_days: Some(serde_json::from_str(v).unwrap()),
                    ..PolicyChange::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(p.renewal_window_days, want, "{v}");
    }

    // A CSR for the same key as the current certificate.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr_pem = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let r = w
        .core
        .register(
            RegisterRequest {
                username: "alice".into(),
                password: "Alice-pass1".into(),
                platform: Platform::Android,
                client_kind: ClientKind::Agent,
                client_version: "11".into(),
                device_uuid: uuid_v4(),
                csr_pem: Some(csr_pem.clone()),
            },
            Listener::Device,
        )
        .await
        .unwrap();
    let cert = PresentedCert {
        serial: r.device.current_cert_serial.clone().unwrap(),
        not_after: r.device.cert_not_after.unwrap(),
        sha256: None,
    };
    w.set(OffsetDateTime::from_unix_timestamp(cert.not_after).unwrap() - DAY);
    assert!(matches!(
        w.core.renew(&cert, &csr_pem).await,
        Err(CoreError::SameKey)
    ));
    // Garbage CSR, unknown (foreign) certificate, revoked certificate.
    assert!(matches!(
        w.core.renew(&cert, "garbage").await,
        Err(CoreError::InvalidCsr(_))
    ));
    let (_k, good) = csr();
    let foreign = PresentedCert {
        serial: "7f00".into(),
        not_after: cert.not_after,
        sha256: None,
    };
    assert!(matches!(
        w.core.renew(&foreign, &good).await,
        Err(CoreError::CertUnknown(_))
    ));
    // The recorded serial on another certificate (another CA counting the same numbers).
    let recorded = w
        .core
        .store()
        .certificate(&cert.serial)
        .await
        .unwrap()
        .unwrap();
    let same_serial = PresentedCert {
        sha256: Some("00".repeat(32)),
        ..cert.clone()
    };
    assert!(matches!(
        w.core
            .authenticate_cert(&same_serial, Purpose::Checkin)
            .await,
        Err(CoreError::CertUnknown(_))
    ));
    let exact = PresentedCert {
        sha256: Some(ferrocore_core::service::sha256_hex(&recorded.der)),
        ..cert.clone()
    };
    w.core
        .authenticate_cert(&exact, Purpose::Checkin)
        .await
        .unwrap();
    w.core
        .revoke_certificate(&cert.serial, Some("key_compromise"))
        .await
        .unwrap();
    assert!(matches!(
        w.core.renew(&cert, &good).await,
        Err(CoreError::CertRevoked { .. })
    ));
    assert!(matches!(
        w.core.authenticate_cert(&cert, Purpose::Renewal).await,
        Err(CoreError::CertRevoked { .. })
    ));
}

/// Migration: a legacy Android 10.1 agent registered before mutual auth gets its identity
/// certificate on its next sync-TLS check-in: Pending, then Success after its first
/// mutual-TLS check-in; sync-TLS refused afterwards; the search finds it under each status.
pub async fn migration_pending_then_success<B: Backend>() {
    let w = world::<B>().await;
    let legacy = w.register(Platform::Android, "10.1.0").await;
    let old = w.register(Platform::Android, "10.0").await;
    assert!(legacy.secret.is_some() && legacy.cert.is_none());
    w.core.enable_mutual_auth().await.unwrap();
    // Flag off: nothing happens.
    assert!(w.checkin(&legacy).await.unwrap().actions.is_empty());
    w.core
        .change_policy(
            "default",
            &PolicyChange {
                migrate_client: Some(true),
                ..PolicyChange::default()
            },
        )
        .await
        .unwrap();
    let search = |status: MigrationStatus| DeviceQuery {
        migration_status: Some(status),
        limit: 100,
        ..DeviceQuery::default()
    };
    let c = w.checkin(&legacy).await.unwrap();
    assert_eq!(c.actions, vec![Action::Migrate]);
    // The agent that cannot migrate shows "not supported".
    assert!(w.checkin(&old).await.unwrap().actions.is_empty());
    let ns = w
        .core
        .devices(&search(MigrationStatus::NotSupported))
        .await
        .unwrap();
    assert_eq!(
        ns.items.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        vec![old.id.clone()]
    );

    let (_k, csr_pem) = csr();
    let r = w
        .core
        .migrate(&legacy.uuid, legacy.secret.as_deref().unwrap(), &csr_pem)
        .await
        .unwrap();
    assert_eq!(r.device.migration_status, MigrationStatus::Pending);
    let pending = w
        .core
        .devices(&search(MigrationStatus::Pending))
        .await
        .unwrap();
    assert_eq!(pending.total, 1);
    assert_eq!(pending.items[0].id, legacy.id);

    let migrated = Dev {
        uuid: legacy.uuid.clone(),
        id: legacy.id.clone(),
        cert: Some(PresentedCert {
            serial: r.issued.serial_hex.clone(),
            not_after: r.issued.not_after.unix_timestamp(),
            sha256: None,
        }),
        secret: None,
    };
    let c = w.checkin(&migrated).await.unwrap();
    assert_eq!(c.device.mode, AuthMode::Mutual);
    assert_eq!(c.device.migration_status, MigrationStatus::Success);
    let ok = w
        .core
        .devices(&search(MigrationStatus::Success))
        .await
        .unwrap();
    assert_eq!(ok.total, 1);
    assert_eq!(ok.items[0].listener, Listener::Device);
    // Sync-TLS with the old secret is refused from now on.
    let err = w.checkin(&legacy).await.unwrap_err();
    assert_eq!(err.code(), "mutual_auth_required");
    // No user registered again: same device record.
    assert_eq!(
        w.core.device(&legacy.id).await.unwrap().registered_at,
        c.device.registered_at
    );
}

/// The CRL publisher runs only when something was revoked: a renewal or a migration that
/// revokes nothing leaves the published CRL (and its number) as it was; a renewal that
/// replaces an unconfirmed earlier renewal revokes it and republishes.
pub async fn renewal_and_migration_sign_a_crl_only_when_they_revoke<B: Backend>() {
    let w = world::<B>().await;
    let legacy = w.register(Platform::Android, "10.1.0").await;
    w.core.enable_mutual_auth().await.unwrap();
    let mut d = w.register(Platform::Android, "10.1.0").await;
    let published = w.core.publish_crl().await.unwrap();
    w.set(not_after(&d) - Duration::days(30));
    let old = d.cert.clone().unwrap();
    w.renew(&mut d).await.unwrap();
    assert_eq!(
        w.core.crl().number,
        published.number,
        "a renewal that revoked nothing signed a CRL"
    );
    assert_eq!(w.core.crl().der, published.der);

    w.core
        .change_policy(
            "default",
            &PolicyChange {
                migrate_client: Some(true),
                ..PolicyChange::default()
            },
        )
        .await
        .unwrap();
    let (_k, csr_pem) = csr();
    w.core
        .migrate(&legacy.uuid, legacy.secret.as_deref().unwrap(), &csr_pem)
        .await
        .unwrap();
    assert_eq!(
        w.core.crl().number,
        published.number,
        "a migration that revoked nothing signed a CRL"
    );

    // Renewing again with the previous certificate (the new one never used) revokes the
    // unconfirmed one: published at once.
    let unconfirmed = d.cert.clone().unwrap();
    let mut again = Dev {
        uuid: d.uuid.clone(),
        id: d.id.clone(),
        cert: Some(old),
        secret: None,
    };
    w.renew(&mut again).await.unwrap();
    assert!(w.core.crl().number > published.number);
    assert!(crl_serials(&w.core.crl().der).contains(&unconfirmed.serial));
}

/// Advanced search filters combine; the renewal-at-risk report lists devices in their window
/// or grace with the date each will be retired.
pub async fn search_and_renewal_at_risk<B: Backend>() {
    let w = mutual_world::<B>().await;
    let a = w.register(Platform::Android, "10.1").await;
    w.set(w.now() + Duration::days(100));
    let b = w.register(Platform::Ios, "11.1.0").await;
    let c = w.register(Platform::Windows, "10.0").await;
    w.checkin(&c).await.unwrap();

    let q = |f: &dyn Fn(&mut DeviceQuery)| {
        let mut q = DeviceQuery {
            limit: 100,
            ..DeviceQuery::default()
        };
        f(&mut q);
        q
    };
    let ids = |p: ferrocore_core::store::Page<ferrocore_core::store::DeviceRecord>| {
        let mut v: Vec<String> = p.items.into_iter().map(|d| d.id).collect();
        v.sort();
        v
    };
    let mut ab = vec![a.id.clone(), b.id.clone()];
    ab.sort();
    let na = not_after(&a).unix_timestamp();
    assert_eq!(
        ids(w
            .core
            .devices(&q(&|q| q.cert_expires_before = Some(na)))
            .await
            .unwrap()),
        vec![a.id.clone()]
    );
    assert_eq!(
        ids(w
            .core
            .devices(&q(&|q| q.platform = Some(Platform::Ios)))
            .await
            .unwrap()),
        vec![b.id.clone()]
    );
    assert_eq!(
        w.core
            .devices(&q(&|q| {
                q.last_checkin_after = Some(0);
                q.mode = Some(AuthMode::Mutual);
            }))
            .await
            .unwrap()
            .total,
        1
    );
    // Pagination keeps the total.
    let page = w.core.devices(&q(&|q| q.limit = 1)).await.unwrap();
    assert_eq!((page.items.len(), page.total), (1, 3));

    // 40 days before a's expiry: a is in its window (60 days), b and c are not.
    w.set(not_after(&a) - Duration::days(40));
    let inside = w
        .core
        .devices(&q(&|q| {
            q.in_renewal_window_at = Some(w.now().unix_timestamp())
        }))
        .await
        .unwrap();
    assert_eq!(ids(inside), vec![a.id.clone()]);
    let risk = w.core.renewal_at_risk(100, 0).await.unwrap();
    assert_eq!(risk.total, 1);
    // 10 days after a's expiry: a in grace; not renewed; retire date = expiry + 30 days.
    w.set(not_after(&a) + Duration::days(10));
    let risk = w.core.renewal_at_risk(100, 0).await.unwrap();
    assert_eq!(risk.items.len(), 1);
    assert_eq!(risk.items[0].device.id, a.id);
    assert_eq!(risk.items[0].window_days, 60);
    // 40 days after expiry, past the grace: still listed until the sweep retires it.
    w.set(not_after(&a) + Duration::days(40));
    let listed = |risk: &ferrocore_core::store::Page<ferrocore_core::store::AtRisk>| {
        risk.items.iter().any(|r| r.device.id == a.id)
    };
    let risk = w.core.renewal_at_risk(100, 0).await.unwrap();
    assert!(listed(&risk), "expired, not swept yet: still at risk");
    assert!(w.core.sweep_expired().await.unwrap() >= 1);
    let risk = w.core.renewal_at_risk(100, 0).await.unwrap();
    assert!(!listed(&risk), "retired: no longer listed");
    let _ = ab;
}

/// `openssl ocsp -resp_text` of a response: (certificate status, thisUpdate line).
fn openssl_ocsp_text(dir: &std::path::Path, der: &[u8]) -> (String, String) {
    let path = dir.join("resp.der");
    std::fs::write(&path, der).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["ocsp", "-noverify", "-resp_text", "-respin"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    (field("Cert Status:"), field("This Update:"))
}

pub async fn ocsp_answers_without_nonce_are_reused_briefly_and_never_across_a_revocation<
    B: Backend,
>() {
    use ferrocore_core::ocsp::{OCSP_REUSE, OcspOutcome};
    use ferrocore_pki::{OcspHash, build_ocsp_request};
    let w = mutual_world::<B>().await;
    let d = w.register(Platform::Android, "10.0").await;
    let serial = d.cert.as_ref().unwrap().serial.clone();
    let serial_bytes = hex::decode(&serial).unwrap();
    let req = build_ocsp_request(&w.ca_der, &serial_bytes, OcspHash::Sha1, None).unwrap();
    let first = w.core.ocsp_respond(&req).await;
    assert_eq!(first.outcome, OcspOutcome::Answered);
    let (status, this_update) = openssl_ocsp_text(w._dir.path(), &first.der);
    assert_eq!(status, "good");

    // Within the reuse window the same signed answer is served again.
    w.set(w.now() + Duration::seconds(30));
    assert_eq!(w.core.ocsp_respond(&req).await.der, first.der);
    // With a nonce it is signed afresh (the nonce echoed), whatever the cache holds.
    let with_nonce = build_ocsp_request(
        &w.ca_der,
        &serial_bytes,
        OcspHash::Sha1,
        Some(b"0123456789abcdef"),
    )
    .unwrap();
    let fresh = w.core.ocsp_respond(&with_nonce).await.der;
    assert_ne!(fresh, first.der);
    assert_eq!(openssl_ocsp_text(w._dir.path(), &fresh).0, "good");

    // Past the window: signed again, with a later thisUpdate.
    w.set(w.now() + OCSP_REUSE);
    let later = w.core.ocsp_respond(&req).await.der;
    assert_ne!(later, first.der);
    let (status, later_update) = openssl_ocsp_text(w._dir.path(), &later);
    assert_eq!(status, "good");
    assert_ne!(later_update, this_update);

    // A revocation is visible to the very next request, inside the window.
    w.set(w.now() + Duration::seconds(1));
    w.core
        .revoke_certificate(&serial, Some("key_compromise"))
        .await
        .unwrap();
    let revoked = w.core.ocsp_respond(&req).await.der;
    assert_eq!(openssl_ocsp_text(w._dir.path(), &revoked).0, "revoked");

    // An unknown serial is never kept: answered unknown, and each time signed afresh.
    let unknown = build_ocsp_request(&w.ca_der, &[0x42; 16], OcspHash::Sha1, None).unwrap();
    let u1 = w.core.ocsp_respond(&unknown).await.der;
    assert_eq!(openssl_ocsp_text(w._dir.path(), &u1).0, "unknown");
    w.set(w.now() + Duration::seconds(1));
    assert_ne!(w.core.ocsp_respond(&unknown).await.der, u1);
}

/// `openssl ocsp -resp_text` fields of a response: (Cert Status, This Update, Next Update,
/// Revocation Reason if any), the times parsed.
fn openssl_ocsp_fields(
    dir: &std::path::Path,
    der: &[u8],
) -> (String, OffsetDateTime, OffsetDateTime, Option<String>) {
    let path = dir.join("resp-fields.der");
    std::fs::write(&path, der).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["ocsp", "-noverify", "-resp_text", "-respin"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    // openssl prints ASN.1 times as "Jan  5 08:00:00 2027 GMT".
    let format = time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
    );
    let at = |name: &str| {
        let v = field(name).unwrap_or_else(|| panic!("no {name} in {text}"));
        time::PrimitiveDateTime::parse(&v, format)
            .unwrap_or_else(|e| panic!("{name} {v:?}: {e}"))
            .assume_utc()
    };
    (
        field("Cert Status:").unwrap_or_else(|| panic!("no status in {text}")),
        at("This Update:"),
        at("Next Update:"),
        field("Revocation Reason:"),
    )
}

/// The freshness promises in literal durations (README "OCSP responder"): a signed answer to
/// a nonce-less request is served again for 60 s and no longer; thisUpdate is the signing
/// time and nextUpdate one hour later. Changing `OCSP_REUSE` or `OCSP_VALIDITY` fails here.
pub async fn ocsp_answers_are_reused_for_sixty_seconds_and_valid_for_one_hour<B: Backend>() {
    use ferrocore_pki::{OcspHash, build_ocsp_request};
    let w = mutual_world::<B>().await;
    let d = w.register(Platform::Android, "10.0").await;
    let serial = hex::decode(&d.cert.as_ref().unwrap().serial).unwrap();
    let req = build_ocsp_request(&w.ca_der, &serial, OcspHash::Sha1, None).unwrap();
    let signed_at = w.now();
    let first = w.core.ocsp_respond(&req).await.der;
    let (status, this_update, next_update, _) = openssl_ocsp_fields(w._dir.path(), &first);
    assert_eq!(status, "good");
    assert_eq!(this_update, signed_at);
    assert_eq!(next_update - this_update, Duration::seconds(3600));

    w.set(signed_at + Duration::seconds(59));
    assert_eq!(
        w.core.ocsp_respond(&req).await.der,
        first,
        "reused within 60 s"
    );
    w.set(signed_at + Duration::seconds(60));
    let second = w.core.ocsp_respond(&req).await.der;
    assert_ne!(second, first, "re-signed at 60 s");
    let (_, this_update, next_update, _) = openssl_ocsp_fields(w._dir.path(), &second);
    assert_eq!(this_update, signed_at + Duration::seconds(60));
    assert_eq!(next_update, signed_at + Duration::seconds(3660));
}

/// Each way a device is retired (the admin's retire, retirement on contact after the grace,
/// the periodic sweep) empties the OCSP answer cache by itself: no earlier revocation in the
/// same world, the nonce-less answer `good` is cached (served again byte for byte), then the
/// retirement, and the very next request, inside the reuse window, says `revoked`
/// (cessationOfOperation).
pub async fn every_retirement_path_shows_in_ocsp_at_once<B: Backend>() {
    use ferrocore_pki::{OcspHash, build_ocsp_request};
    let mut stale = Vec::new();
    for path in ["admin", "contact", "sweep"] {
        let w = mutual_world::<B>().await;
        let d = w.register(Platform::Android, "10.1").await;
        let serial = hex::decode(&d.cert.as_ref().unwrap().serial).unwrap();
        let req = build_ocsp_request(&w.ca_der, &serial, OcspHash::Sha1, None).unwrap();
        if path != "admin" {
            // Past the 30-day grace: the contact or the sweep retires the device.
            w.set(not_after(&d) + Duration::days(31));
        }
        let cached = w.core.ocsp_respond(&req).await.der;
        assert_eq!(
            openssl_ocsp_fields(w._dir.path(), &cached).0,
            "good",
            "{path}"
        );
        w.set(w.now() + Duration::seconds(1));
        assert_eq!(
            w.core.ocsp_respond(&req).await.der,
            cached,
            "{path}: cached"
        );
        match path {
            "admin" => {
                w.core.retire_device(&d.id).await.unwrap();
            }
            "contact" => {
                let e = w.checkin(&d).await.unwrap_err();
                assert!(matches!(e, CoreError::DeviceRetired), "{e:?}");
            }
            _ => assert_eq!(w.core.sweep_expired().await.unwrap(), 1),
        }
        assert_eq!(
            w.core.device(&d.id).await.unwrap().status,
            DeviceStatus::Retired,
            "{path}"
        );
        let after = w.core.ocsp_respond(&req).await.der;
        let (status, _, _, reason) = openssl_ocsp_fields(w._dir.path(), &after);
        if status != "revoked"
            || !reason
                .as_deref()
                .is_some_and(|r| r.starts_with("cessationOfOperation"))
        {
            stale.push(format!("{path}: {status} {reason:?}"));
        }
    }
    assert!(stale.is_empty(), "OCSP after retirement: {stale:?}");
}
