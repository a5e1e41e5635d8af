//! End-to-end tests with third-party TLS clients: `curl` and `openssl s_client` holding an
//! agent-issued certificate, foreign/expired/revoked certificates, the CRL, re-registration,
//! and bad input on the device and admin APIs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Http, Server, block_on, openssl, openssl_ok, refusal, run};
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mutual-mode device (Windows agents always use mutual authentication).
struct Device {
    state: PathBuf,
    id: String,
    uuid: String,
}

impl Device {
    fn cert(&self) -> PathBuf {
        self.state.join("cert.pem")
    }
    fn key(&self) -> PathBuf {
        self.state.join("key.pem")
    }
}

fn mutual_device(s: &Server, name: &str) -> Device {
    let state = s.path(name);
    let st = s.register_ok(&state, "alice", "windows", "agent", "10.0");
    assert_eq!(st["mode"], "mutual", "{st}");
    Device {
        state,
        id: st["device_id"].as_str().unwrap().to_owned(),
        uuid: st["device_uuid"].as_str().unwrap().to_owned(),
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `curl -X POST https://127.0.0.1:P1/api/v1/checkin` with a client certificate.
fn curl_checkin(s: &Server, cert: &Path, key: &Path) -> Http {
    let url = format!("{}/api/v1/checkin", s.device_url());
    s.curl(&["--cert", p(cert), "--key", p(key), "-X", "POST", &url])
}

fn current_serial(s: &Server, id: &str) -> String {
    s.device(id)["current_cert_serial"]
        .as_str()
        .expect("current_cert_serial")
        .to_owned()
}

/// Writes a minimal `openssl ca` setup in `dir` for signing leaves with explicit dates.
fn openssl_ca_config(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let cnf = dir.join("ca.cnf");
    fs::write(
        &cnf,
        "[ca]\ndefault_ca = local\n\
         [local]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = any\nunique_subject = no\nx509_extensions = leaf\n\
         [any]\ncommonName = supplied\n\
         [leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
         extendedKeyUsage = clientAuth\n",
    )
    .unwrap();
    fs::write(dir.join("index.txt"), "").unwrap();
    fs::write(dir.join("serial"), "1000\n").unwrap();
    cnf
}

/// A P-256 key and CSR in `dir` (`{name}.key`, `{name}.csr`).
fn key_and_csr(dir: &Path, name: &str) {
    common::x509::p256_csr(
        dir,
        &format!("{name}.key"),
        &format!("{name}.csr"),
        &format!("/CN={name}"),
        &[],
    );
}

#[test]
fn curl_and_openssl_check_in_with_an_agent_issued_certificate() {
    let s = Server::start();
    s.add_user("alice");
    let d = mutual_device(&s, "laptop");

    let ok = curl_checkin(&s, &d.cert(), &d.key());
    assert_eq!(ok.status, 200, "{ok:?}\n{}", s.log());
    assert_eq!(ok.json["device_id"], d.id.as_str(), "{ok:?}");
    assert_eq!(ok.json["mode"], "mutual", "{ok:?}");
    assert_eq!(ok.json["checkin"]["listener"], "device", "{ok:?}");

    // openssl s_client speaking raw HTTP/1.1 over the mutual-TLS connection.
    let request = format!(
        "POST /api/v1/checkin HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        s.ports.device
    );
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-quiet",
        "-connect",
        &format!("127.0.0.1:{}", s.ports.device),
        "-servername",
        "localhost",
        "-verify_return_error",
        "-CAfile",
        p(&s.ca_pem()),
        "-cert",
        p(&d.cert()),
        "-key",
        p(&d.key()),
    ]);
    let out = run(cmd, Some(request.as_bytes()));
    assert!(
        out.stdout.starts_with("HTTP/1.1 200"),
        "s_client: {out:?}\n{}",
        s.log()
    );
    let body = out.stdout.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(v["device_id"], d.id.as_str());

    // Without a certificate.
    let url = format!("{}/api/v1/checkin", s.device_url());
    let none = s.curl(&["-X", "POST", &url]);
    assert_eq!(none.status, 401, "{none:?}");
    assert_eq!(none.error_code(), "client_certificate_required", "{none:?}");

    // A certificate from a foreign CA (v3, clientAuth), made with the openssl CLI.
    let x = s.path("foreign");
    fs::create_dir_all(&x).unwrap();
    common::x509::p256_ca(&x, "fca.key", "fca.pem", "/CN=Foreign CA", 30);
    key_and_csr(&x, "foreign");
    fs::write(
        x.join("leaf.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl_ok(
        &x,
        &[
            "x509",
            "-req",
            "-in",
            "foreign.csr",
            "-CA",
            "fca.pem",
            "-CAkey",
            "fca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "leaf.ext",
            "-out",
            "foreign.pem",
        ],
    );
    let foreign = curl_checkin(&s, &x.join("foreign.pem"), &x.join("foreign.key"));
    assert_eq!(foreign.status, 401, "{foreign:?}");
    assert_eq!(foreign.error_code(), "certificate_unknown", "{foreign:?}");

    // An expired certificate from the server's own CA (signed with DIR/ca/ca.key).
    let e = s.path("expired");
    let cnf = openssl_ca_config(&e);
    key_and_csr(&e, "expired");
    openssl_ok(
        &e,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            p(&cnf),
            "-cert",
            p(&s.ca_pem()),
            "-keyfile",
            p(&s.data_dir.join("ca/ca.key")),
            "-in",
            "expired.csr",
            "-out",
            "expired.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
        ],
    );
    let expired = curl_checkin(&s, &e.join("expired.pem"), &e.join("expired.key"));
    // It chains to the CA, so TrustStore::verify lets it through as expired (the domain
    // decides about the renewal grace); the domain never recorded it: unknown. (A recorded
    // certificate that expired is `certificate_expired`: lifecycle_faketime.)
    assert_eq!(
        (expired.status, expired.error_code()),
        (401, "certificate_unknown"),
        "{expired:?}"
    );

    // None of the refused attempts was recorded.
    let shown = s.admin_ok(&["devices", "show", &d.id]);
    assert_eq!(
        shown["recent_checkins"].as_array().map(Vec::len),
        Some(2),
        "{shown}"
    );

    // A revoked certificate.
    let serial = current_serial(&s, &d.id);
    let revoked = s.admin_ok(&[
        "certificates",
        "revoke",
        &serial,
        "--reason",
        "key_compromise",
    ]);
    assert_eq!(revoked["status"], "revoked", "{revoked}");
    let refused = curl_checkin(&s, &d.cert(), &d.key());
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.error_code(), "certificate_revoked", "{refused:?}");
    let out = s.checkin(&d.state);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("certificate_revoked"), "{out:?}");
    // Revoking twice is a clear conflict.
    let again = s.admin(&["certificates", "revoke", &serial]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(again.stderr.contains("already_revoked"), "{again:?}");
}

