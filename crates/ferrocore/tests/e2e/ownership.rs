//! A device belongs to its user on every path (issue 19.1), black-box: a second user (bob)
//! naming the first user's (alice's) device — by UUID on registration, EST (CSR subject and
//! token), SCEP (challenge), the storefront; by CSR subject on renewal; with his own device
//! secret on migration and AppConnect — is refused, and alice's device, certificate and
//! owner are untouched and it keeps checking in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::scep;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

const OWNED: &str = "device_of_another_user";

struct Dev {
    state: PathBuf,
    uuid: String,
    id: String,
}

fn register(s: &Server, user: &str, name: &str, platform: &str, version: &str) -> Dev {
    let state = s.path(name);
    s.register_ok(&state, user, platform, "agent", version);
    let st = agent_state(&state);
    Dev {
        uuid: st["device_uuid"].as_str().expect("device_uuid").to_owned(),
        id: st["device_id"].as_str().expect("device_id").to_owned(),
        state,
    }
}

/// What must not change on alice's device: owner, identity, certificates.
fn snapshot(s: &Server, dev: &Dev) -> Value {
    let d = s.device(&dev.id);
    let certs = s.admin_ok(&["certificates", "list", "--device", &dev.id]);
    serde_json::json!({
        "username": d["username"],
        "device_uuid": d["device_uuid"],
        "current_cert_serial": d["current_cert_serial"],
        "mode": d["mode"],
        "status": d["status"],
        "certificates": certs["items"].as_array().unwrap().iter()
            .map(|c| (c["serial"].clone(), c["status"].clone())).collect::<Vec<_>>(),
    })
}

/// Alice's device is as it was, and keeps checking in (which may renew its certificate:
/// the snapshot then moves on).
fn assert_untouched(s: &Server, dev: &Dev, before: &mut Value, path: &str) {
    assert_eq!(&snapshot(s, dev), before, "{path}: alice's device changed");
    let c = s.checkin_ok(&dev.state);
    assert_eq!(c["device_id"], dev.id.as_str(), "{path}: {c}");
    *before = snapshot(s, dev);
}

/// A P-256 key and a PEM CSR with subject CN=`cn` (openssl).
fn csr_pem(dir: &Path, name: &str, cn: &str) -> String {
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
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={cn}/serialNumber={cn}"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    fs::read_to_string(dir.join(format!("{name}.csr"))).unwrap()
}

/// The base64 DER body of an EST request for a CSR with subject CN=`cn`.
fn est_body(dir: &Path, name: &str, cn: &str) -> PathBuf {
    csr_pem(dir, name, cn);
    openssl_ok(
        dir,
        &[
            "req",
            "-in",
            &format!("{name}.csr"),
            "-outform",
            "DER",
            "-out",
            &format!("{name}.der"),
        ],
    );
    let b64 = openssl_ok(dir, &["base64", "-in", &format!("{name}.der")]).stdout;
    let body = dir.join(format!("{name}.b64"));
    fs::write(&body, b64).unwrap();
    body
}

fn est_enroll(s: &Server, body: &Path, auth: &[&str]) -> Http {
    let data = format!("@{}", body.display());
    let url = format!("{}/.well-known/est/simpleenroll", s.device_url());
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        &data,
    ];
    args.extend_from_slice(auth);
    args.push(&url);
    s.curl(&args)
}

