//! OCSP responder, black-box: the real `openssl ocsp` client against `/ocsp` on the plain-HTTP
//! PKI listener (the URL the issued certificate's AIA names) and on the device listener;
//! POST and GET forms, nonce, good → revoked after a retire, unknown serial, `unauthorized`
//! for a CA that is not ours, malformed and oversized requests, and the delegated signing certificate re-created on start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use std::fs;

/// `openssl ocsp [FIRST...]` against `url` for `cert` (signed by the server's CA).
fn ocsp_query(s: &Server, cert: &std::path::Path, url: &str, first: &[&str]) -> Out {
    let ca = s.ca_pem();
    let mut args = vec!["ocsp"];
    args.extend_from_slice(first);
    args.extend_from_slice(&[
        "-issuer",
        ca.to_str().expect("utf-8"),
        "-cert",
        cert.to_str().expect("utf-8"),
        "-url",
        url,
        "-CAfile",
        ca.to_str().expect("utf-8"),
        "-resp_text",
        "-timeout",
        "20",
    ]);
    openssl(&s.path(""), &args)
}

fn text(o: &Out) -> String {
    format!("{}{}", o.stdout, o.stderr)
}

#[test]
fn openssl_ocsp_good_then_revoked_get_nonce_unknown_and_malformed() {
    let pki_port = free_port();
    let pki = format!("127.0.0.1:{pki_port}");
    let mut s = Server::start_with_env(&[("FERROCORE_LISTENERS_PKI", &pki)]);
    s.add_user("alice");
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let phone = s.path("phone");
    let st = s.register_ok(&phone, "alice", "android", "agent", "10.1.0");
    let cert = phone.join("cert.pem");
    assert_eq!(mode_of(&s.data_dir.join("ca/ocsp.key")), 0o600);

    // The certificate names the responder (AIA) beside the CRL distribution point, both on
    // the plain-HTTP PKI listener.
    let cert_s = cert.to_str().expect("utf-8");
    let uri = openssl_ok(&s.path(""), &["x509", "-in", cert_s, "-noout", "-ocsp_uri"]);
    let url = uri.stdout.trim().to_owned();
    assert_eq!(url, format!("http://localhost:{pki_port}/ocsp"));
    let ext = openssl_ok(
        &s.path(""),
        &[
            "x509",
            "-in",
            cert_s,
            "-noout",
            "-ext",
            "crlDistributionPoints",
        ],
    );
    assert!(
        ext.stdout
            .contains(&format!("http://localhost:{pki_port}/pki/crl.der")),
        "{ext:?}"
    );

    // Good, with a nonce echoed and the delegated responder's signature verified.
    let good = ocsp_query(&s, &cert, &url, &[]);
    let t = text(&good);
    assert_eq!(good.code, 0, "{t}\n{}", s.log());
    assert!(t.contains("Response verify OK"), "{t}");
    assert!(t.contains("cert.pem: good"), "{t}");
    assert!(t.contains("OCSP Nonce"), "{t}");
    assert!(!t.contains("WARNING: no nonce"), "{t}");
    assert!(t.contains("Responder Id: "), "{t}");
    assert!(t.contains("Next Update"), "{t}");
    // SHA-256 CertIDs too, and the same over HTTPS on the device listener.
    let t = text(&ocsp_query(&s, &cert, &url, &["-sha256"]));
    assert!(
        t.contains("cert.pem: good") && t.contains("Response verify OK"),
        "{t}"
    );
    let device_url = format!("{}/ocsp", s.device_url());
    let t = text(&ocsp_query(&s, &cert, &device_url, &["-sha512"]));
    assert!(
        t.contains("cert.pem: good") && t.contains("Response verify OK"),
        "{t}"
    );

    // Re-registration replaces the identity: the old certificate is revoked (superseded) at
    // once, the new one is good.
    let old = s.path("old-cert.pem");
    fs::copy(&cert, &old).unwrap();
    s.register_ok(&phone, "alice", "android", "agent", "10.1.0");
    let t = text(&ocsp_query(&s, &old, &url, &[]));
    assert!(
        t.contains("old-cert.pem: revoked") && t.contains("Reason: superseded"),
        "{t}"
    );
    let t = text(&ocsp_query(&s, &cert, &url, &[]));
    assert!(t.contains("cert.pem: good"), "{t}");

    // An administrator's revocation with a reason.
    let other = s.path("other");
    let st_other = s.register_ok(&other, "alice", "android", "agent", "10.1.0");
    let serial = s.admin_ok(&["devices", "show", st_other["device_id"].as_str().unwrap()])
        ["current_cert_serial"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no serial"));
    s.admin_ok(&[
        "certificates",
        "revoke",
        &serial,
        "--reason",
        "key_compromise",
    ]);
    let t = text(&ocsp_query(&s, &other.join("cert.pem"), &url, &[]));
    assert!(
        t.contains("cert.pem: revoked") && t.contains("Reason: keyCompromise"),
        "{t}"
    );

    // Retire: the very next request says revoked, with the reason and time.
    s.admin_ok(&["devices", "retire", st["device_id"].as_str().expect("id")]);
    let t = text(&ocsp_query(&s, &cert, &url, &[]));
    assert!(t.contains("Response verify OK"), "{t}");
    assert!(t.contains("cert.pem: revoked"), "{t}");
    assert!(t.contains("Reason: cessationOfOperation"), "{t}");
    assert!(t.contains("Revocation Time"), "{t}");

    // GET form: /ocsp/<url-escaped base64 DER>.
    let dir = s.path("");
    let ca = s.ca_pem();
    let ca_s = ca.to_str().expect("utf-8");
    openssl_ok(
        &dir,
        &[
            "ocsp",
            "-issuer",
            ca_s,
            "-cert",
            cert_s,
            "-reqout",
            "req.der",
            "-no_nonce",
        ],
    );
    let b64 = openssl_ok(&dir, &["base64", "-A", "-in", "req.der"]).stdout;
    let escaped = b64
        .trim()
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let resp = dir.join("get.der");
    let http = s.curl(&[
        "-o",
        resp.to_str().expect("utf-8"),
        &format!("{url}/{escaped}"),
    ]);
    assert_eq!(http.status, 200, "{http:?}");
    let t = text(&openssl(
        &dir,
        &[
            "ocsp",
            "-respin",
            "get.der",
            "-reqin",
            "req.der",
            "-issuer",
            ca_s,
            "-cert",
            cert_s,
            "-CAfile",
            ca_s,
            "-resp_text",
            "-no_nonce",
        ],
    ));
    assert!(
        t.contains("Response verify OK") && t.contains("cert.pem: revoked"),
        "{t}"
    );

    // A serial this CA never issued: unknown.
    let t = text(&openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            ca_s,
            "-serial",
            "0x4142434445464748494a4b4c4d4e4f50",
            "-url",
            &url,
            "-CAfile",
            ca_s,
            "-resp_text",
        ],
    ));
    assert!(t.contains(": unknown"), "{t}");
    assert!(t.contains("Response verify OK"), "{t}");

    // A CA that is not ours: the unsigned RFC 6960 `unauthorized` response (no signed
    // `unknown` a relying party could not verify), alone or beside a CertID of ours.
    // Another enrollment configuration's CA: its own delegated responder signs (verified
    // against that CA).
    common::x509::p256_self_signed(&dir, "foreign.key", "foreign.pem", "/CN=Foreign CA", 2, &[]);
    let t = text(&openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            "foreign.pem",
            "-serial",
            "0x41",
            "-url",
            &url,
            "-resp_text",
        ],
    ));
    assert!(t.contains("Responder Error: unauthorized (6)"), "{t}");
    assert!(!t.contains(": unknown"), "{t}");
    let t = text(&openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            ca_s,
            "-cert",
            cert_s,
            "-issuer",
            "foreign.pem",
            "-serial",
            "0x41",
            "-url",
            &url,
            "-CAfile",
            ca_s,
            "-resp_text",
        ],
    ));
    assert!(t.contains("Responder Error: unauthorized (6)"), "{t}");
    assert!(s.log().contains("unauthorized"), "{}", s.log());
    s.admin_ok(&["enrollment", "add", "second"]);
    let second = s.data_dir.join("ca/second/ca.pem");
    let second_s = second.to_str().unwrap();
    assert_eq!(mode_of(&s.data_dir.join("ca/second/ocsp.key")), 0o600);
    let t = text(&openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            second_s,
            "-serial",
            "0x41",
            "-url",
            &url,
            "-CAfile",
            second_s,
            "-resp_text",
        ],
    ));
    assert!(
        t.contains(": unknown") && t.contains("Response verify OK"),
        "{t}"
    );

    // Garbage: malformedRequest (an OCSP answer, HTTP 200) and a log line.
    let bad = dir.join("bad.der");
    let http = s.curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/ocsp-request",
        "--data-binary",
        "this is not DER",
        "-o",
        bad.to_str().expect("utf-8"),
        &url,
    ]);
    assert_eq!(http.status, 200, "{http:?}");
    assert_eq!(
        fs::read(&bad).expect("bad.der"),
        [0x30, 0x03, 0x0a, 0x01, 0x01]
    );
    let t = text(&openssl(
        &dir,
        &["ocsp", "-respin", "bad.der", "-resp_text", "-noverify"],
    ));
    assert!(t.to_lowercase().contains("malformedrequest"), "{t}");
    assert!(s.log().contains("malformed OCSP request"), "{}", s.log());
    // Undecodable GET: the same.
    let http = s.curl(&[
        "-o",
        bad.to_str().expect("utf-8"),
        &format!("{url}/%25%25notbase64"),
    ]);
    assert_eq!(http.status, 200, "{http:?}");
    assert_eq!(
        fs::read(&bad).expect("bad.der"),
        [0x30, 0x03, 0x0a, 0x01, 0x01]
    );

    // Oversized body: 413 with a stable code; another media type: 415.
    let big = dir.join("big.bin");
    fs::write(&big, vec![0x30u8; 20_000]).expect("write");
    let http = s.curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/ocsp-request",
        "--data-binary",
        &format!("@{}", big.display()),
        &url,
    ]);
    assert_eq!(
        (http.status, http.error_code()),
        (413, "body_too_large"),
        "{http:?}"
    );
    let http = s.curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: text/plain",
        "--data-binary",
        "x",
        &url,
    ]);
    assert_eq!(
        (http.status, http.error_code()),
        (415, "unsupported_media_type"),
        "{http:?}"
    );

    // The PKI listener also serves the CRL and the CA certificate over plain HTTP.
    let http = s.curl(&[&format!("http://127.0.0.1:{pki_port}/pki/ca.pem")]);
    assert!(
        http.status == 200 && http.body.contains("BEGIN CERTIFICATE"),
        "{http:?}"
    );
    let crl = dir.join("crl.der");
    let http = s.curl(&[
        "-o",
        crl.to_str().expect("utf-8"),
        &format!("http://127.0.0.1:{pki_port}/pki/crl.der"),
    ]);
    assert_eq!(http.status, 200, "{http:?}");
    // SCEP is served there too, with the device listener's 64 KiB body limit.
    let caps = s.curl(&[&format!(
        "http://127.0.0.1:{pki_port}/scep?operation=GetCACaps"
    )]);
    assert!(caps.status == 200 && caps.body.contains("AES"), "{caps:?}");
    let big = dir.join("big-scep.bin");
    fs::write(&big, vec![0x30u8; 100 * 1024]).expect("write");
    let http = s.curl(&[
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", big.display()),
        &format!("http://127.0.0.1:{pki_port}/scep?operation=PKIOperation"),
    ]);
    assert_eq!(
        (http.status, http.error_code()),
        (413, "body_too_large"),
        "{http:?}"
    );
    // ... and nothing of the device API.
    let http = s.curl(&[
        "-X",
        "POST",
        &format!("http://127.0.0.1:{pki_port}/api/v1/checkin"),
    ]);
    assert_eq!(http.status, 404, "{http:?}");

    // An existing data directory without an OCSP signer (an upgrade) gets one at start.
    fs::remove_file(s.data_dir.join("ca/ocsp.pem")).expect("rm");
    fs::remove_file(s.data_dir.join("ca/ocsp.key")).expect("rm");
    s.restart();
    assert_eq!(mode_of(&s.data_dir.join("ca/ocsp.key")), 0o600);
    let t = text(&ocsp_query(&s, &cert, &url, &[]));
    assert!(
        t.contains("Response verify OK") && t.contains("cert.pem: revoked"),
        "{t}"
    );
}