#[test]
fn crl_verifies_with_openssl_and_lists_retired_serials() {
    let s = Server::start();
    s.add_user("alice");
    let d = mutual_device(&s, "laptop");
    let work = s.path("crl");
    fs::create_dir_all(&work).unwrap();

    // The issued certificate: CRL distribution point, clientAuth, device uuid in a SAN URI.
    let text = openssl_ok(&work, &["x509", "-noout", "-text", "-in", p(&d.cert())]).stdout;
    assert!(text.contains("X509v3 CRL Distribution Points"), "{text}");
    let cdp = format!(":{}/pki/crl.der", s.ports.device);
    assert!(text.contains(&cdp), "CDP must point at {cdp}: {text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(
        text.contains(&format!("URI:urn:uuid:{}", d.uuid)),
        "SAN URI with the device uuid: {text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");

    let fetch_crl = |name: &str| -> PathBuf {
        let h = s.curl(&[&format!("{}/pki/crl.pem", s.device_url())]);
        assert_eq!(h.status, 200, "{h:?}");
        assert!(h.body.contains("BEGIN X509 CRL"), "{h:?}");
        let path = work.join(name);
        fs::write(&path, &h.body).unwrap();
        path
    };
    let verify = |crl: &Path| {
        openssl(
            &work,
            &[
                "verify",
                "-crl_check",
                "-CAfile",
                p(&s.ca_pem()),
                "-CRLfile",
                p(crl),
                p(&d.cert()),
            ],
        )
    };

    let crl1 = fetch_crl("crl1.pem");
    let ok = verify(&crl1);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains(": OK"), "{ok:?}");

    let serial = current_serial(&s, &d.id);
    let retired = s.admin_ok(&["devices", "retire", &d.id]);
    assert_eq!(retired["status"], "retired", "{retired}");

    let crl2 = fetch_crl("crl2.pem");
    let bad = verify(&crl2);
    assert_ne!(bad.code, 0, "{bad:?}");
    let all = format!("{}{}", bad.stdout, bad.stderr);
    assert!(all.contains("certificate revoked"), "{bad:?}");
    assert!(all.contains("error 23"), "{bad:?}");

    let listing = openssl_ok(&work, &["crl", "-noout", "-text", "-in", p(&crl2)]).stdout;
    let wanted = serial.to_ascii_uppercase();
    assert!(
        listing.to_ascii_uppercase().contains(&wanted),
        "CRL must list serial {wanted}: {listing}"
    );
    // The CRL is signed by the CA and its number grew.
    openssl_ok(
        &work,
        &["crl", "-noout", "-in", p(&crl2), "-CAfile", p(&s.ca_pem())],
    );
    let number = |crl: &Path| -> String {
        let t = openssl_ok(&work, &["crl", "-noout", "-crlnumber", "-in", p(crl)]).stdout;
        t.trim().to_owned()
    };
    assert_ne!(number(&crl1), number(&crl2));

    // The DER form at the distribution point carries the same list.
    let der = work.join("crl.der");
    let h = s.curl(&["-o", p(&der), &format!("{}/pki/crl.der", s.device_url())]);
    assert_eq!(h.status, 200, "{h:?}");
    let from_der = openssl_ok(
        &work,
        &["crl", "-noout", "-text", "-inform", "DER", "-in", p(&der)],
    )
    .stdout;
    assert!(
        from_der.to_ascii_uppercase().contains(&wanted),
        "{from_der}"
    );

    // The retired device's certificate is refused on every request, not only via the CRL.
    let refused = curl_checkin(&s, &d.cert(), &d.key());
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.error_code(), "device_retired", "{refused:?}");
}

