//! Black-box: an external SCEP CA as an enrollment configuration ("decentralized"), against
//! the real micromdm `scepserver` (Debian package `scep`).
//!
//! `scepserver` binds every interface, so the whole scenario (scepserver, ferrocore, agent,
//! admin CLI, openssl) runs in a loopback-only network namespace: the test re-executes its
//! own binary under `unshare -n` (needs CAP_SYS_ADMIN, as the CI machine has) and the inner
//! run does the work. Leaving the namespace ends everything in it; the test also stops what
//! it started.
//!
//! Scenario: a wrong CA fingerprint and an unreachable CA are refused at creation; a
//! configuration whose challenge the CA refuses makes registration fail with
//! `external_ca_refused` and records nothing; with the right one, an agent registers
//! (it asks for the CSR attributes, makes an RSA key and a CSR with the challenge), gets a
//! certificate issued by the scepserver CA, checks in over mutual TLS, renews through the CA
//! (30-day certificates are inside the renewal window) and a legacy device migrates through
//! it; the configuration survives a restart; retiring the device refuses its next check-in;
//! with scepserver down registration fails with `external_ca_unreachable` and nothing is
//! recorded. An EC CSR without the challenge is refused (`csr_attributes_required`) before
//! the CA is asked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, clean_command, mode_of, openssl_ok, run, terminate};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INNER: &str = "FERROCORE_EXTCA_E2E_INNER";
const CHALLENGE: &str = "secret";

#[test]
fn external_scep_ca_enrollment_configuration() {
    if std::env::var_os(INNER).is_some() {
        scenario();
        return;
    }
    // Re-run exactly this test inside a new network namespace with only loopback up.
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args([
            "external_scep_ca_enrollment_configuration",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER, "1");
    let out = cmd.output().expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the scenario failed inside `unshare -n` (root or CAP_SYS_ADMIN needed):\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the inner run did not run the scenario:\n{stdout}\n{stderr}"
    );
}

/// A running `scepserver`, stopped on drop.
struct ScepServer {
    child: Option<Child>,
    port: u16,
    log: std::path::PathBuf,
}

