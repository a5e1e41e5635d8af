//! Black-box tests of the app storefront (Apps@Work) through the real storefront listener
//! with curl — every row of the storefront authentication rule (iOS and Android, each
//! storefront-auth value, the global mutual-auth setting off and on, Android agents around
//! 10.2) on the password and certificate paths — and of AppConnect check-ins through the
//! real agent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

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
        uuid: st["device_uuid"].as_str().expect("device_uuid").to_owned(),
        id: st["device_id"].as_str().expect("device_id").to_owned(),
        state,
    }
}

fn storefront_url(s: &Server, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", s.ports.storefront)
}

/// GET on the storefront with the user's password for `dev`.
fn with_password(s: &Server, dev: &Dev, password: &str, path: &str) -> Http {
    s.curl(&[
        "-u",
        &format!("alice:{password}"),
        "-H",
        &format!("x-ferrocore-device-uuid: {}", dev.uuid),
        &storefront_url(s, path),
    ])
}

/// GET on the storefront with `dev`'s identity certificate.
fn with_cert(s: &Server, dev: &Dev, path: &str) -> Http {
    let p = |f: &str| dev.state.join(f).to_str().expect("utf-8").to_owned();
    s.curl(&[
        "--cert",
        &p("cert.pem"),
        "--key",
        &p("key.pem"),
        &storefront_url(s, path),
    ])
}

fn ok_list(h: &Http, platform: &str, what: &str) {
    assert_eq!(h.status, 200, "{what}: {h:?}");
    let apps = h.json.as_array().unwrap_or_else(|| panic!("{what}: {h:?}"));
    assert!(!apps.is_empty(), "{what}: {h:?}");
    assert!(
        apps.iter().all(|a| a["platform"] == platform),
        "{what}: {h:?}"
    );
}

fn refused(h: &Http, status: u16, code: &str, what: &str) {
    assert_eq!((h.status, h.error_code()), (status, code), "{what}: {h:?}");
}

fn publish(s: &Server, platform: &str, name: &str, file: &Path) -> Value {
    s.admin_ok(&[
        "apps",
        "publish",
        "--platform",
        platform,
        "--name",
        name,
        "--version",
        "1.0.0",
        "--file",
        file.to_str().expect("utf-8"),
    ])
}

