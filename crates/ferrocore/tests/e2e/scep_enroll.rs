//! SCEP (RFC 8894) at `/scep` against real clients: micromdm's `scepclient` (enrollment,
//! RenewalReq with its current certificate, reused challenge), certmonger's daemon
//! (`getcert request`, reused challenge), PyScep (GetCACaps; its GetCACert check only
//! knows RSA CAs: its enrollment against an RSA local CA is in `rsaca_e2e`), and curl for the HTTP-level refusals
//! (including GetNextCACert, neither announced nor served: there is no CA rollover). The SCEP-issued certificate is
//! listed on its device, works for a mutual-TLS check-in and is refused after retirement.
//! One-time challenges are enrollment grants: listed, revoked, and then refused to
//! `scepclient` like unknown ones (as are EST tokens).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::certmonger;
use crate::common::scep;
use crate::common::x509::serial_of;

use scep::{challenge, device_by_serial, scep_url, scepclient};

use common::{Server, openssl_ok, run};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn checkin_with(server: &Server, dir: &Path) -> common::Http {
    let url = format!("{}/api/v1/checkin", server.device_url());
    server.curl(&[
        "--cert",
        dir.join("cert.pem").to_str().unwrap(),
        "--key",
        dir.join("key.pem").to_str().unwrap(),
        "-X",
        "POST",
        &url,
    ])
}

#[test]
fn scepclient_enrolls_renews_checks_in_and_is_refused_after_retire() {
    let server = Server::start();
    server.add_user("alice");
    // Lifetime 30 days, window 60: a new certificate is already inside its renewal window.
    server.admin_ok(&["policies", "set", "default", "--cert-lifetime-days", "30"]);
    let c = challenge(&server, "alice", "ios");
    let dev = server.path("scepclient");
    let out = scepclient(&server, &dev, Some(&c));
    assert_eq!(out.code, 0, "{out:?}\n{}", server.log());
    assert!(
        out.stdout.contains("SUCCESS") || out.stderr.contains("SUCCESS"),
        "{out:?}"
    );

    // Issued by the local CA, a client identity for alice, recorded on an mdm device.
    let ca = server.ca_pem();
    openssl_ok(
        &dev,
        &["verify", "-CAfile", ca.to_str().unwrap(), "cert.pem"],
    );
    let first = serial_of(&dev, "cert.pem");
    let d = device_by_serial(&server, &first);
    assert_eq!(d["client_kind"], "mdm", "{d}");
    assert_eq!(d["platform"], "ios", "{d}");
    // Table 4, iOS MDM with mutual authentication off: port 443, MA not used (the SCEP
    // certificate is the device's identity on the device listener).
    assert_eq!(
        (&d["mode"], &d["listener"]),
        (&"legacy".into(), &"device".into()),
        "{d}"
    );
    assert_eq!(d["username"], "alice", "{d}");
    let certs = server.admin_ok(&[
        "certificates",
        "list",
        "--device",
        d["device_id"].as_str().unwrap(),
    ]);
    assert_eq!(certs["items"][0]["issue_reason"], "scep", "{certs}");

    // The same challenge again (new key): refused with a SCEP failInfo, nothing recorded.
    let total = server.device_total();
    let again = scepclient(&server, &server.path("scepclient-again"), Some(&c));
    assert_ne!(again.code, 0);
    assert!(
        again.stdout.contains("badRequest"),
        "reused challenge: {again:?}"
    );
    assert_eq!(server.device_total(), total);
    assert!(server.log().contains("scep_challenge_invalid"));
    // An unknown challenge likewise.
    let bogus = scepclient(&server, &server.path("scepclient-bogus"), Some("0123abcd"));
    assert!(bogus.stdout.contains("badRequest"), "{bogus:?}");

    // Mutual-TLS check-in with the SCEP certificate.
    let r = checkin_with(&server, &dev);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["device_id"], d["device_id"]);

    // RenewalReq: scepclient signs with its current certificate (and keeps its key).
    let before = std::fs::read(dev.join("cert.pem")).unwrap();
    let out = scepclient(&server, &dev, None);
    assert_eq!(out.code, 0, "renewal: {out:?}\n{}", server.log());
    let renewed = serial_of(&dev, "cert.pem");
    assert_ne!(renewed, first);
    assert_ne!(std::fs::read(dev.join("cert.pem")).unwrap(), before);
    let d2 = device_by_serial(&server, &renewed);
    assert_eq!(
        d2["device_id"], d["device_id"],
        "one identity through renewal"
    );
    assert_eq!(d2["renewal_count"], 1, "{d2}");
    let r = checkin_with(&server, &dev);
    assert_eq!(r.status, 200, "{r:?}");

    // Retired: the certificate no longer works.
    server.admin_ok(&["devices", "retire", d["device_id"].as_str().unwrap()]);
    let r = checkin_with(&server, &dev);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.error_code(), "device_retired");
    // And a RenewalReq with it is answered with a FAILURE.
    let out = scepclient(&server, &dev, None);
    assert_ne!(out.code, 0);
    assert!(out.stdout.contains("failInfo"), "{out:?}");
}