impl ScepServer {
    fn start(depot: &Path, log: &Path) -> ScepServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("scepserver")
            .arg("-depot")
            .arg(depot)
            .args(["-port", &port.to_string(), "-challenge", CHALLENGE])
            // 30-day certificates: inside the default 60-day renewal window at once.
            .args(["-allowrenew", "0", "-crtvalid", "30"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
            .spawn()
            .expect("spawn scepserver (apt-get install scep)");
        let s = ScepServer {
            child: Some(child),
            port,
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "scepserver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/scep", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ScepServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn refused(out: &common::Out, code: &str) {
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains(code), "expected {code}: {}", out.stderr);
}

fn scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let depot = tmp.path().join("depot");
    let init = run(
        {
            let mut c = clean_command("scepserver");
            c.args(["ca", "-init", "-depot"])
                .arg(&depot)
                .args(["-keySize", "2048"]);
            c
        },
        None,
    );
    assert_eq!(init.code, 0, "scepserver ca -init: {init:?}");
    let ca_pem = depot.join("ca.pem");
    // The administrator's fingerprint comes from openssl, not from Ferrocore.
    let fp = openssl_ok(
        tmp.path(),
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            ca_pem.to_str().unwrap(),
        ],
    )
    .stdout;
    let fingerprint = fp.trim().rsplit('=').next().unwrap().to_owned();
    assert_eq!(fingerprint.len(), 95, "{fp}");
    let mut scep = ScepServer::start(&depot, &tmp.path().join("scepserver.log"));

    let mut s = Server::start();
    s.add_user("alice");
    // A legacy device (registered before mutual authentication) migrates later.
    let legacy = tmp.path().join("legacy");
    let legacy_id = s.register_ok(&legacy, "alice", "android", "agent", "10.1.0")["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let url = scep.url();
    let add = |name: &str, url: &str, challenge: &str, fp: &str| {
        s.admin(&[
            "enrollment",
            "add-scep",
            name,
            "--url",
            url,
            "--challenge",
            challenge,
            "--ca-fingerprint",
            fp,
        ])
    };

    // Refused at creation, nothing written: a wrong fingerprint, an unreachable CA.
    let wrong_fp = fingerprint.replace(&fingerprint[..2], "00");
    let out = add("ext", &url, CHALLENGE, &wrong_fp);
    refused(&out, "ca_fingerprint_mismatch");
    assert!(
        out.stderr
            .contains(&fingerprint.replace(':', "").to_lowercase()[..16])
    );
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}/scep", closed.local_addr().unwrap());
    drop(closed);
    refused(
        &add("ext", &closed_url, CHALLENGE, &fingerprint),
        "external_ca_unreachable",
    );
    refused(
        &add("ext", "https://127.0.0.1:1/scep", CHALLENGE, &fingerprint),
        "bad_request",
    );
    assert_eq!(
        s.admin_ok(&["enrollment", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(!s.data_dir.join("ca").join("ext").exists());

    // A configuration whose challenge the CA refuses, and the right one.
    let bad = s.admin_ok(&[
        "enrollment",
        "add-scep",
        "ext-bad",
        "--url",
        &url,
        "--challenge",
        "not-the-secret",
        "--ca-fingerprint",
        &fingerprint,
    ]);
    assert_eq!(bad["kind"], "scep", "{bad}");
    let created = add("ext", &url, CHALLENGE, &fingerprint);
    assert_eq!(created.code, 0, "{created:?}\n{}", s.log());
    let created = created.json;
    assert_eq!(created["kind"], "scep", "{created}");
    assert_eq!(created["url"], url.as_str());
    assert_eq!(
        created["ca_sha256"],
        fingerprint.replace(':', "").to_lowercase()
    );
    assert!(
        created["caps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "POSTPKIOperation")
    );
    let listed = s.admin(&["enrollment", "list"]);
    assert!(
        !listed.stdout.contains(CHALLENGE),
        "challenge shown: {}",
        listed.stdout
    );
    let dir = s.data_dir.join("ca").join("ext");
    assert_eq!(mode_of(&dir.join("ra.key")), 0o600);
    assert_eq!(mode_of(&dir.join("challenge")), 0o600);

    // The CA refuses the request (wrong challenge): a clear error, nothing recorded.
    s.admin_ok(&["enrollment", "select", "ext-bad", "--confirm"]);
    let phone = tmp.path().join("phone");
    let out = s.register(&phone, "alice", "android", "agent", "10.1.0");
    refused(&out, "external_ca_refused");
    assert_eq!(s.device_total(), 1);
    assert_eq!(
        s.admin_ok(&["certificates", "list"])["total"],
        0,
        "{}",
        s.log()
    );

    // Selected like a local configuration (dry run, then confirm).
    let dry = s.admin_ok(&["enrollment", "select", "ext"]);
    assert_eq!(dry["applied"], false, "{dry}");
    s.admin_ok(&["enrollment", "select", "ext", "--confirm"]);

    // An EC CSR without the challenge (openssl-made) is refused before the CA is asked; the
    // CSR attributes are told to an authenticated user only.
    let uuid = "0f3c2a8e-5b1d-4c7e-9a2f-6d8e1b4c3a21";
    openssl_ok(
        tmp.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ec.key",
            "-out",
            "ec.csr",
            "-subj",
            &format!("/CN={uuid}"),
        ],
    );
    let csr = std::fs::read_to_string(tmp.path().join("ec.csr")).unwrap();
    let body = serde_json::json!({
        "username": "alice", "password": common::PASSWORD, "platform": "android",
        "client_kind": "agent", "client_version": "10.1.0", "device_uuid": uuid, "csr_pem": csr,
    });
    let r = s.curl_register(&body.to_string());
    assert_eq!(
        (r.status, r.error_code()),
        (409, "csr_attributes_required"),
        "{r:?}"
    );
    assert!(!r.body.contains(CHALLENGE), "{}", r.body);
    let attrs_url = format!("{}/api/v1/csr-attributes", s.device_url());
    let ask = |password: &str| {
        let body = serde_json::json!({"username": "alice", "password": password});
        s.curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            &body.to_string(),
            &attrs_url,
        ])
    };
    let r = ask("wrong-password");
    assert_eq!(
        (r.status, r.error_code()),
        (401, "invalid_credentials"),
        "{r:?}"
    );
    let r = ask(common::PASSWORD);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["key"], "rsa-2048", "{r:?}");
    assert_eq!(r.json["challenge_password"], CHALLENGE, "{r:?}");
    assert_eq!(s.device_total(), 1);

    // An agent registers: its certificate comes from the scepserver CA.
    let reg = s.register_ok(&phone, "alice", "android", "agent", "10.1.0");
    let device_id = reg["device_id"].as_str().unwrap().to_owned();
    assert_eq!(reg["mode"], "mutual", "{reg}");
    let cert = phone.join("cert.pem");
    let issuer = openssl_ok(
        tmp.path(),
        &["x509", "-noout", "-issuer", "-in", cert.to_str().unwrap()],
    )
    .stdout;
    assert!(issuer.contains("scep-ca"), "{issuer}");
    let verify = openssl_ok(
        tmp.path(),
        &[
            "verify",
            "-CAfile",
            ca_pem.to_str().unwrap(),
            cert.to_str().unwrap(),
        ],
    );
    assert!(verify.stdout.contains("OK"), "{verify:?}");
    let key_text = openssl_ok(
        tmp.path(),
        &[
            "pkey",
            "-noout",
            "-text",
            "-in",
            phone.join("key.pem").to_str().unwrap(),
        ],
    )
    .stdout;
    assert!(key_text.contains("2048 bit"), "device key: {key_text}");
    // Recorded like any other certificate, against the device.
    let serial = openssl_ok(
        tmp.path(),
        &["x509", "-noout", "-serial", "-in", cert.to_str().unwrap()],
    )
    .stdout;
    let serial = serial.trim().trim_start_matches("serial=").to_lowercase();
    let certs = s.admin_ok(&["certificates", "list", "--device", &device_id]);
    assert_eq!(certs["total"], 1, "{certs}");
    let rec = &certs["items"][0];
    assert_eq!(
        rec["serial"].as_str().unwrap().trim_start_matches('0'),
        serial.trim_start_matches('0'),
        "{rec}"
    );
    assert_eq!(rec["enrollment_config"], "ext", "{rec}");
    assert_eq!(s.device(&device_id)["enrollment_config"], "ext");

    // Mutual TLS with the external CA's certificate. It is inside the renewal window, so the
    // check-in tells the agent to renew: the new certificate comes from the external CA too
    // (the agent asks the CSR attributes with its certificate and sends an RSA CSR).
    let c = s.checkin_ok(&phone);
    assert_eq!(c["mode"], "mutual", "{c}");
    assert!(
        c["actions"].to_string().contains("renew"),
        "no renewal asked: {c}"
    );
    let renewed = openssl_ok(
        tmp.path(),
        &[
            "x509",
            "-noout",
            "-serial",
            "-issuer",
            "-in",
            cert.to_str().unwrap(),
        ],
    )
    .stdout
    .to_lowercase();
    assert!(
        !renewed.contains(&format!("serial={serial}\n")),
        "not renewed: {renewed}"
    );
    assert!(renewed.contains("scep-ca"), "{renewed}");
    let certs = s.admin_ok(&["certificates", "list", "--device", &device_id]);
    assert_eq!(certs["total"], 2, "{certs}");
    assert!(
        certs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["issue_reason"] == "renewal" && c["enrollment_config"] == "ext"),
        "{certs}"
    );
    // With a 1-day window the new certificate is not due; checking in with it retires the
    // old one (superseded).
    s.admin_ok(&["policies", "set", "default", "--renewal-window-days", "1"]);
    let c = s.checkin_ok(&phone);
    assert_eq!(c["actions"], serde_json::json!([]), "{c}");
    let certs = s.admin_ok(&["certificates", "list", "--device", &device_id]);
    assert!(
        certs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "revoked" && c["issue_reason"] == "registration"),
        "{certs}"
    );

    // Migration of the legacy device goes through the external CA as well (the agent asks
    // the CSR attributes with its device secret).
    s.admin_ok(&["policies", "set", "default", "--migrate-client", "true"]);
    let out = s.checkin(&legacy);
    assert_eq!(out.code, 0, "{out:?}\n{}", s.log());
    assert_eq!(out.json["actions"][0]["type"], "migrate", "{}", out.stdout);
    let migrated = openssl_ok(
        tmp.path(),
        &[
            "x509",
            "-noout",
            "-issuer",
            "-in",
            legacy.join("cert.pem").to_str().unwrap(),
        ],
    )
    .stdout;
    assert!(migrated.contains("scep-ca"), "{migrated}");
    assert_eq!(s.checkin_ok(&legacy)["mode"], "mutual");
    assert_eq!(s.device(&legacy_id)["migration_status"], "success");
    assert_eq!(s.device(&legacy_id)["enrollment_config"], "ext");

    s.restart();
    let listed = s.admin_ok(&["enrollment", "list"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "ext" && c["selected"] == true && c["kind"] == "scep"),
        "{listed}"
    );
    s.checkin_ok(&phone);

    // Revocation is Ferrocore's own: a retired device's next check-in is refused.
    s.admin_ok(&["devices", "retire", &device_id]);
    refused(&s.checkin(&phone), "device_retired");

    // The CA is down: registration fails clearly and records nothing.
    scep.stop();
    let before = s.device_total();
    let tablet = tmp.path().join("tablet");
    let out = s.register(&tablet, "alice", "android", "agent", "10.1.0");
    refused(&out, "external_ca_unreachable");
    assert_eq!(s.device_total(), before);
    assert_eq!(s.admin_ok(&["certificates", "list"])["total"], 3);
    assert!(!tablet.join("cert.pem").exists());
    let _ = scep.log();
}