#[test]
fn a_second_user_naming_the_first_users_device_is_refused_on_every_path() {
    let s = Server::start();
    s.add_user("alice");
    s.add_user("bob");
    let dir = s.path("");
    // Certificates valid 30 days are inside the renewal window at once.
    s.admin_ok(&["policies", "set", "default", "--cert-lifetime-days", "30"]);
    // A legacy device of bob's (for the paths a device secret opens), registered while
    // mutual authentication is off; then alice's mutual device, and one of bob's.
    let bob_legacy = register(&s, "bob", "bob-legacy", "android", "10.1.0");
    let alice_legacy = register(&s, "alice", "alice-legacy", "android", "10.1.0");
    let mut before_legacy = snapshot(&s, &alice_legacy);
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let alice = register(&s, "alice", "alice-phone", "android", "10.1.0");
    let bob = register(&s, "bob", "bob-phone", "android", "10.1.0");
    let mut before = snapshot(&s, &alice);
    assert_eq!(before["username"], "alice");

    // Registration naming alice's device UUID.
    let body = serde_json::json!({
        "username": "bob", "password": PASSWORD, "device_uuid": alice.uuid,
        "platform": "android", "client_kind": "agent", "client_version": "10.1.0",
        "csr_pem": csr_pem(&dir, "reg", "bob-reg"),
    });
    let h = s.curl_register(&body.to_string());
    assert_eq!(
        (h.status, h.error_code()),
        (403, OWNED),
        "registration: {h:?}"
    );
    assert_untouched(&s, &alice, &mut before, "registration");

    // EST with HTTP Basic, the CSR subject naming alice's device.
    let est = est_body(&dir, "est", &alice.uuid);
    let h = est_enroll(&s, &est, &["-u", &format!("bob:{PASSWORD}")]);
    assert_eq!((h.status, h.error_code()), (403, OWNED), "EST: {h:?}");
    assert_untouched(&s, &alice, &mut before, "EST Basic");

    // EST token and SCEP challenge bound to alice's device: refused when created.
    for kind in ["est-token", "scep-challenge"] {
        let out = s.admin(&[
            kind,
            "create",
            "--user",
            "bob",
            "--platform",
            "android",
            "--device-uuid",
            &alice.uuid,
        ]);
        assert_eq!(out.code, 2, "{kind}: {out:?}");
        assert!(out.stderr.contains(OWNED), "{kind}: {out:?}");
    }
    // A SCEP challenge for bob made before the device it names was registered by alice:
    // refused at enrollment (FAILURE), nothing written.
    let later_uuid = "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    let c = s.admin_ok(&[
        "scep-challenge",
        "create",
        "--user",
        "bob",
        "--platform",
        "android",
        "--device-uuid",
        later_uuid,
    ]);
    let t = s.admin_ok(&[
        "est-token",
        "create",
        "--user",
        "bob",
        "--platform",
        "android",
        "--device-uuid",
        later_uuid,
    ]);
    let alice2 = s.path("alice-2");
    let out = s.agent(
        &alice2,
        &[
            "register",
            "--url",
            &s.device_url(),
            "--ca",
            s.ca_pem().to_str().unwrap(),
            "--user",
            "alice",
            "--password",
            PASSWORD,
            "--platform",
            "android",
            "--client-kind",
            "agent",
            "--client-version",
            "10.1.0",
            "--device-uuid",
            later_uuid,
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let alice2 = Dev {
        id: agent_state(&alice2)["device_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        uuid: later_uuid.to_owned(),
        state: alice2,
    };
    let mut before2 = snapshot(&s, &alice2);
    let total = s.device_total();
    let out = scep::scepclient(&s, &s.path("bob-scep"), c["challenge"].as_str());
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("badRequest"), "SCEP: {out:?}");
    assert!(s.log().contains(OWNED), "SCEP refusal logged with its code");
    assert_eq!(s.device_total(), total);
    assert_untouched(&s, &alice2, &mut before2, "SCEP");
    let est2 = est_body(&dir, "est2", "bob-token-device");
    let token = t["token"].as_str().unwrap();
    let h = est_enroll(
        &s,
        &est2,
        &["-H", &format!("Authorization: Bearer {token}")],
    );
    assert_eq!((h.status, h.error_code()), (403, OWNED), "EST token: {h:?}");
    assert_untouched(&s, &alice2, &mut before2, "EST token");

    // The storefront with bob's password naming alice's device.
    let h = s.curl(&[
        "-u",
        &format!("bob:{PASSWORD}"),
        "-H",
        &format!("x-ferrocore-device-uuid: {}", alice.uuid),
        &format!(
            "https://127.0.0.1:{}/storefront/v1/apps",
            s.ports.storefront
        ),
    ]);
    assert_eq!(
        (h.status, h.error_code()),
        (403, OWNED),
        "storefront: {h:?}"
    );
    assert_untouched(&s, &alice, &mut before, "storefront");

    // Renewal with bob's certificate and a CSR naming alice's device: bob's device is
    // renewed (the subject comes from the device record), alice's is untouched.
    let p = |d: &Dev, f: &str| d.state.join(f).to_str().unwrap().to_owned();
    let renew_body = serde_json::json!({ "csr_pem": csr_pem(&dir, "renew", &alice.uuid) });
    let h = s.curl(&[
        "--cert",
        &p(&bob, "cert.pem"),
        "--key",
        &p(&bob, "key.pem"),
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data-binary",
        &renew_body.to_string(),
        &format!("{}/api/v1/renew", s.device_url()),
    ]);
    assert_eq!(h.status, 200, "renewal: {h:?}");
    let certs = s.admin_ok(&["certificates", "list", "--device", &bob.id]);
    let last = certs["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["issue_reason"], "renewal", "{last}");
    assert!(last["subject"].as_str().unwrap().contains("bob"), "{last}");
    assert_untouched(&s, &alice, &mut before, "renewal");

    // Migration and AppConnect with bob's device secret naming alice's legacy device: the
    // secret is not alice's, so the credential fails; nothing changes.
    let secret = fs::read_to_string(bob_legacy.state.join("secret")).unwrap();
    let header = format!(
        "x-ferrocore-device-secret: {}:{}",
        alice_legacy.uuid,
        secret.trim()
    );
    let migrate_body = serde_json::json!({ "csr_pem": csr_pem(&dir, "mig", "bob-mig") });
    for (url, body) in [
        (
            format!("{}/api/v1/migrate", s.device_url()),
            migrate_body.to_string(),
        ),
        (
            format!("{}/api/v1/appconnect/checkin", s.sync_url()),
            r#"{"app_id":"com.example.mail"}"#.to_owned(),
        ),
    ] {
        let h = s.curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-H",
            &header,
            "--data-binary",
            &body,
            &url,
        ]);
        assert_eq!(
            (h.status, h.error_code()),
            (401, "invalid_credentials"),
            "{url}: {h:?}"
        );
        assert_untouched(&s, &alice_legacy, &mut before_legacy, &url);
    }
    // Bob's own devices were not affected either.
    s.checkin_ok(&bob_legacy.state);
    s.checkin_ok(&bob.state);
}
