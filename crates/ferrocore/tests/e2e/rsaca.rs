//! An RSA local CA (`ca.key_algorithm`), black-box: PyScep (the real third-party client)
//! enrolls against `/scep` (GetCACaps, GetCACert with its own RA-issued-by-CA check, PKCSReq
//! with a one-time challenge; a reused and an unknown challenge get FAILURE badRequest); the
//! portal certificate, client identities (registration, SCEP, EST), the CRL and OCSP
//! responses an RSA CA signs are verified by curl and `openssl` (verify, crl, ocsp -resp_text); the CA key algorithm is
//! shown by the admin API/CLI; an existing CA is kept, with a warning, when the setting
//! changes. PyScep also sends transactionIDs PrintableString cannot carry (answered, echoed in
//! its encoding, retransmission gets the same certificate) and polls with GetCertInitial
//! (answered to the requesting key only; a revoked certificate or retired device gets
//! badCertId, for a retransmitted PKCSReq too).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Out, Server, mode_of, openssl, openssl_ok, run};
use serde_json::Value;
use std::process::Command;

fn pyscep(server: &Server, args: &[&str]) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scep/pyscep_client.py"
    ))
    .args(args)
    .env("REQUESTS_CA_BUNDLE", server.ca_pem());
    let out = run(cmd, None);
    assert_eq!(out.code, 0, "pyscep {args:?}: {out:?}\n{}", server.log());
    out.json
}

fn challenge(server: &Server, user: &str, platform: &str) -> String {
    let v = server.admin_ok(&[
        "scep-challenge",
        "create",
        "--user",
        user,
        "--platform",
        platform,
    ]);
    v["challenge"].as_str().expect("challenge").to_owned()
}

fn local_config(server: &Server) -> Value {
    let list = server.admin_ok(&["enrollment", "list"]);
    list.as_array()
        .expect("list")
        .iter()
        .find(|c| c["name"] == "local")
        .cloned()
        .unwrap_or_else(|| panic!("no local configuration: {list}"))
}

fn text(o: &Out) -> String {
    format!("{}{}", o.stdout, o.stderr)
}

/// Whitespace-free PEM body, to compare keys printed by different tools.
fn squash(pem: &str) -> String {
    pem.split_whitespace().collect()
}

