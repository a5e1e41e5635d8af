//! The storefront never locks a registered device out (issue 19.14), black-box with curl
//! and openssl. With storefront authentication `certificate`, the rule asks iOS (whatever
//! the global setting) and Android 10.2+ (with mutual authentication on) for a certificate;
//! a legacy device of those rows has no identity certificate, so it asks
//! `/api/v1/storefront/identity` with its device secret for a storefront certificate and then
//! uses the storefront with it, while it keeps checking in with its secret. One row per case:
//! iOS registered while the setting is off, iOS older than 9.8, Android 10.2 registered before
//! the setting was enabled; and the rows that need no storefront certificate (password rule,
//! a mutual device) are told so and keep their working method.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use std::fs;
use std::path::PathBuf;

struct Dev {
    state: PathBuf,
    uuid: String,
    id: String,
}

fn register(s: &Server, name: &str, platform: &str, version: &str) -> Dev {
    let state = s.path(name);
    s.register_ok(&state, "alice", platform, "agent", version);
    let st = agent_state(&state);
    Dev {
        uuid: st["device_uuid"].as_str().unwrap().to_owned(),
        id: st["device_id"].as_str().unwrap().to_owned(),
        state,
    }
}

fn apps_url(s: &Server) -> String {
    format!(
        "https://127.0.0.1:{}/storefront/v1/apps",
        s.ports.storefront
    )
}

fn with_password(s: &Server, dev: &Dev) -> Http {
    s.curl(&[
        "-u",
        &format!("alice:{PASSWORD}"),
        "-H",
        &format!("x-ferrocore-device-uuid: {}", dev.uuid),
        &apps_url(s),
    ])
}

fn with_cert(s: &Server, cert: &str, key: &str) -> Http {
    s.curl(&["--cert", cert, "--key", key, &apps_url(s)])
}

/// Asks for a storefront certificate with the device secret (a new P-256 key by openssl) on
/// the device's own check-in listener; on success writes `sf.pem` / `sf.key` in its state.
fn storefront_identity(s: &Server, dev: &Dev) -> Http {
    let dir = &dev.state;
    openssl_ok(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "sf.key",
            "-subj",
            "/CN=storefront",
            "-out",
            "sf.csr",
        ],
    );
    let body = serde_json::json!({
        "csr_pem": fs::read_to_string(dir.join("sf.csr")).unwrap()
    });
    let st = agent_state(dir);
    let base = match st["checkin"]["listener"].as_str() {
        Some("sync_tls") => s.sync_url(),
        _ => s.device_url(),
    };
    let secret = fs::read_to_string(dir.join("secret")).unwrap();
    let h = s.curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-H",
        &format!("x-ferrocore-device-secret: {}:{}", dev.uuid, secret.trim()),
        "--data-binary",
        &body.to_string(),
        &format!("{base}/api/v1/storefront/identity"),
    ]);
    if h.status == 200 {
        fs::write(
            dir.join("sf.pem"),
            h.json["certificate_pem"].as_str().unwrap(),
        )
        .unwrap();
    }
    h
}

fn sf_files(dev: &Dev) -> (String, String) {
    let p = |f: &str| dev.state.join(f).to_str().unwrap().to_owned();
    (p("sf.pem"), p("sf.key"))
}