#[test]
fn reregistering_a_device_replaces_and_revokes_its_identity() {
    let s = Server::start();
    s.add_user("alice");
    let d = mutual_device(&s, "laptop");
    let old_serial = current_serial(&s, &d.id);
    let old_cert = s.path("old-cert.pem");
    let old_key = s.path("old-key.pem");
    fs::copy(d.cert(), &old_cert).unwrap();
    fs::copy(d.key(), &old_key).unwrap();
    assert_eq!(curl_checkin(&s, &old_cert, &old_key).status, 200);

    // Same state dir: same device uuid, new key and certificate.
    let st = s.register_ok(&d.state, "alice", "windows", "agent", "10.0");
    assert_eq!(st["device_id"], d.id.as_str(), "device id unchanged: {st}");
    assert_eq!(st["device_uuid"], d.uuid.as_str(), "{st}");
    assert_ne!(
        fs::read(d.key()).unwrap(),
        fs::read(&old_key).unwrap(),
        "a new key is generated"
    );
    let new_serial = current_serial(&s, &d.id);
    assert_ne!(new_serial, old_serial);
    assert_eq!(s.device_total(), 1);

    let old = curl_checkin(&s, &old_cert, &old_key);
    assert_eq!(old.status, 403, "{old:?}");
    assert_eq!(old.error_code(), "certificate_revoked", "{old:?}");
    let c = s.checkin_ok(&d.state);
    assert_eq!(c["device_id"], d.id.as_str());
    let new = curl_checkin(&s, &d.cert(), &d.key());
    assert_eq!(new.status, 200, "{new:?}");

    let certs = s.admin_ok(&["certificates", "list", "--device", &d.id]);
    let items = certs["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{certs}");
    let by_serial = |serial: &str| -> &Value {
        items
            .iter()
            .find(|c| c["serial"] == serial)
            .unwrap_or_else(|| panic!("{serial} not listed: {certs}"))
    };
    assert_eq!(by_serial(&old_serial)["status"], "revoked");
    assert_eq!(by_serial(&old_serial)["revocation_reason"], "superseded");
    assert_eq!(by_serial(&new_serial)["status"], "active");

    // The CRL lists the superseded certificate.
    let crl = s.curl(&[&format!("{}/pki/crl.pem", s.device_url())]);
    let work = s.path("crl");
    fs::create_dir_all(&work).unwrap();
    fs::write(work.join("crl.pem"), &crl.body).unwrap();
    let listing = openssl_ok(&work, &["crl", "-noout", "-text", "-in", "crl.pem"]).stdout;
    assert!(
        listing
            .to_ascii_uppercase()
            .contains(&old_serial.to_ascii_uppercase()),
        "{listing}"
    );
    assert!(
        !listing
            .to_ascii_uppercase()
            .contains(&new_serial.to_ascii_uppercase()),
        "{listing}"
    );
}