#[test]
fn pyscep_enrolls_against_an_rsa_ca_and_reused_or_unknown_challenges_fail() {
    let server = Server::start_with_env(&[("FERROCORE_CA_KEY_ALGORITHM", "rsa-2048")]);
    let dir = server.path("");
    // The admin sees the CA's key algorithm; the key file is private.
    assert_eq!(local_config(&server)["ca_key_algorithm"], "rsa-2048");
    assert_eq!(mode_of(&server.data_dir.join("ca/ca.key")), 0o600);
    let ca = server.ca_pem();
    let ca_text = openssl_ok(
        &dir,
        &["x509", "-in", ca.to_str().unwrap(), "-noout", "-text"],
    );
    assert!(
        ca_text.stdout.contains("Public-Key: (2048 bit)"),
        "{ca_text:?}"
    );

    let url = format!("{}/scep", server.device_url());
    let caps = pyscep(&server, &["caps", &url]);
    assert_eq!(caps["post"], true, "{caps}");
    server.add_user("carol");
    let c = challenge(&server, "carol", "windows");
    let before = server.device_total();
    let res = pyscep(&server, &["enroll", &url, &c, "py-device"]);
    // GetCACert passed PyScep's check (RA certificates issued by the CA, PKCS#1 v1.5), and
    // PyScep picked the encryption-only RA certificate as recipient, the RA as signer.
    assert!(res.get("ca_certs_error").is_none(), "{res}");
    let chosen = &res["ca_certs"];
    assert_eq!(chosen["count"], 3, "{res}");
    assert!(
        chosen["recipient"]
            .as_str()
            .unwrap()
            .contains("Ferrocore SCEP RA encryption"),
        "{res}"
    );
    assert!(
        chosen["signer"]
            .as_str()
            .unwrap()
            .contains("Ferrocore SCEP RA"),
        "{res}"
    );
    assert!(
        chosen["issuer"]
            .as_str()
            .unwrap()
            .contains("Ferrocore Local CA"),
        "{res}"
    );
    assert_eq!(res["status"], "SUCCESS", "{res}\n{}", server.log());

    // The certificate PyScep decrypted carries the CSR's key, the user and a device UUID,
    // chains to the RSA CA, and its device is listed.
    let cert = server.path("py-cert.pem");
    std::fs::write(&cert, res["cert_pem"].as_str().unwrap()).unwrap();
    let cert_s = cert.to_str().unwrap();
    let pubkey = openssl_ok(&dir, &["x509", "-in", cert_s, "-noout", "-pubkey"]);
    assert_eq!(
        squash(&pubkey.stdout),
        squash(res["csr_public_key_pem"].as_str().unwrap())
    );
    let verify = openssl_ok(
        &dir,
        &[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            "-purpose",
            "sslclient",
            cert_s,
        ],
    );
    assert!(verify.stdout.contains(": OK"), "{verify:?}");
    let subject = openssl_ok(
        &dir,
        &[
            "x509", "-in", cert_s, "-noout", "-subject", "-nameopt", "RFC2253",
        ],
    );
    let uuid = subject
        .stdout
        .trim()
        .trim_start_matches("subject=")
        .split(',')
        .find_map(|p| p.trim().strip_prefix("serialNumber="))
        .unwrap_or_else(|| panic!("no serialNumber: {subject:?}"))
        .trim()
        .to_owned();
    assert!(subject.stdout.contains("CN=carol"), "{subject:?}");
    let serial = openssl_ok(&dir, &["x509", "-in", cert_s, "-noout", "-serial"])
        .stdout
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    let list = server.devices();
    let device = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["current_cert_serial"] == serial.as_str())
        .unwrap_or_else(|| panic!("no device with {serial}: {list}"));
    assert_eq!(device["device_uuid"], uuid.as_str(), "{device}");
    assert_eq!(device["username"], "carol", "{device}");
    assert_eq!(server.device_total(), before + 1);

    // The same challenge again, and an unknown one: FAILURE badRequest, nothing written.
    let again = pyscep(&server, &["enroll", &url, &c, "py-device-2"]);
    assert_eq!(again["status"], "FAILURE", "{again}");
    assert_eq!(again["fail_info"], "BadRequest", "{again}");
    let unknown = pyscep(&server, &["enroll", &url, "no-such-challenge-0123", "py-3"]);
    assert_eq!(unknown["status"], "FAILURE", "{unknown}");
    assert_eq!(unknown["fail_info"], "BadRequest", "{unknown}");
    assert_eq!(server.device_total(), before + 1);
}

/// `openssl ocsp` against the device listener's `/ocsp` for a certificate of `ca`.
fn ocsp(server: &Server, cert: &std::path::Path) -> String {
    let ca = server.ca_pem();
    let url = format!("{}/ocsp", server.device_url());
    let out = openssl(
        &server.path(""),
        &[
            "ocsp",
            "-issuer",
            ca.to_str().unwrap(),
            "-cert",
            cert.to_str().unwrap(),
            "-url",
            &url,
            "-CAfile",
            ca.to_str().unwrap(),
            "-resp_text",
            "-timeout",
            "20",
        ],
    );
    text(&out)
}