#[test]
fn certmonger_enrolls_and_a_reused_challenge_is_refused() {
    let server = Server::start();
    server.add_user("bob");
    let cm = certmonger::Certmonger::start(&server.path("certmonger"), &server.ca_pem());
    cm.add_scep_ca("FERRO", &scep_url(&server), Some(&server.ca_pem()));

    let c = challenge(&server, "bob", "macos");
    cm.request("FERRO", "dev1", &c);
    let status = cm.wait_status("dev1", &["MONITORING", "CA_REJECTED", "CA_UNREACHABLE"]);
    assert!(
        status.contains("status: MONITORING"),
        "{status}\n{}",
        server.log()
    );
    let out = openssl_ok(&cm.dir, &["x509", "-in", "dev1.crt", "-noout", "-subject"]);
    assert!(out.stdout.contains("CN = bob"), "{out:?}");
    let serial = serial_of(&cm.dir, "dev1.crt");
    let d = device_by_serial(&server, &serial);
    assert_eq!(d["platform"], "macos");

    // The same challenge for another key: refused (CertRep FAILURE).
    let (_, crt2) = cm.request("FERRO", "dev2", &c);
    let status = cm.wait_status("dev2", &["MONITORING", "CA_REJECTED"]);
    assert!(status.contains("status: CA_REJECTED"), "{status}");
    assert!(!crt2.exists());
}

/// One-time challenges are enrollment grants: `grant list` shows an outstanding one; once
/// revoked, scepclient gets FAILURE badRequest exactly like for an unknown challenge, and an
/// EST token is no challenge; a fresh one is listed as consumed by the device it enrolled.
#[test]
fn revoked_challenge_grant_is_refused_to_scepclient() {
    let server = Server::start();
    server.add_user("alice");
    let c = server.admin_ok(&[
        "scep-challenge",
        "create",
        "--user",
        "alice",
        "--platform",
        "ios",
    ]);
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(
        server.grant_ids(&["--protocol", "scep", "--state", "active"]),
        [id.as_str()]
    );

    let revoked = server.admin_ok(&["grant", "revoke", &id]);
    assert_eq!(revoked["state"], "revoked", "{revoked}");
    let total = server.device_total();
    let out = scepclient(&server, &server.path("revoked"), c["challenge"].as_str());
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("badRequest"),
        "revoked challenge: {out:?}"
    );
    let unknown = "00112233445566778899aabbccddeeff00112233";
    let out = scepclient(&server, &server.path("unknown"), Some(unknown));
    assert!(out.stdout.contains("badRequest"), "{out:?}");
    let t = server.admin_ok(&[
        "est-token",
        "create",
        "--user",
        "alice",
        "--platform",
        "ios",
    ]);
    let out = scepclient(&server, &server.path("est"), t["token"].as_str());
    assert!(
        out.stdout.contains("badRequest"),
        "EST token over SCEP: {out:?}"
    );
    assert_eq!(server.device_total(), total);
    assert!(server.log().contains("scep_challenge_invalid"));
    assert_eq!(server.grant_ids(&["--state", "revoked"]), [id]);

    let fresh = challenge(&server, "alice", "ios");
    let dev = server.path("fresh");
    let out = scepclient(&server, &dev, Some(&fresh));
    assert_eq!(out.code, 0, "{out:?}\n{}", server.log());
    let consumed = server.admin_ok(&["grant", "list", "--state", "consumed"]);
    let g = &consumed["items"][0];
    let serial = serial_of(&dev, "cert.pem");
    let d = device_by_serial(&server, &serial);
    assert_eq!(
        [
            &consumed["total"],
            &g["protocol"],
            &g["cert_serial"],
            &g["device_id"]
        ],
        [
            &1.into(),
            &"scep".into(),
            &serial.as_str().into(),
            &d["device_id"]
        ],
        "{consumed}\n{d}"
    );
}

