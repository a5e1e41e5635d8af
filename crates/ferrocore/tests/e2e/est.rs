//! EST (RFC 7030), black-box with curl and openssl: cacerts and csrattrs; simpleenroll with
//! HTTP Basic and with one-time tokens (Bearer and Basic-with-empty-user; reuse refused);
//! the enrolled certificate checks in over mutual TLS as a device and re-enrolls over mutual
//! TLS; wrong credentials, media type, garbage, oversize and foreign devices get clear errors.
//! Tokens as enrollment grants: listed, revoked (then refused like unknown ones), consumed
//! ones not revocable (`grant_consumed`), SCEP challenges refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

const DEV_UUID: &str = "5b2d3c4e-1f20-4a6b-9c8d-7e6f5a4b3c2d";

/// A P-256 key and a base64 (CRLF-wrapped) DER CSR with subject CN=`cn`, made by openssl.
fn make_csr(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let key = format!("{name}.key");
    let der = format!("{name}.csr.der");
    x509::p256_csr(dir, &key, &der, &format!("/CN={cn}"), &["-outform", "DER"]);
    (dir.join(key), x509::est_body(dir, &der))
}

fn est_url(s: &Server, op: &str) -> String {
    format!("{}/.well-known/est/{op}", s.device_url())
}

/// POSTs `body` to an EST operation with extra curl arguments; headers land in `hdr`.
fn est_post(s: &Server, op: &str, body: &Path, extra: &[&str]) -> Http {
    let data = format!("@{}", body.display());
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        &data,
    ];
    args.extend_from_slice(extra);
    let url = est_url(s, op);
    args.push(&url);
    s.curl(&args)
}

/// Decodes a base64 certs-only PKCS#7 answer into PEM certificates (openssl).
fn print_certs(s: &Server, body: &str, name: &str) -> String {
    let dir = s.path("");
    fs::write(dir.join(format!("{name}.p7.b64")), body).unwrap();
    openssl_ok(
        &dir,
        &[
            "base64",
            "-d",
            "-in",
            &format!("{name}.p7.b64"),
            "-out",
            &format!("{name}.p7.der"),
        ],
    );
    openssl_ok(
        &dir,
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            &format!("{name}.p7.der"),
            "-print_certs",
            "-out",
            &format!("{name}.pem"),
        ],
    );
    fs::read_to_string(dir.join(format!("{name}.pem"))).unwrap()
}

fn checkin_with(s: &Server, cert: &Path, key: &Path) -> Http {
    s.curl(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "-X",
        "POST",
        &format!("{}/api/v1/checkin", s.device_url()),
    ])
}

fn cert_of_device(s: &Server, device_id: &str) -> serde_json::Value {
    let list = s.admin_ok(&["certificates", "list", "--device", device_id]);
    list["items"].as_array().unwrap().last().cloned().unwrap()
}