#[test]
fn rsa_ca_signs_tls_identities_crl_and_ocsp_and_is_kept_when_the_setting_changes() {
    let mut server = Server::start_with_env(&[("FERROCORE_CA_KEY_ALGORITHM", "rsa-3072")]);
    let dir = server.path("");
    let ca = server.ca_pem();
    let ca_s = ca.to_str().unwrap().to_owned();
    assert_eq!(local_config(&server)["ca_key_algorithm"], "rsa-3072");

    // The portal certificate (signed by the RSA CA) is trusted by curl; an agent registers
    // and checks in over mutual TLS with its RSA-signed identity.
    let health = server.curl(&[&format!("{}/healthz", server.device_url())]);
    assert_eq!(health.status, 200, "{health:?}");
    server.add_user("dave");
    server.admin_ok(&["settings", "mutual-auth", "enable"]);
    let phone = server.path("phone");
    let st = server.register_ok(&phone, "dave", "android", "agent", "10.1.0");
    server.checkin_ok(&phone);
    let cert = phone.join("cert.pem");
    let cert_s = cert.to_str().unwrap();
    let v = openssl_ok(
        &dir,
        &["verify", "-CAfile", &ca_s, "-purpose", "sslclient", cert_s],
    );
    assert!(v.stdout.contains(": OK"), "{v:?}");
    let x = openssl_ok(&dir, &["x509", "-in", cert_s, "-noout", "-text"]);
    assert!(x.stdout.contains("sha256WithRSAEncryption"), "{x:?}");

    // EST simpleenroll (HTTP Basic): the certificate in the PKCS#7 answer chains to the CA.
    openssl_ok(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "est.key",
            "-subj",
            "/CN=est-device",
            "-outform",
            "DER",
            "-out",
            "est.csr",
        ],
    );
    let body = openssl_ok(&dir, &["base64", "-in", "est.csr"]).stdout;
    std::fs::write(dir.join("est.b64"), body).unwrap();
    let est = server.curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        &format!("@{}", dir.join("est.b64").display()),
        "-u",
        &format!("dave:{}", common::PASSWORD),
        &format!("{}/.well-known/est/simpleenroll", server.device_url()),
    ]);
    assert_eq!(est.status, 200, "{est:?}\n{}", server.log());
    std::fs::write(dir.join("est.p7.b64"), &est.body).unwrap();
    openssl_ok(
        &dir,
        &["base64", "-d", "-in", "est.p7.b64", "-out", "est.p7"],
    );
    openssl_ok(
        &dir,
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "est.p7",
            "-print_certs",
            "-out",
            "est.pem",
        ],
    );
    let v = openssl_ok(
        &dir,
        &[
            "verify",
            "-CAfile",
            &ca_s,
            "-purpose",
            "sslclient",
            "est.pem",
        ],
    );
    assert!(v.stdout.contains("est.pem: OK"), "{v:?}");

    // OCSP: good, then revoked at once after the retire, each response verified.
    let t = ocsp(&server, &cert);
    assert!(t.contains("Response verify OK"), "{t}\n{}", server.log());
    assert!(t.contains("cert.pem: good"), "{t}");
    server.admin_ok(&["devices", "retire", st["device_id"].as_str().unwrap()]);
    let t = ocsp(&server, &cert);
    assert!(t.contains("Response verify OK"), "{t}");
    assert!(t.contains("cert.pem: revoked"), "{t}");

    // The published CRL is signed by the RSA CA and lists the retired certificate.
    let crl = server.data_dir.join("ca/crl.der");
    let c = openssl_ok(
        &dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            crl.to_str().unwrap(),
            "-CAfile",
            &ca_s,
            "-noout",
            "-text",
        ],
    );
    let serial = openssl_ok(&dir, &["x509", "-in", cert_s, "-noout", "-serial"])
        .stdout
        .trim()
        .trim_start_matches("serial=")
        .to_owned();
    assert!(text(&c).contains("verify OK"), "{c:?}");
    assert!(c.stdout.contains(&serial), "{serial}: {c:?}");

    // A new local-CA configuration gets the configured algorithm too.
    let added = server.admin_ok(&["enrollment", "add", "second"]);
    assert_eq!(added["ca_key_algorithm"], "rsa-3072", "{added}");

    // Another algorithm later: the existing CA is kept, and start-up says so.
    let ca_before = std::fs::read(&ca).unwrap();
    server.restart_with_env(&[("FERROCORE_CA_KEY_ALGORITHM", "ecdsa-p256")]);
    assert_eq!(std::fs::read(&ca).unwrap(), ca_before);
    assert_eq!(local_config(&server)["ca_key_algorithm"], "rsa-3072");
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("ca.key_algorithm is ecdsa-p256")
            && l.contains("existing local CA's key is rsa-3072")),
        "{log}"
    );
    // ... and a bad value names the key.
    let out = common::serve_expecting_failure(
        &server.data_dir,
        &[],
        &[("FERROCORE_CA_KEY_ALGORITHM".into(), "rsa-1024".into())],
    );
    assert!(text(&out).contains("ca.key_algorithm"), "{out:?}");
}