#[test]
fn storefront_rule_every_row_through_the_listener() {
    let s = Server::start();
    s.add_user("alice");
    // Packages: 1.5 MB of varied bytes (more than the admin API's 1 MiB JSON limit).
    let apk = s.path("app.apk");
    let bytes: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&apk, &bytes).expect("apk");
    let ipa = s.path("app.ipa");
    std::fs::write(&ipa, b"ios package").expect("ipa");
    let android_app = publish(&s, "android", "Mail", &apk);
    let ios_app = publish(&s, "ios", "Mail", &ipa);
    assert_eq!(android_app["size"], 1_500_000);
    let mut sum = std::process::Command::new("sha256sum");
    sum.arg(&apk);
    let sum = run(sum, None);
    assert_eq!(
        sum.stdout.split_whitespace().next(),
        android_app["sha256"].as_str(),
        "{sum:?} {android_app}"
    );
    let listed = s.admin_ok(&["apps", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let dup = s.admin(&[
        "apps",
        "publish",
        "--platform",
        "android",
        "--name",
        "Mail",
        "--version",
        "1.0.0",
        "--file",
        apk.to_str().expect("utf-8"),
    ]);
    assert!(dup.stderr.contains("error: conflict:"), "{dup:?}");
    // Refused before the body is read: a small file, so the answer is not lost to a broken
    // pipe while the client is still sending.
    let bad = s.admin(&[
        "apps",
        "publish",
        "--platform",
        "windows",
        "--name",
        "X",
        "--version",
        "1",
        "--file",
        ipa.to_str().expect("utf-8"),
    ]);
    assert!(bad.stderr.contains("error: bad_request:"), "{bad:?}");

    // Global mutual auth off: legacy devices (no certificates).
    let android_legacy = register(&s, "android-legacy", "android", "11.0");
    let ios_legacy = register(&s, "ios-legacy", "ios", "11.0");
    assert_eq!(
        s.admin_ok(&["settings", "storefront-auth"])["storefront_auth"],
        "password"
    );
    // password / global off: both platforms with the password.
    ok_list(
        &with_password(&s, &android_legacy, PASSWORD, "/storefront/v1/apps"),
        "android",
        "Android pw/off",
    );
    ok_list(
        &with_password(&s, &ios_legacy, PASSWORD, "/storefront/v1/apps"),
        "ios",
        "iOS pw/off",
    );
    refused(
        &with_password(&s, &android_legacy, "wrong", "/storefront/v1/apps"),
        401,
        "invalid_credentials",
        "wrong password",
    );
    refused(
        &s.curl(&[&storefront_url(&s, "/storefront/v1/apps")]),
        401,
        "storefront_password_required",
        "no credentials",
    );
    // Download: content-length and the sha256 header match the published file.
    let pkg = format!(
        "/storefront/v1/apps/{}/package",
        android_app["id"].as_str().expect("id")
    );
    let out_file = s.path("downloaded.apk");
    let dl = s.curl(&[
        "-u",
        &format!("alice:{PASSWORD}"),
        "-H",
        &format!("x-ferrocore-device-uuid: {}", android_legacy.uuid),
        "-D",
        s.path("headers.txt").to_str().expect("utf-8"),
        "-o",
        out_file.to_str().expect("utf-8"),
        &storefront_url(&s, &pkg),
    ]);
    assert_eq!(dl.status, 200, "{dl:?}");
    assert_eq!(std::fs::read(&out_file).expect("download"), bytes);
    let headers = std::fs::read_to_string(s.path("headers.txt"))
        .expect("headers")
        .to_lowercase();
    assert!(headers.contains("content-length: 1500000"), "{headers}");
    assert!(
        headers.contains(&format!(
            "x-ferrocore-sha256: {}",
            android_app["sha256"].as_str().expect("sha")
        )),
        "{headers}"
    );
    // Wrong platform: an Android device cannot fetch the iOS package.
    let ios_pkg = format!(
        "/storefront/v1/apps/{}/package",
        ios_app["id"].as_str().expect("id")
    );
    refused(
        &with_password(&s, &android_legacy, PASSWORD, &ios_pkg),
        403,
        "app_wrong_platform",
        "wrong platform",
    );

    // certificate / global off: iOS needs a certificate (a password is refused); Android
    // still uses the password.
    s.admin_ok(&["settings", "storefront-auth", "certificate"]);
    // `settings show` lists it beside the mutual-auth setting.
    assert_eq!(
        s.admin_ok(&["settings", "show"])["storefront_auth"],
        "certificate"
    );
    refused(
        &with_password(&s, &ios_legacy, PASSWORD, "/storefront/v1/apps"),
        401,
        "client_certificate_required",
        "iOS cert/off with password",
    );
    ok_list(
        &with_password(&s, &android_legacy, PASSWORD, "/storefront/v1/apps"),
        "android",
        "Android cert/off",
    );

    // Global mutual auth on: devices registered now have identity certificates.
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let a1019 = register(&s, "a1019", "android", "10.1.9");
    let a102 = register(&s, "a102", "android", "10.2");
    let a10200 = register(&s, "a10200", "android", "10.2.0.0");
    let a11 = register(&s, "a11", "android", "11");
    let ios_m = register(&s, "ios-m", "ios", "11.0");
    // certificate / global on.
    for (dev, what) in [
        (&a102, "Android 10.2"),
        (&a10200, "Android 10.2.0.0"),
        (&a11, "Android 11"),
    ] {
        ok_list(&with_cert(&s, dev, "/storefront/v1/apps"), "android", what);
        refused(
            &with_password(&s, dev, PASSWORD, "/storefront/v1/apps"),
            401,
            "client_certificate_required",
            what,
        );
    }
    refused(
        &with_cert(&s, &a1019, "/storefront/v1/apps"),
        401,
        "storefront_password_required",
        "Android 10.1.9 with cert",
    );
    ok_list(
        &with_password(&s, &a1019, PASSWORD, "/storefront/v1/apps"),
        "android",
        "Android 10.1.9 password",
    );
    ok_list(
        &with_cert(&s, &ios_m, "/storefront/v1/apps"),
        "ios",
        "iOS cert/on",
    );
    refused(
        &with_password(&s, &ios_m, PASSWORD, "/storefront/v1/apps"),
        401,
        "client_certificate_required",
        "iOS cert/on password",
    );
    let dl = with_cert(&s, &a11, &pkg);
    assert_eq!(dl.status, 200, "{dl:?}");
    refused(
        &with_cert(&s, &a11, &ios_pkg),
        403,
        "app_wrong_platform",
        "wrong platform with cert",
    );

    // A revoked certificate is refused on the next request.
    let serial = s.device(&a11.id)["current_cert_serial"]
        .as_str()
        .expect("serial")
        .to_owned();
    s.admin_ok(&["certificates", "revoke", &serial]);
    refused(
        &with_cert(&s, &a11, "/storefront/v1/apps"),
        403,
        "certificate_revoked",
        "revoked cert",
    );

    // password / global on: everyone with the password, certificates refused.
    s.admin_ok(&["settings", "storefront-auth", "password"]);
    ok_list(
        &with_password(&s, &a102, PASSWORD, "/storefront/v1/apps"),
        "android",
        "Android 10.2 pw/on",
    );
    ok_list(
        &with_password(&s, &ios_m, PASSWORD, "/storefront/v1/apps"),
        "ios",
        "iOS pw/on",
    );
    // The storefront no longer asks for a certificate: curl's is not sent.
    refused(
        &with_cert(&s, &a102, "/storefront/v1/apps"),
        401,
        "storefront_password_required",
        "cert while password",
    );

    // Removing an app.
    let id = ios_app["id"].as_str().expect("id");
    assert_eq!(s.admin(&["apps", "remove", id]).code, 0);
    assert!(!s.data_dir.join("apps").join(id).exists());
    let again = s.admin(&["apps", "remove", id]);
    assert!(again.stderr.contains("error: not_found:"), "{again:?}");
}

#[test]
fn appconnect_checkins_with_the_device_identity() {
    let s = Server::start();
    s.add_user("alice");
    let legacy = register(&s, "legacy", "android", "11.0");
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let mutual = register(&s, "mutual", "ios", "11.0");

    let checkin =
        |dev: &Dev, app: &str| s.agent(&dev.state, &["appconnect-checkin", "--app-id", app]);
    for _ in 0..2 {
        let out = checkin(&mutual, "com.example.mail");
        assert_eq!(out.code, 0, "{out:?}\n{}", s.log());
    }
    let out = checkin(&mutual, "com.example.docs");
    assert_eq!(out.json["count"], 1, "{out:?}");
    let out = checkin(&legacy, "com.example.mail");
    assert_eq!(
        out.code,
        0,
        "legacy (secret, sync-TLS): {out:?}\n{}",
        s.log()
    );
    assert_eq!(out.json["count"], 1, "{out:?}");
    let bad = checkin(&mutual, "not an app id");
    assert!(bad.stderr.contains("invalid_app_id"), "{bad:?}");

    let shown = s.admin_ok(&["devices", "show", &mutual.id]);
    let apps = shown["appconnect"].as_array().expect("appconnect").clone();
    assert_eq!(apps.len(), 2, "{shown}");
    assert_eq!(apps[0]["app_id"], "com.example.docs");
    assert_eq!(apps[1]["app_id"], "com.example.mail");
    assert_eq!(apps[1]["count"], 2);
    assert!(apps[1]["last_checkin_at"].as_i64().is_some());
    let shown = s.admin_ok(&["devices", "show", &legacy.id]);
    assert_eq!(shown["appconnect"][0]["count"], 1, "{shown}");

    // Without a credential, and a legacy secret on the device listener: refused.
    let url = format!("{}/api/v1/appconnect/checkin", s.device_url());
    let body = r#"{"app_id":"com.example.mail"}"#;
    let h = s.curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data-binary",
        body,
        &url,
    ]);
    assert_eq!(h.error_code(), "client_certificate_required", "{h:?}");
    let secret = std::fs::read_to_string(legacy.state.join("secret")).expect("secret");
    let h = s.curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-H",
        &format!(
            "x-ferrocore-device-secret: {}:{}",
            legacy.uuid,
            secret.trim()
        ),
        "--data-binary",
        body,
        &url,
    ]);
    assert_eq!(h.error_code(), "wrong_listener", "{h:?}");
    // A revoked certificate: refused.
    let serial = s.device(&mutual.id)["current_cert_serial"]
        .as_str()
        .expect("serial")
        .to_owned();
    s.admin_ok(&["certificates", "revoke", &serial]);
    let out = checkin(&mutual, "com.example.mail");
    assert!(out.stderr.contains("certificate_revoked"), "{out:?}");
}