#[test]
fn est_enroll_with_password_and_tokens_checkin_and_reenroll() {
    let s = Server::start();
    s.add_user("alice");
    s.add_user("bob");
    // Certificates valid 30 days are inside the (60-day) renewal window at once, so the
    // re-enrollment below is allowed by the lifecycle rules.
    s.admin_ok(&["policies", "set", "default", "--cert-lifetime-days", "30"]);
    let dir = s.path("");

    // cacerts: the local CA as base64 certs-only PKCS#7.
    let ca = s.curl(&[&est_url(&s, "cacerts")]);
    assert_eq!(ca.status, 200, "{ca:?}");
    let pem = print_certs(&s, &ca.body, "cacerts");
    assert!(pem.contains("subject=CN = Ferrocore Local CA"), "{pem}");
    // csrattrs: base64 DER naming ecdsa-with-SHA256.
    let attrs = s.curl(&[&est_url(&s, "csrattrs")]);
    assert_eq!(attrs.status, 200, "{attrs:?}");
    fs::write(dir.join("attrs.b64"), &attrs.body).unwrap();
    let parsed = openssl_ok(&dir, &["asn1parse", "-in", "attrs.b64"]);
    assert!(parsed.stdout.contains("ecdsa-with-SHA256"), "{parsed:?}");

    // simpleenroll with HTTP Basic: the CSR's CN is the device UUID.
    let (key1, csr1) = make_csr(&dir, "dev1", DEV_UUID);
    let auth = format!("alice:{PASSWORD}");
    let r = est_post(&s, "simpleenroll", &csr1, &["-u", &auth]);
    assert_eq!(r.status, 200, "{r:?}\n{}", s.log());
    let pem = print_certs(&s, &r.body, "dev1");
    assert!(pem.contains("CN = alice"), "{pem}");
    let cert1 = dir.join("dev1.pem");
    let devices = s.devices();
    let d = devices["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_uuid"] == DEV_UUID)
        .cloned()
        .unwrap_or_else(|| panic!("EST device not listed: {devices}"));
    assert_eq!(
        (
            &d["username"],
            &d["platform"],
            &d["mode"],
            &d["client_kind"]
        ),
        (
            &"alice".into(),
            &"windows".into(),
            &"mutual".into(),
            &"agent".into()
        ),
        "{d}"
    );
    let id = d["device_id"].as_str().unwrap().to_owned();
    assert_eq!(cert_of_device(&s, &id)["issue_reason"], "est");

    // The enrolled certificate checks in over mutual TLS as that device.
    let c = checkin_with(&s, &cert1, &key1);
    assert_eq!(c.status, 200, "{c:?}\n{}", s.log());
    assert_eq!(c.json["device_id"], id.as_str(), "{c:?}");
    assert_eq!(c.json["mode"], "mutual");

    // simplereenroll over mutual TLS with a new key; the new certificate checks in.
    let (key2, csr2) = make_csr(&dir, "dev2", DEV_UUID);
    let no_cert = est_post(&s, "simplereenroll", &csr2, &[]);
    assert_eq!(
        (no_cert.status, no_cert.error_code()),
        (401, "client_certificate_required"),
        "{no_cert:?}"
    );
    let same_key = est_post(
        &s,
        "simplereenroll",
        &csr1,
        &[
            "--cert",
            cert1.to_str().unwrap(),
            "--key",
            key1.to_str().unwrap(),
        ],
    );
    assert_eq!(
        (same_key.status, same_key.error_code()),
        (400, "same_key"),
        "{same_key:?}"
    );
    let r = est_post(
        &s,
        "simplereenroll",
        &csr2,
        &[
            "--cert",
            cert1.to_str().unwrap(),
            "--key",
            key1.to_str().unwrap(),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}\n{}", s.log());
    print_certs(&s, &r.body, "dev2");
    let cert2 = dir.join("dev2.pem");
    let renewed = cert_of_device(&s, &id);
    assert_eq!(renewed["issue_reason"], "est_renewal", "{renewed}");
    let c = checkin_with(&s, &cert2, &key2);
    assert_eq!(
        (c.status, c.json["device_id"].as_str()),
        (200, Some(id.as_str())),
        "{c:?}"
    );
    // The first check-in with the new certificate superseded the old one.
    let old = checkin_with(&s, &cert1, &key1);
    assert_eq!(old.status, 403, "{old:?}");

    // Android and iOS agents authenticate with a certificate only once mutual
    // authentication is on (Table 4; before, EST refuses them: rules_e2e).
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    // A one-time token (Bearer) for an Android device: enrolls once, reuse is refused.
    let t = s.admin_ok(&[
        "est-token",
        "create",
        "--user",
        "alice",
        "--platform",
        "android",
        "--ttl",
        "1h",
    ]);
    let token = t["token"].as_str().unwrap().to_owned();
    assert!(
        t["expires_at"].as_i64().unwrap() - t["created_at"].as_i64().unwrap() == 3600,
        "{t}"
    );
    let (_, csr3) = make_csr(&dir, "dev3", "phone-three");
    let bearer = format!("Authorization: Bearer {token}");
    let r = est_post(&s, "simpleenroll", &csr3, &["-H", &bearer]);
    assert_eq!(r.status, 200, "{r:?}\n{}", s.log());
    assert!(print_certs(&s, &r.body, "dev3").contains("CN = alice"));
    let hdr = dir.join("reuse.hdr");
    let reuse = est_post(
        &s,
        "simpleenroll",
        &csr3,
        &["-H", &bearer, "-D", hdr.to_str().unwrap()],
    );
    assert_eq!(
        (reuse.status, reuse.error_code()),
        (401, "est_token_invalid"),
        "{reuse:?}"
    );
    assert!(
        fs::read_to_string(&hdr)
            .unwrap()
            .to_lowercase()
            .contains("www-authenticate: basic")
    );
    let android = s.devices()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["platform"] == "android")
        .count();
    assert_eq!(android, 1);

    // A token bound to a device UUID, sent as Basic with an empty user name.
    let bound = "0f0e0d0c-0b0a-4908-8706-050403020100";
    let t = s.admin_ok(&[
        "est-token",
        "create",
        "--user",
        "bob",
        "--platform",
        "ios",
        "--device-uuid",
        bound,
    ]);
    let (_, csr4) = make_csr(&dir, "dev4", "anything");
    let r = est_post(
        &s,
        "simpleenroll",
        &csr4,
        &["-u", &format!(":{}", t["token"].as_str().unwrap())],
    );
    assert_eq!(r.status, 200, "{r:?}\n{}", s.log());
    let devices = s.devices();
    let d = devices["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_uuid"] == bound)
        .cloned();
    let d = d.unwrap_or_else(|| panic!("{devices}"));
    assert_eq!(
        (&d["username"], &d["platform"]),
        (&"bob".into(), &"ios".into()),
        "{d}"
    );

    // Errors: wrong credentials, no credentials, another user's device, media type,
    // garbage, a non-CSR, oversize, unknown tokens and labels.
    let (_, csr5) = make_csr(&dir, "dev5", DEV_UUID);
    let hdr = dir.join("wrong.hdr");
    let wrong = est_post(
        &s,
        "simpleenroll",
        &csr5,
        &["-u", "alice:wrong-password", "-D", hdr.to_str().unwrap()],
    );
    assert_eq!(
        (wrong.status, wrong.error_code()),
        (401, "invalid_credentials"),
        "{wrong:?}"
    );
    assert!(
        fs::read_to_string(&hdr)
            .unwrap()
            .to_lowercase()
            .contains("www-authenticate: basic")
    );
    let none = est_post(&s, "simpleenroll", &csr5, &[]);
    assert_eq!(
        (none.status, none.error_code()),
        (401, "unauthorized"),
        "{none:?}"
    );
    let bobs = est_post(
        &s,
        "simpleenroll",
        &csr5,
        &["-u", &format!("bob:{PASSWORD}")],
    );
    assert_eq!(
        (bobs.status, bobs.error_code()),
        (403, "device_of_another_user"),
        "{bobs:?}"
    );
    let unknown = est_post(
        &s,
        "simpleenroll",
        &csr5,
        &["-H", "Authorization: Bearer est_nope"],
    );
    assert_eq!(
        (unknown.status, unknown.error_code()),
        (401, "est_token_invalid"),
        "{unknown:?}"
    );
    let r = s.curl(&[
        "-X",
        "POST",
        "-u",
        &auth,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &format!("@{}", csr5.display()),
        &est_url(&s, "simpleenroll"),
    ]);
    assert_eq!(
        (r.status, r.error_code()),
        (415, "unsupported_media_type"),
        "{r:?}"
    );
    let garbage = dir.join("garbage.b64");
    fs::write(&garbage, "this is %% not base64 !!").unwrap();
    let r = est_post(&s, "simpleenroll", &garbage, &["-u", &auth]);
    assert_eq!(
        (r.status, r.error_code()),
        (400, "est_body_not_base64"),
        "{r:?}"
    );
    let not_csr = dir.join("notcsr.b64");
    fs::write(&not_csr, "MAMCAQE=\r\n").unwrap();
    let r = est_post(&s, "simpleenroll", &not_csr, &["-u", &auth]);
    assert_eq!((r.status, r.error_code()), (400, "invalid_csr"), "{r:?}");
    let big = dir.join("big.b64");
    fs::write(&big, "QUFB".repeat(30_000)).unwrap();
    let r = est_post(&s, "simpleenroll", &big, &["-u", &auth]);
    assert_eq!((r.status, r.error_code()), (413, "body_too_large"), "{r:?}");
    let r = est_post(&s, "toaster/simpleenroll", &csr5, &["-u", &auth]);
    assert_eq!((r.status, r.error_code()), (404, "not_found"), "{r:?}");
    // A labelled enrollment takes its platform from the label.
    let (_, csr6) = make_csr(&dir, "dev6", "mac-six");
    let r = est_post(&s, "macos/simpleenroll", &csr6, &["-u", &auth]);
    assert_eq!(r.status, 200, "{r:?}");
    let macs = s.devices()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["platform"] == "macos")
        .count();
    assert_eq!(macs, 1);
}