/// SCEP GetCert and GetCRL (RFC 8894 3.3.3, 3.3.4) with PyScep's `get_cert` / `get_crl`: a
/// client gets its own certificate (signed with its key), not with another key nor for an
/// unknown serial (badCertId), and the CA's current CRL, which lists a retired device's
/// certificate and verifies against the CA.
#[test]
fn pyscep_gets_its_own_certificate_and_the_crl() {
    let server = Server::start_with_env(&[("FERROCORE_CA_KEY_ALGORITHM", "rsa-2048")]);
    let dir = server.path("");
    let url = format!("{}/scep", server.device_url());
    server.add_user("erin");
    // A first device, retired: its certificate is on the CRL.
    let first = pyscep(
        &server,
        &["enroll", &url, &challenge(&server, "erin", "ios"), "erin-1"],
    );
    assert_eq!(first["status"], "SUCCESS", "{first}");
    std::fs::write(dir.join("first.pem"), first["cert_pem"].as_str().unwrap()).unwrap();
    let retired_serial = openssl_ok(&dir, &["x509", "-in", "first.pem", "-noout", "-serial"])
        .stdout
        .trim()
        .trim_start_matches("serial=")
        .to_owned();
    let list = server.devices();
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["current_cert_serial"] == retired_serial.to_ascii_lowercase())
        .and_then(|d| d["device_id"].as_str())
        .unwrap_or_else(|| panic!("{retired_serial}: {list}"))
        .to_owned();
    server.admin_ok(&["devices", "retire", &id]);

    let res = pyscep(
        &server,
        &["access", &url, &challenge(&server, "erin", "ios"), "erin-2"],
    );
    assert_eq!(res["status"], "SUCCESS", "{res}");
    let own = &res["get_cert_own"];
    assert_eq!(own["status"], "SUCCESS", "{res}\n{}", server.log());
    assert_eq!(own["cert_pem"], res["cert_pem"], "{res}");
    for refused in ["get_cert_foreign", "get_cert_unknown"] {
        assert_eq!(res[refused]["status"], "FAILURE", "{refused}: {res}");
        assert_eq!(res[refused]["fail_info"], "BadCertId", "{refused}: {res}");
    }
    let crl = &res["get_crl"];
    assert_eq!(crl["status"], "SUCCESS", "{res}");
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(crl["crl_der_b64"].as_str().unwrap())
        .unwrap();
    std::fs::write(dir.join("scep-crl.der"), der).unwrap();
    let ca = server.ca_pem();
    let out = openssl_ok(
        &dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "scep-crl.der",
            "-CAfile",
            ca.to_str().unwrap(),
            "-noout",
            "-text",
        ],
    );
    assert!(text(&out).contains("verify OK"), "{out:?}");
    assert!(
        out.stdout.contains(&retired_serial.to_ascii_uppercase()),
        "{retired_serial}: {out:?}"
    );
}

/// The serial (lowercase hex, as the admin API lists it) of a PEM certificate.
fn serial_of_pem(server: &Server, name: &str, pem: &str) -> String {
    let dir = server.path("");
    std::fs::write(dir.join(name), pem).unwrap();
    common::x509::serial_of(&dir, name)
}