fn pyscep(server: &Server, args: &[&str]) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scep/pyscep_client.py"
    ))
    .args(args)
    .env("REQUESTS_CA_BUNDLE", server.ca_pem());
    let out = run(cmd, None);
    assert_eq!(out.code, 0, "pyscep {args:?}: {out:?}");
    out.json
}

#[test]
fn pyscep_reads_the_capabilities() {
    let server = Server::start();
    let url = scep_url(&server);
    let caps = pyscep(&server, &["caps", &url]);
    assert_eq!(caps["cipher"], "aes256", "{caps}");
    assert_eq!(caps["digest"], "sha512", "{caps}");
    assert_eq!(caps["post"], true, "{caps}");
    assert_eq!(caps["renewal"], true, "{caps}");
    // PyScep checks the RA's signature with RSA PKCS#1 v1.5 only; our CA is ECDSA P-256,
    // so its GetCACert check refuses before it would enroll (a PyScep limitation).
    server.add_user("carol");
    let c = challenge(&server, "carol", "android");
    let res = pyscep(&server, &["enroll", &url, &c, "py-device"]);
    assert_eq!(res["ca_certs_error"], "RA is not issued by CA", "{res}");
}

#[test]
fn bad_scep_requests_get_stable_errors() {
    let server = Server::start();
    let url = scep_url(&server);
    // GetCACaps as certmonger sends it, and GetCACert with the RA and the CA.
    let caps = server.curl(&[&format!("{url}?operation=GetCACaps&message=0")]);
    assert_eq!(caps.status, 200);
    for cap in [
        "AES",
        "POSTPKIOperation",
        "Renewal",
        "SHA-256",
        "SCEPStandard",
    ] {
        assert!(caps.body.lines().any(|l| l == cap), "{cap}: {}", caps.body);
    }
    // No CA rollover: GetNextCACert is neither announced nor answered with the current chain.
    assert!(
        !caps.body.lines().any(|l| l == "GetNextCACert"),
        "{}",
        caps.body
    );
    let next = server.curl(&[&format!("{url}?operation=GetNextCACert")]);
    assert_eq!(
        (next.status, next.error_code()),
        (400, "scep_unknown_operation"),
        "{}",
        next.body
    );
    let p7 = server.path("cacert.p7");
    let got = server.curl(&[
        "-o",
        p7.to_str().unwrap(),
        &format!("{url}?operation=GetCACert"),
    ]);
    assert_eq!(got.status, 200);
    let certs = openssl_ok(
        p7.parent().unwrap(),
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "cacert.p7",
            "-print_certs",
            "-noout",
        ],
    );
    assert!(certs.stdout.contains("Ferrocore SCEP RA"), "{certs:?}");
    assert!(certs.stdout.contains("Ferrocore Local CA"), "{certs:?}");

    let no_op = server.curl(&[&url]);
    assert_eq!(
        (no_op.status, no_op.error_code()),
        (400, "scep_unknown_operation")
    );
    let bad_op = server.curl(&[&format!("{url}?operation=Nope")]);
    assert_eq!(bad_op.error_code(), "scep_unknown_operation");
    let not_b64 = server.curl(&[&format!("{url}?operation=PKIOperation&message=%%%%")]);
    assert_eq!(
        (not_b64.status, not_b64.error_code()),
        (400, "scep_malformed")
    );
    let garbage = server.curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/x-pki-message",
        "--data-binary",
        "0\u{1}garbage",
        &format!("{url}?operation=PKIOperation"),
    ]);
    assert_eq!(
        (garbage.status, garbage.error_code()),
        (400, "scep_malformed")
    );
    // A certs-only message is CMS but not a PKIOperation.
    let certs_only = server.path("certs-only.p7");
    std::fs::copy(&p7, &certs_only).unwrap();
    let wrong = server.curl(&[
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", certs_only.display()),
        &format!("{url}?operation=PKIOperation"),
    ]);
    assert_eq!((wrong.status, wrong.error_code()), (400, "scep_malformed"));
    let big = server.path("big.bin");
    std::fs::write(&big, vec![0x30u8; 100 * 1024]).unwrap();
    let too_big = server.curl(&[
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", big.display()),
        &format!("{url}?operation=PKIOperation"),
    ]);
    assert_eq!(
        (too_big.status, too_big.error_code()),
        (413, "body_too_large")
    );
    // Reachable through the sync-TLS listener too.
    let sync = server.curl(&[&format!("{}/scep?operation=GetCACaps", server.sync_url())]);
    assert_eq!(sync.status, 200);
    assert!(sync.body.contains("AES"));
}