/// EST tokens are enrollment grants: `grant list` shows an outstanding one (never its
/// secret), `grant revoke` makes curl's enrollment fail exactly like an unknown token, a
/// consumed one cannot be revoked (409 `grant_consumed`), and a SCEP challenge is no token.
#[test]
fn est_token_grant_is_listed_revoked_and_then_refused() {
    let s = Server::start();
    s.add_user("alice");
    s.add_user("bob");
    let dir = s.path("");
    let t = s.admin_ok(&[
        "est-token",
        "create",
        "--user",
        "alice",
        "--platform",
        "android",
    ]);
    let id = t["id"].as_str().unwrap().to_owned();
    let token = t["token"].as_str().unwrap().to_owned();
    let c = s.admin_ok(&[
        "scep-challenge",
        "create",
        "--user",
        "bob",
        "--platform",
        "ios",
    ]);
    let scep_id = c["id"].as_str().unwrap().to_owned();

    // Both outstanding grants, newest first, without their secrets; filters and paging.
    let list = s.admin_ok(&["grant", "list"]);
    assert_eq!(list["total"], 2, "{list}");
    assert!(!list.to_string().contains(&token), "{list}");
    let g = &list["items"][1];
    assert_eq!(
        [
            &g["id"],
            &g["state"],
            &g["protocol"],
            &g["username"],
            &g["platform"]
        ],
        [
            &t["id"],
            &"active".into(),
            &"est".into(),
            &"alice".into(),
            &"android".into()
        ],
        "{g}"
    );
    assert_eq!(s.grant_ids(&[]), [scep_id.clone(), id.clone()]);
    let filtered = ["--state", "active", "--protocol", "est", "--user", "alice"];
    assert_eq!(s.grant_ids(&filtered), [id.as_str()]);
    assert_eq!(
        s.grant_ids(&["--limit", "1", "--offset", "1"]),
        [id.as_str()]
    );
    let bad = s.admin(&["grant", "list", "--state", "pending"]);
    assert!(
        bad.code != 0 && bad.stderr.contains("bad_request"),
        "{bad:?}"
    );

    // A SCEP challenge is not an EST token.
    let (_, body) = make_csr(&dir, "g1", "grant-one");
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let r = est_post(
        &s,
        "simpleenroll",
        &body,
        &["-H", &bearer(c["challenge"].as_str().unwrap())],
    );
    assert_eq!(
        (r.status, r.error_code()),
        (401, "est_token_invalid"),
        "{r:?}"
    );

    // Revoked: listed as revoked; curl is refused exactly like with an unknown token and
    // nothing is enrolled.
    let revoked = s.admin_ok(&["grant", "revoke", &id]);
    assert_eq!(revoked["state"], "revoked", "{revoked}");
    assert!(revoked["revoked_at"].as_i64().is_some(), "{revoked}");
    assert_eq!(s.admin_ok(&["grant", "show", &id])["state"], "revoked");
    let total = s.device_total();
    let r = est_post(&s, "simpleenroll", &body, &["-H", &bearer(&token)]);
    assert_eq!(
        (r.status, r.error_code()),
        (401, "est_token_invalid"),
        "{r:?}"
    );
    let unknown = est_post(&s, "simpleenroll", &body, &["-H", &bearer("est_unknown")]);
    assert_eq!((r.status, &r.json), (unknown.status, &unknown.json));
    assert_eq!(s.device_total(), total);
    assert_eq!(s.grant_ids(&["--state", "revoked"]), [id.as_str()]);
    assert_eq!(s.grant_ids(&["--state", "active"]), [scep_id]);

    // A token that paid for a certificate is consumed and cannot be revoked.
    let t2 = s.admin_ok(&[
        "est-token",
        "create",
        "--user",
        "alice",
        "--platform",
        "windows",
    ]);
    let id2 = t2["id"].as_str().unwrap();
    let (_, body2) = make_csr(&dir, "g2", "grant-two");
    let r = est_post(
        &s,
        "simpleenroll",
        &body2,
        &["-H", &bearer(t2["token"].as_str().unwrap())],
    );
    assert_eq!(r.status, 200, "{r:?}\n{}", s.log());
    let g = s.admin_ok(&["grant", "show", id2]);
    let certs = s.admin_ok(&["certificates", "list"]);
    let cert = certs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["issue_reason"] == "est")
        .cloned()
        .unwrap_or_else(|| panic!("no EST certificate: {certs}"));
    assert_eq!(
        [&g["state"], &g["cert_serial"], &g["device_id"]],
        [&"consumed".into(), &cert["serial"], &cert["device_id"]],
        "{g}\n{cert}"
    );
    let admin = s.admin_client();
    let refused = refusal(block_on(admin.revoke_grant(id2)));
    assert_eq!(refused, (409, "grant_consumed".into()));
    let out = s.admin(&["grant", "revoke", id2]);
    assert!(
        out.code != 0 && out.stderr.contains("grant_consumed"),
        "{out:?}"
    );
    assert_eq!(s.admin_ok(&["grant", "show", id2])["state"], "consumed");
    let refused = refusal(block_on(admin.revoke_grant("no-such-grant")));
    assert_eq!(refused, (404, "not_found".into()));
}