/// A legacy device the rule asks for a certificate: refused with the password, gets a
/// storefront certificate with its secret, lists apps with it, and still checks in as before.
fn gets_a_storefront_certificate(s: &Server, dev: &Dev, what: &str) {
    let h = with_password(s, dev);
    assert_eq!(
        (h.status, h.error_code()),
        (401, "client_certificate_required"),
        "{what} with password: {h:?}"
    );
    let before = s.device(&dev.id);
    let h = storefront_identity(s, dev);
    assert_eq!(h.status, 200, "{what}: {h:?}\n{}", s.log());
    let (cert, key) = sf_files(dev);
    let h = with_cert(s, &cert, &key);
    assert_eq!(
        h.status, 200,
        "{what} with its storefront certificate: {h:?}"
    );
    let apps = h.json.as_array().unwrap();
    assert!(!apps.is_empty(), "{what}: {h:?}");
    // The device itself is unchanged: legacy, same listener, no identity certificate.
    let after = s.device(&dev.id);
    for f in ["mode", "listener", "current_cert_serial", "cert_not_after"] {
        assert_eq!(before[f], after[f], "{what}: {f}: {after}");
    }
    let c = s.checkin_ok(&dev.state);
    assert_eq!(c["mode"], "legacy", "{what}: {c}");
    let certs = s.admin_ok(&["certificates", "list", "--device", &dev.id]);
    assert_eq!(certs["items"][0]["issue_reason"], "storefront", "{certs}");
}

#[test]
fn no_registered_device_is_left_without_a_storefront_method() {
    let s = Server::start();
    s.add_user("alice");
    let ipa = s.path("app.ipa");
    fs::write(&ipa, b"ios package").unwrap();
    let apk = s.path("app.apk");
    fs::write(&apk, b"android package").unwrap();
    for (platform, file) in [("ios", &ipa), ("android", &apk)] {
        s.admin_ok(&[
            "apps",
            "publish",
            "--platform",
            platform,
            "--name",
            "Mail",
            "--version",
            "1.0",
            "--file",
            file.to_str().unwrap(),
        ]);
    }
    // Registered while mutual authentication is off: legacy, no certificates.
    let ios_off = register(&s, "ios-off", "ios", "11.1.0");
    let android_102 = register(&s, "android-10.2", "android", "10.2");
    let android_1019 = register(&s, "android-10.1.9", "android", "10.1.9");
    s.admin_ok(&["settings", "storefront-auth", "certificate"]);

    // Row: iOS registered while the global setting is off.
    gets_a_storefront_certificate(&s, &ios_off, "iOS registered with mutual auth off");

    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    // Row: iOS older than 9.8 (never mutual), registered with the setting on.
    let ios_old = register(&s, "ios-9.7", "ios", "9.7");
    gets_a_storefront_certificate(&s, &ios_old, "iOS 9.7");
    // Row: Android 10.2 registered before mutual authentication was enabled.
    gets_a_storefront_certificate(&s, &android_102, "Android 10.2 registered before");

    // Row: Android 10.1.9 — the rule gives it the password, which works; it needs no
    // storefront certificate and is told so.
    let h = with_password(&s, &android_1019);
    assert_eq!(h.status, 200, "Android 10.1.9 with password: {h:?}");
    let h = storefront_identity(&s, &android_1019);
    assert_eq!(
        (h.status, h.error_code()),
        (409, "storefront_identity_not_needed"),
        "{h:?}"
    );
    // Row: a mutual device uses its identity certificate; it needs no storefront one.
    let ios_mutual = register(&s, "ios-mutual", "ios", "11.1.0");
    let p = |f: &str| ios_mutual.state.join(f).to_str().unwrap().to_owned();
    let h = with_cert(&s, &p("cert.pem"), &p("key.pem"));
    assert_eq!(h.status, 200, "mutual iOS with its certificate: {h:?}");

    // A storefront certificate dies with its device: retired, it is refused.
    s.admin_ok(&["devices", "retire", &ios_off.id]);
    let (cert, key) = sf_files(&ios_off);
    let h = with_cert(&s, &cert, &key);
    assert_eq!(
        h.status, 403,
        "retired device's storefront certificate: {h:?}"
    );
    // And it never checks in: it is not the device's identity.
    let h = s.curl(&[
        "--cert",
        &sf_files(&ios_old).0,
        "--key",
        &sf_files(&ios_old).1,
        "-X",
        "POST",
        &format!("{}/api/v1/checkin", s.device_url()),
    ]);
    assert_eq!(
        (h.status, h.error_code()),
        (403, "certificate_superseded"),
        "storefront certificate used to check in: {h:?}"
    );
}