/// A static challenge enrolls devices with scepclient, each a new mdm device of the user and
/// platform it names, and is not consumed (a second device enrolls with it; it is no grant).
/// Deleting a user (after retiring those devices) revokes their one-time challenges and
/// removes the static challenge naming them, in the same transaction: scepclient gets FAILURE
/// badRequest with either, exactly as for an unknown challenge, and nothing is enrolled.
#[test]
fn static_challenge_enrolls_and_challenges_of_a_deleted_user_are_refused_to_scepclient() {
    let server = Server::start();
    server.add_user("dave");
    let one_time = server.admin_ok(&[
        "scep-challenge",
        "create",
        "--user",
        "dave",
        "--platform",
        "ios",
    ]);
    let id = one_time["id"].as_str().unwrap().to_owned();
    let fixed = server.admin_ok(&[
        "scep-challenge",
        "set-static",
        "--config",
        "local",
        "--user",
        "dave",
        "--platform",
        "ios",
    ]);
    let fixed = fixed["challenge"]
        .as_str()
        .expect("static challenge")
        .to_owned();
    assert_eq!(fixed.len(), 40, "40 hex digits: {fixed}");

    // The static challenge enrolls, twice: two new devices of dave's on iOS.
    let grants = server.grant_ids(&[]);
    let mut enrolled = Vec::new();
    for name in ["static-1", "static-2"] {
        let dir = server.path(name);
        let out = scepclient(&server, &dir, Some(&fixed));
        assert_eq!(out.code, 0, "{name}: {out:?}\n{}", server.log());
        openssl_ok(
            &dir,
            &[
                "verify",
                "-CAfile",
                server.ca_pem().to_str().unwrap(),
                "cert.pem",
            ],
        );
        let d = device_by_serial(&server, &serial_of(&dir, "cert.pem"));
        assert_eq!(d["username"], "dave", "{d}");
        assert_eq!(d["platform"], "ios", "{d}");
        assert_eq!(d["client_kind"], "mdm", "{d}");
        // Table 4, mutual authentication off: iOS MDM on port 443 without mutual
        // authentication required; the SCEP certificate is its identity there.
        assert_eq!(
            (d["mode"].as_str(), d["listener"].as_str()),
            (Some("legacy"), Some("device")),
            "{d}"
        );
        let r = checkin_with(&server, &dir);
        assert_eq!(r.status, 200, "{name}: {r:?}");
        enrolled.push(d["device_id"].as_str().unwrap().to_owned());
    }
    assert_ne!(enrolled[0], enrolled[1]);
    assert_eq!(server.device_total(), 2);
    assert_eq!(
        server.grant_ids(&[]),
        grants,
        "the static challenge is no grant"
    );
    assert_eq!(
        server.admin_ok(&["grant", "show", &id])["state"],
        "active",
        "the one-time challenge was not used"
    );

    for d in &enrolled {
        server.admin_ok(&["devices", "retire", d]);
    }
    server.admin_ok(&["users", "remove", "dave"]);
    assert_eq!(server.admin_ok(&["grant", "show", &id])["state"], "revoked");

    let total = server.device_total();
    for (name, c) in [
        ("one-time", one_time["challenge"].as_str().unwrap()),
        ("static", fixed.as_str()),
    ] {
        let out = scepclient(&server, &server.path(name), Some(c));
        assert_ne!(out.code, 0, "{name}: {out:?}");
        assert!(out.stdout.contains("badRequest"), "{name}: {out:?}");
    }
    assert_eq!(server.device_total(), total);
    assert!(server.log().contains("scep_challenge_invalid"));
    // The static challenge is gone, not merely refused: a user of the same name created
    // later does not inherit it.
    server.add_user("dave");
    let out = scepclient(&server, &server.path("static-again"), Some(&fixed));
    assert!(out.stdout.contains("badRequest"), "{out:?}");
    assert_eq!(server.device_total(), total);
}
