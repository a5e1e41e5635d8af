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
//! the CA is asked, by registration, EST simpleenroll (curl) and SCEP (micromdm's
//! `scepclient` with a Ferrocore challenge: badRequest, the challenge stays unused).
//!
//! Second scenario (`external_intermediate_ca_over_https`): scepserver's depot CA is an
//! intermediate issued by an openssl-made root, and scepserver sits behind nginx (TLS, server
//! certificate for `localhost` from a throw-away openssl CA). Refused at creation: no bundle
//! (system roots), the bundle but an IP URL the certificate does not name (both
//! `external_ca_tls_untrusted`), the root's fingerprint (`ca_fingerprint_mismatch`: the
//! issuing intermediate is pinned). Then an agent registers and checks in over mutual TLS with
//! the intermediate's certificate (openssl verifies it up to the root), Ferrocore's OCSP
//! answers `unknown` for it (not Ferrocore's CA), retiring refuses the next check-in, and
//! when nginx comes back with a certificate from another CA registration is
//! `external_ca_tls_untrusted` and nothing is recorded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::x509;

use common::{Out, Server, clean_command, free_port, mode_of, openssl, openssl_ok, run, terminate};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHALLENGE: &str = "secret";

#[test]
fn external_scep_ca_enrollment_configuration() {
    common::in_namespace("extca::external_scep_ca_enrollment_configuration", scenario);
}