/// Deleting a user revokes their outstanding grants in the same transaction: curl's
/// enrollment with the deleted user's token is refused exactly like an unknown token, nothing
/// is enrolled, and the grant is listed as revoked.
#[test]
fn est_token_of_a_deleted_user_is_refused() {
    let s = Server::start();
    s.add_user("carol");
    let dir = s.path("");
    let t = s.admin_ok(&[
        "est-token",
        "create",
        "--user",
        "carol",
        "--platform",
        "android",
    ]);
    let id = t["id"].as_str().unwrap().to_owned();
    let token = t["token"].as_str().unwrap().to_owned();
    s.admin_ok(&["users", "remove", "carol"]);
    assert_eq!(s.admin_ok(&["grant", "show", &id])["state"], "revoked");

    let (_, body) = make_csr(&dir, "gone", "deleted-user");
    let total = s.device_total();
    let r = est_post(
        &s,
        "simpleenroll",
        &body,
        &["-H", &format!("Authorization: Bearer {token}")],
    );
    assert_eq!(
        (r.status, r.error_code()),
        (401, "est_token_invalid"),
        "{r:?}"
    );
    let unknown = est_post(
        &s,
        "simpleenroll",
        &body,
        &["-H", "Authorization: Bearer est_unknown"],
    );
    assert_eq!((r.status, &r.json), (unknown.status, &unknown.json));
    assert_eq!(s.device_total(), total);
}