fn register_body(overrides: &[(&str, Value)]) -> String {
    let mut body = serde_json::json!({
        "username": "alice",
        "password": common::PASSWORD,
        "platform": "android",
        "client_kind": "agent",
        "client_version": "10.1.0",
        "device_uuid": "6f1c2a3e-1111-4000-8000-000000000001",
    });
    for (k, v) in overrides {
        if v.is_null() {
            body.as_object_mut().unwrap().remove(*k);
        } else {
            body[*k] = v.clone();
        }
    }
    body.to_string()
}

#[test]
fn bad_registration_input_gets_a_json_error_and_leaves_no_state() {
    let s = Server::start();
    s.add_user("alice");
    let users_before = s.admin_ok(&["users", "list"]);
    let certs_total = || s.admin_ok(&["certificates", "list"])["total"].clone();
    let certs_before = certs_total();
    let big = s.path("big.json");
    {
        let mut f = fs::File::create(&big).unwrap();
        f.write_all(br#"{"username":""#).unwrap();
        f.write_all(&vec![b'a'; 70 * 1024]).unwrap();
        f.write_all(br#""}"#).unwrap();
    }
    let big_arg = format!("@{}", p(&big));
    let url = format!("{}/api/v1/register", s.device_url());

    let cases: Vec<(&str, Http, u16, &str)> = vec![
        ("malformed JSON", s.curl_register("{\"username\": "), 400, "bad_request"),
        ("not an object", s.curl_register("[1,2,3]"), 400, "bad_request"),
        (
            "wrong types",
            s.curl_register(&register_body(&[("username", Value::from(42))])),
            400,
            "bad_request",
        ),
        (
            "missing field",
            s.curl_register(&register_body(&[("platform", Value::Null)])),
            400,
            "bad_request",
        ),
        (
            "unknown field",
            s.curl_register(&register_body(&[("admin", Value::from(true))])),
            400,
            "bad_request",
        ),
        (
            "unknown platform",
            s.curl_register(&register_body(&[("platform", Value::from("beos"))])),
            400,
            "bad_request",
        ),
        (
            "no content type",
            s.curl(&["-X", "POST", "--data-binary", &register_body(&[]), &url]),
            400,
            "bad_request",
        ),
        (
            "malformed CSR",
            s.curl_register(&register_body(&[("csr_pem", Value::from("garbage"))])),
            400,
            "invalid_csr",
        ),
        (
            "PEM-looking CSR with garbage inside",
            s.curl_register(&register_body(&[(
                "csr_pem",
                Value::from(
                    "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                ),
            )])),
            400,
            "invalid_csr",
        ),
        (
            "bad device uuid",
            s.curl_register(&register_body(&[("device_uuid", Value::from("not-a-uuid"))])),
            400,
            "invalid_device_uuid",
        ),
        (
            "bad version",
            s.curl_register(&register_body(&[("client_version", Value::from("ten"))])),
            400,
            "invalid_version",
        ),
        (
            "wrong password",
            s.curl_register(&register_body(&[("password", Value::from("wrong-password"))])),
            401,
            "invalid_credentials",
        ),
        (
            "unknown user",
            s.curl_register(&register_body(&[("username", Value::from("mallory"))])),
            401,
            "invalid_credentials",
        ),
        (
            "client outside the tables",
            s.curl_register(&register_body(&[("client_kind", Value::from("mdm"))])),
            400,
            "unsupported_client",
        ),
        (
            "mutual client without CSR",
            s.curl_register(&register_body(&[("platform", Value::from("windows"))])),
            400,
            "csr_required",
        ),
        (
            "oversized body",
            s.curl(&[
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "--data-binary",
                &big_arg,
                &url,
            ]),
            413,
            "body_too_large",
        ),
    ];
    for (name, h, status, code) in &cases {
        assert_eq!(h.status, *status, "{name}: {h:?}");
        assert_eq!(h.error_code(), *code, "{name}: {h:?}");
        assert!(
            h.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: error message: {h:?}"
        );
        assert_eq!(s.device_total(), 0, "{name}: no device may be written");
    }
    assert_eq!(certs_total(), certs_before, "no certificate may be issued");
    assert_eq!(s.admin_ok(&["users", "list"]), users_before);

    // The same body with the defects fixed registers (legacy Android, no CSR needed).
    let ok = s.curl_register(&register_body(&[]));
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.json["mode"], "legacy", "{ok:?}");
    assert_eq!(s.device_total(), 1);
}

#[test]
fn admin_api_requires_the_token_and_serves_openapi() {
    let s = Server::start();
    let devices = format!("{}/api/v1/admin/devices", s.admin_url());

    let none = s.curl(&[&devices]);
    assert_eq!(none.status, 401, "{none:?}");
    assert_eq!(none.error_code(), "unauthorized", "{none:?}");

    let wrong = s.admin_client_with_token("0123456789abcdef");
    let refused = refusal(block_on(wrong.devices(&Default::default())));
    assert_eq!(refused, (401, "unauthorized".into()));

    let admin = s.admin_client();
    let page = block_on(admin.devices(&Default::default())).expect("device list");
    assert_eq!((page.total, page.items.len()), (0, 0));

    // Token-protected mutations refuse without it too.
    let enable = s.curl(&[
        "-X",
        "POST",
        &format!("{}/api/v1/admin/settings/mutual-auth/enable", s.admin_url()),
    ]);
    assert_eq!(enable.status, 401, "{enable:?}");
    assert_eq!(
        s.admin_ok(&["settings", "show"])["mutual_auth_enabled"],
        false
    );

    // The CLI with a wrong --token.
    let out = s.admin(&["--token", "wrong", "devices", "list"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("unauthorized"), "{out:?}");

    // The admin API is not served on the device listener.
    let auth = format!("authorization: Bearer {}", s.admin_token());
    let elsewhere = s.curl(&[
        "-H",
        &auth,
        &format!("{}/api/v1/admin/devices", s.device_url()),
    ]);
    assert_eq!(elsewhere.status, 404, "{elsewhere:?}");
    assert_eq!(elsewhere.error_code(), "not_found", "{elsewhere:?}");

    let doc = block_on(admin.openapi()).expect("openapi.json is JSON");
    assert!(doc["openapi"].is_string(), "{doc}");
    assert!(
        doc["paths"]
            .as_object()
            .is_some_and(|p| p.keys().any(|k| k.starts_with("/api/v1/admin/"))),
        "the document describes the admin API: {doc}"
    );
}

/// Reads one HTTP/1.1 response (headers + `content-length` body) from `rx`, into `buf`.
fn read_response(
    rx: &std::sync::mpsc::Receiver<Vec<u8>>,
    buf: &mut Vec<u8>,
) -> Option<(u16, Value)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = String::from_utf8_lossy(buf).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let head = &text[..head_end];
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + len {
                let body = buf[head_end + 4..head_end + 4 + len].to_vec();
                buf.drain(..head_end + 4 + len);
                let status = head.split(' ').nth(1)?.parse().ok()?;
                return Some((status, serde_json::from_slice(&body).unwrap_or(Value::Null)));
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => buf.extend_from_slice(&chunk),
            Err(_) => return None,
        }
    }
}

#[test]
fn revocation_is_enforced_on_an_open_keep_alive_connection() {
    use std::io::Read;
    use std::process::Stdio;
    let s = Server::start();
    s.add_user("alice");
    let d = mutual_device(&s, "laptop");
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &format!("127.0.0.1:{}", s.ports.device),
            "-CAfile",
            p(&s.ca_pem()),
            "-cert",
            p(&d.cert()),
            "-key",
            p(&d.key()),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut chunk) {
            if n == 0 || tx.send(chunk[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let request = format!(
        "POST /api/v1/checkin HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n",
        s.ports.device
    );
    let mut buf = Vec::new();
    stdin.write_all(request.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let first = read_response(&rx, &mut buf);
    let second = first.as_ref().map(|_| {
        s.admin_ok(&["certificates", "revoke", &current_serial(&s, &d.id)]);
        // Same TLS connection, same certificate, after the revocation.
        stdin.write_all(request.as_bytes()).unwrap();
        stdin.flush().unwrap();
        read_response(&rx, &mut buf)
    });
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let (status, body) = first.expect("no answer to the first request");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["device_id"], d.id.as_str());
    let (status, body) = second
        .flatten()
        .expect("no answer to the second request on the same connection");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "certificate_revoked", "{body}");
}

#[test]
fn a_retired_device_can_register_again() {
    let s = Server::start();
    s.add_user("alice");
    let d = mutual_device(&s, "laptop");
    s.admin_ok(&["devices", "retire", &d.id]);
    let out = s.checkin(&d.state);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("device_retired"), "{out:?}");

    let st = s.register_ok(&d.state, "alice", "windows", "agent", "10.0");
    assert_eq!(st["device_uuid"], d.uuid.as_str());
    let c = s.checkin_ok(&d.state);
    assert_eq!(c["device_id"], st["device_id"]);
    let shown = s.device(st["device_id"].as_str().unwrap());
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(s.device_total(), 1);
}

#[test]
fn concurrent_registrations_of_one_device_uuid_leave_one_consistent_identity() {
    let server = Server::start();
    let s = &server;
    s.add_user("alice");
    let ca = s.ca_pem();
    for round in 0..2 {
        let uuid = format!("0a0b0c0d-0000-4000-8000-00000000000{round}");
        let outs: Vec<common::Out> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let state = s.path(&format!("r{round}-{i}"));
                    let (ca, uuid, url) = (&ca, &uuid, s.device_url());
                    let s = &server;
                    scope.spawn(move || {
                        s.agent(
                            &state,
                            &[
                                "register",
                                "--url",
                                &url,
                                "--ca",
                                p(ca),
                                "--user",
                                "alice",
                                "--password",
                                common::PASSWORD,
                                "--platform",
                                "windows",
                                "--client-kind",
                                "agent",
                                "--client-version",
                                "10.0",
                                "--device-uuid",
                                uuid,
                            ],
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for out in &outs {
            assert!(
                !out.stderr.contains("internal"),
                "round {round}: a registration racing another one for the same device uuid \
                 failed with an internal error: {out:?}\nserver log:\n{}",
                s.log()
            );
        }
        let devices = s.devices();
        let same: Vec<&Value> = devices["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["device_uuid"] == uuid.as_str())
            .collect();
        assert_eq!(same.len(), 1, "one device per uuid: {devices}");
        let id = same[0]["device_id"].as_str().unwrap();
        let certs = s.admin_ok(&["certificates", "list", "--device", id]);
        let active: Vec<&Value> = certs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "active")
            .collect();
        assert_eq!(active.len(), 1, "one active certificate: {certs}");
        assert_eq!(
            active[0]["serial"], same[0]["current_cert_serial"],
            "{certs}"
        );
    }
}