#[test]
fn external_intermediate_ca_over_https() {
    common::in_namespace(
        "extca::external_intermediate_ca_over_https",
        https_intermediate_scenario,
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
        Self::start_with(depot, log, &[])
    }

    fn start_with(depot: &Path, log: &Path, extra: &[&str]) -> ScepServer {
        let port = free_port();
        let child = Command::new("scepserver")
            .arg("-depot")
            .arg(depot)
            .args(["-port", &port.to_string(), "-challenge", CHALLENGE])
            // 30-day certificates: inside the default 60-day renewal window at once.
            .args(["-allowrenew", "0", "-crtvalid", "30"])
            .args(extra)
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

/// micromdm's scepclient against Ferrocore's `/scep`, encrypting to the RA certificate.
fn scepclient(s: &Server, dir: &Path, challenge: &str) -> common::Out {
    std::fs::create_dir_all(dir).unwrap();
    let ra = s.data_dir.join("scep").join("ra.pem");
    openssl_ok(
        dir,
        &[
            "x509",
            "-in",
            ra.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            "ra.der",
        ],
    );
    let mut sum = Command::new("sha256sum");
    sum.arg(dir.join("ra.der"));
    let fp = run(sum, None);
    let mut cmd = clean_command("scepclient");
    cmd.env("SSL_CERT_FILE", s.ca_pem())
        .arg("-server-url")
        .arg(format!("{}/scep", s.device_url()))
        .arg("-private-key")
        .arg(dir.join("key.pem"))
        .arg("-certificate")
        .arg(dir.join("cert.pem"))
        .args(["-cn", "scep-device", "-ca-fingerprint"])
        .arg(fp.stdout.split_whitespace().next().unwrap())
        .args(["-challenge", challenge]);
    run(cmd, None)
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
        &add("ext", "ftp://127.0.0.1:1/scep", CHALLENGE, &fingerprint),
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
    common::x509::p256_csr(tmp.path(), "ec.key", "ec.csr", &format!("/CN={uuid}"), &[]);
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

    // EST simpleenroll (curl) and SCEP PKCSReq (micromdm's scepclient, a Ferrocore one-time
    // challenge) are checked against the same requirements before the CA is asked: EST says
    // `csr_attributes_required` (before: the CA's refusal, 502 `external_ca_refused`), SCEP
    // answers badRequest with that code in the log; nothing is recorded, the challenge unused.
    openssl_ok(
        tmp.path(),
        &[
            "req",
            "-in",
            "ec.csr",
            "-outform",
            "DER",
            "-out",
            "ec.csr.der",
        ],
    );
    let est_body = common::x509::est_body(tmp.path(), "ec.csr.der");
    let r = s.curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        &format!("@{}", est_body.display()),
        "-u",
        &format!("alice:{}", common::PASSWORD),
        &format!("{}/.well-known/est/simpleenroll", s.device_url()),
    ]);
    assert_eq!(
        (r.status, r.error_code()),
        (409, "csr_attributes_required"),
        "{r:?}\n{}",
        s.log()
    );
    let grant = s.admin_ok(&[
        "scep-challenge",
        "create",
        "--user",
        "alice",
        "--platform",
        "ios",
    ]);
    let log_before = s.log().len();
    let out = scepclient(
        &s,
        &tmp.path().join("scep-dev"),
        grant["challenge"].as_str().unwrap(),
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("badRequest"), "{out:?}");
    let log = s.log();
    let scep_log = &log[log_before..];
    assert!(
        scep_log.contains("SCEP request refused") && scep_log.contains("csr_attributes_required"),
        "{scep_log}"
    );
    let grants = s.admin_ok(&["grant", "list"]);
    let g = grants["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == grant["id"])
        .unwrap_or_else(|| panic!("{grants}"));
    assert_eq!(g["state"], "active", "challenge unused: {g}");
    assert_eq!(s.device_total(), 1);
    assert_eq!(s.admin_ok(&["certificates", "list"])["total"], 0);

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

/// A running nginx terminating TLS in front of `upstream` (plain HTTP), every path under
/// `dir`, stopped on drop.
struct Nginx {
    child: Option<Child>,
}

impl Nginx {
    fn start(dir: &Path, port: u16, upstream: u16, cert: &Path, key: &Path) -> Nginx {
        let d = dir.display();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let conf = format!(
            "worker_processes 1;\nmaster_process off;\ndaemon off;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n\
             access_log off;\nclient_body_temp_path {d}/tmp;\nproxy_temp_path {d}/tmp;\n\
             fastcgi_temp_path {d}/tmp;\nuwsgi_temp_path {d}/tmp;\nscgi_temp_path {d}/tmp;\n\
             server {{\nlisten 127.0.0.1:{port} ssl;\nserver_name localhost;\n\
             ssl_certificate {};\nssl_certificate_key {};\n\
             location / {{ proxy_pass http://127.0.0.1:{upstream}; }}\n}}\n}}\n",
            cert.display(),
            key.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx (apt-get install nginx)");
        let n = Nginx { child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        n
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A throw-away TLS CA `NAME-ca.pem` and a server certificate `NAME.pem` / `NAME.key` for
/// `localhost` (DNS name only) it issued, made with openssl in `dir`.
fn tls_server_cert(dir: &Path, name: &str) {
    let ca = format!("{name}-ca");
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    x509::p256_self_signed(
        dir,
        &ca_key,
        &ca_pem,
        &format!("/CN={name} TLS CA"),
        30,
        &[],
    );
    std::fs::write(
        dir.join("server.cnf"),
        "[srv]\nbasicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let csr = format!("{name}.csr");
    x509::p256_csr(dir, &format!("{name}.key"), &csr, "/CN=localhost", &[]);
    x509::sign_csr(
        dir,
        &csr,
        (&ca_pem, &ca_key),
        &format!("{name}.pem"),
        30,
        "server.cnf",
        Some("srv"),
    );
}

fn sha256_fingerprint(dir: &Path, pem: &Path) -> String {
    let fp = openssl_ok(
        dir,
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            pem.to_str().unwrap(),
        ],
    )
    .stdout;
    fp.trim().rsplit('=').next().unwrap().to_owned()
}

fn https_intermediate_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The external CA's PKI, all openssl: a root, an intermediate (PKCS#1 RSA key, as
    // scepserver's file depot reads `ca.key`) that becomes scepserver's depot CA.
    openssl_ok(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "60",
            "-subj",
            "/O=scep-root/CN=External Root",
        ],
    );
    openssl_ok(dir, &["genrsa", "-traditional", "-out", "int.key", "2048"]);
    openssl_ok(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "int.key",
            "-out",
            "int.csr",
            "-subj",
            "/O=scep-ca/CN=External Intermediate",
        ],
    );
    std::fs::write(
        dir.join("int.cnf"),
        "[int]\nbasicConstraints=critical,CA:TRUE,pathlen:0\n\
         keyUsage=critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    openssl_ok(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-set_serial",
            "2",
            "-days",
            "60",
            "-extfile",
            "int.cnf",
            "-extensions",
            "int",
            "-out",
            "int.pem",
        ],
    );
    let depot = dir.join("depot");
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
    // The file depot reads the first certificate of `ca.pem` and a PEM-encrypted PKCS#1 key
    // (`-capass`; `ca -init` encrypts with an empty password).
    std::fs::copy(dir.join("int.pem"), depot.join("ca.pem")).unwrap();
    openssl_ok(
        dir,
        &[
            "rsa",
            "-in",
            "int.key",
            "-traditional",
            "-aes256",
            "-passout",
            "pass:depot-pass",
            "-out",
            depot.join("ca.key").to_str().unwrap(),
        ],
    );
    let int_fp = sha256_fingerprint(dir, &dir.join("int.pem"));
    let root_fp = sha256_fingerprint(dir, &dir.join("root.pem"));

    let scep = ScepServer::start_with(
        &depot,
        &dir.join("scepserver.log"),
        &["-capass", "depot-pass"],
    );
    tls_server_cert(dir, "tls");
    tls_server_cert(dir, "rogue");
    let port = free_port();
    let mut nginx = Nginx::start(
        &dir.join("nginx"),
        port,
        scep.port,
        &dir.join("tls.pem"),
        &dir.join("tls.key"),
    );
    let url = format!("https://localhost:{port}/scep");
    let ip_url = format!("https://127.0.0.1:{port}/scep");
    let bundle = dir.join("tls-ca.pem");

    let pki_port = free_port();
    let pki = format!("127.0.0.1:{pki_port}");
    let s = Server::start_with_env(&[("FERROCORE_LISTENERS_PKI", &pki)]);
    s.add_user("alice");
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let add = |url: &str, fp: &str, bundle: Option<&Path>| {
        let mut args = vec![
            "enrollment",
            "add-scep",
            "ext",
            "--url",
            url,
            "--challenge",
            CHALLENGE,
            "--ca-fingerprint",
            fp,
        ];
        if let Some(b) = bundle {
            args.extend(["--tls-ca-bundle", b.to_str().unwrap()]);
        }
        s.admin(&args)
    };

    // Refused at creation, nothing written.
    let out = add(&url, &int_fp, None);
    refused(&out, "external_ca_tls_untrusted");
    let out = add(&ip_url, &int_fp, Some(&bundle));
    refused(&out, "external_ca_tls_untrusted");
    let out = add(&url, &root_fp, Some(&bundle));
    refused(&out, "ca_fingerprint_mismatch");
    // The mismatch names the intermediate, the CA to pin.
    assert!(
        out.stderr.contains(&int_fp.replace(':', "").to_lowercase()),
        "{out:?}"
    );
    assert!(!s.data_dir.join("ca").join("ext").exists());

    let created = add(&url, &int_fp, Some(&bundle));
    assert_eq!(created.code, 0, "{created:?}\n{}", s.log());
    assert_eq!(created.json["url"], url.as_str(), "{:?}", created.json);
    assert_eq!(
        created.json["ca_sha256"],
        int_fp.replace(':', "").to_lowercase()
    );
    s.admin_ok(&["enrollment", "select", "ext", "--confirm"]);

    // Registration and a mutual-TLS check-in with the intermediate's certificate.
    let phone = dir.join("phone");
    let reg = s.register_ok(&phone, "alice", "android", "agent", "10.1.0");
    let device_id = reg["device_id"].as_str().unwrap().to_owned();
    assert_eq!(reg["mode"], "mutual", "{reg}");
    let c = s.checkin_ok(&phone);
    assert_eq!(c["mode"], "mutual", "{c}");
    let cert = phone.join("cert.pem");
    let issuer = openssl_ok(
        dir,
        &["x509", "-noout", "-issuer", "-in", cert.to_str().unwrap()],
    )
    .stdout;
    assert!(issuer.contains("External Intermediate"), "{issuer}");
    let verify = openssl_ok(
        dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "int.pem",
            cert.to_str().unwrap(),
        ],
    );
    assert!(verify.stdout.contains("OK"), "{verify:?}");
    assert_eq!(
        s.admin_ok(&["certificates", "list", "--device", &device_id])["items"][0]["enrollment_config"],
        "ext"
    );

    // Ferrocore's OCSP responder is not authoritative for another CA's certificates: the
    // unsigned RFC 6960 `unauthorized` response, not a signed answer nobody can verify.
    let ocsp = |cert: &Path| {
        openssl(
            dir,
            &[
                "ocsp",
                "-issuer",
                "int.pem",
                "-cert",
                cert.to_str().unwrap(),
                "-url",
                &format!("http://{pki}/ocsp"),
                "-timeout",
                "20",
            ],
        )
    };
    let unauthorized = |o: &Out| {
        let t = format!("{}{}", o.stdout, o.stderr);
        assert!(t.contains("Responder Error: unauthorized (6)"), "{o:?}");
        assert!(!t.contains(": unknown") && !t.contains(": good"), "{o:?}");
    };
    unauthorized(&ocsp(&cert));

    // Revocation is Ferrocore's: retired, the next check-in is refused (OCSP still
    // unauthorized).
    s.admin_ok(&["devices", "retire", &device_id]);
    refused(&s.checkin(&phone), "device_retired");
    unauthorized(&ocsp(&cert));

    // The CA's TLS endpoint now presents a certificate from another CA: refused at issuance,
    // nothing recorded.
    nginx.stop();
    let _nginx = Nginx::start(
        &dir.join("nginx"),
        port,
        scep.port,
        &dir.join("rogue.pem"),
        &dir.join("rogue.key"),
    );
    let before = s.device_total();
    let certs_before = s.admin_ok(&["certificates", "list"])["total"].clone();
    let tablet = dir.join("tablet");
    let out = s.register(&tablet, "alice", "android", "agent", "10.1.0");
    refused(&out, "external_ca_tls_untrusted");
    assert_eq!(s.device_total(), before);
    assert_eq!(s.admin_ok(&["certificates", "list"])["total"], certs_before);
    assert!(!tablet.join("cert.pem").exists());
}