/// A transactionID PrintableString cannot carry (`_`, `@`, `*`), sent by PyScep as a
/// UTF8String and as a PrintableString it does not check: the CertRep echoes it in the
/// client's own encoding (before, building the reply failed with HTTP 500 after the
/// certificate was recorded), and the retransmission gets the same certificate.
#[test]
fn pyscep_transaction_ids_outside_printable_string_are_answered() {
    let server = Server::start_with_env(&[("FERROCORE_CA_KEY_ALGORITHM", "rsa-2048")]);
    let url = format!("{}/scep", server.device_url());
    server.add_user("frank");
    for (kind, txid) in [("utf8", "a_b@c*1"), ("printable", "x_y@z*2")] {
        let c = challenge(&server, "frank", "windows");
        let res = pyscep(&server, &["txid", &url, &c, "frank-dev", txid, kind]);
        for attempt in ["first", "retransmission"] {
            let o = &res[attempt];
            assert_eq!(
                o["status"],
                "SUCCESS",
                "{kind} {attempt}: {res}\n{}",
                server.log()
            );
            assert_eq!(o["transaction_id"], txid, "{kind} {attempt}: {res}");
        }
        assert_eq!(
            res["first"]["cert_pem"], res["retransmission"]["cert_pem"],
            "{kind}: {res}"
        );
        let serial = serial_of_pem(
            &server,
            "tx.pem",
            res["first"]["cert_pem"].as_str().unwrap(),
        );
        let list = server.devices();
        assert!(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["current_cert_serial"] == serial),
            "{serial}: {list}"
        );
    }
    assert!(
        !server.log().contains("SCEP internal error"),
        "{}",
        server.log()
    );
}

/// GetCertInitial (CertPoll) with PyScep: the certificate recorded for a transaction goes to
/// the key that requested it only (another signer gets badCertId, before: the certificate);
/// once the certificate is revoked, a poll and a retransmitted PKCSReq get badCertId, and so
/// do they once the device is retired.
#[test]
fn pyscep_poll_answers_the_requester_only_and_never_a_revoked_certificate() {
    let server = Server::start_with_env(&[("FERROCORE_CA_KEY_ALGORITHM", "rsa-2048")]);
    let url = format!("{}/scep", server.device_url());
    server.add_user("gina");
    let mut devices = Vec::new();
    for n in 1..=2 {
        let save = server.path(&format!("poll-{n}"));
        let c = challenge(&server, "gina", "ios");
        let res = pyscep(
            &server,
            &[
                "poll",
                &url,
                &c,
                &format!("gina-{n}"),
                save.to_str().unwrap(),
            ],
        );
        assert_eq!(
            res["enroll"]["status"],
            "SUCCESS",
            "{res}\n{}",
            server.log()
        );
        assert_eq!(res["own"]["status"], "SUCCESS", "{res}");
        assert_eq!(res["own"]["cert_pem"], res["enroll"]["cert_pem"], "{res}");
        assert_eq!(res["foreign"]["status"], "FAILURE", "{res}");
        assert_eq!(res["foreign"]["fail_info"], "BadCertId", "{res}");
        assert!(res["foreign"].get("cert_pem").is_none(), "{res}");
        // Still answered before anything changes.
        let again = pyscep(&server, &["replay", &url, save.to_str().unwrap()]);
        for k in ["poll", "retransmission"] {
            assert_eq!(again[k]["status"], "SUCCESS", "{k}: {again}");
            assert_eq!(
                again[k]["cert_pem"], res["enroll"]["cert_pem"],
                "{k}: {again}"
            );
        }
        let serial = serial_of_pem(
            &server,
            "poll.pem",
            res["enroll"]["cert_pem"].as_str().unwrap(),
        );
        devices.push((save, serial));
    }
    // The first certificate revoked, the second device retired.
    let (revoked_dir, revoked_serial) = &devices[0];
    server.admin_ok(&["certificates", "revoke", revoked_serial]);
    let (retired_dir, retired_serial) = &devices[1];
    let list = server.devices();
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["current_cert_serial"] == retired_serial.as_str())
        .and_then(|d| d["device_id"].as_str())
        .unwrap_or_else(|| panic!("{retired_serial}: {list}"))
        .to_owned();
    server.admin_ok(&["devices", "retire", &id]);
    for save in [revoked_dir, retired_dir] {
        let res = pyscep(&server, &["replay", &url, save.to_str().unwrap()]);
        for k in ["poll", "retransmission"] {
            assert_eq!(res[k]["status"], "FAILURE", "{k}: {res}\n{}", server.log());
            assert_eq!(res[k]["fail_info"], "BadCertId", "{k}: {res}");
        }
    }
}
