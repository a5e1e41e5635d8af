//! Trusted front ends, black-box: real nginx and real haproxy terminate TLS in front of the
//! device listener and forward the client certificate; curl plays forging clients and the
//! RFC 9440 / Envoy forms. The proxy configurations are `docs/deployment/nginx.conf` and
//! `docs/deployment/haproxy.cfg`, rendered here from the very files the documentation shows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use crate::common::x509;
use common::*;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn docs_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name)
}

fn template(name: &str) -> String {
    let p = docs_file(&format!("deployment/{name}"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn render(name: &str, vars: &[(&str, String)]) -> String {
    let mut t = template(name);
    for (k, v) in vars {
        t = t.replace(&format!("{{{{{k}}}}}"), v);
    }
    assert!(!t.contains("{{"), "unfilled placeholder in {name}:\n{t}");
    t
}

/// A proxy process, stopped (SIGTERM, so nginx's master takes its workers down) when dropped.
struct Proxy {
    child: Child,
    log: PathBuf,
}

impl Proxy {
    fn start(mut cmd: Command, port: u16, log: PathBuf) -> Proxy {
        let f = std::fs::File::create(&log).expect("proxy log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(f.try_clone().expect("log")))
            .stderr(Stdio::from(f))
            .spawn()
            .expect("spawn proxy");
        let mut p = Proxy { child, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return p;
            }
            if let Ok(Some(st)) = p.child.try_wait() {
                panic!("proxy exited ({st}): {}", p.log());
            }
            assert!(
                Instant::now() < deadline,
                "proxy not listening: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = common::terminate(&mut self.child);
    }
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

/// A self-signed certificate for the front end's own connection; returns (cert, key, sha256).
fn front_end_cert(dir: &Path) -> (PathBuf, PathBuf, String) {
    x509::p256_self_signed(dir, "fe.key", "fe.pem", "/CN=front end", 2, &[]);
    let out = openssl_ok(
        dir,
        &["x509", "-in", "fe.pem", "-noout", "-fingerprint", "-sha256"],
    );
    let fp = out
        .stdout
        .trim()
        .split_once('=')
        .expect("fingerprint line")
        .1
        .to_owned();
    (dir.join("fe.pem"), dir.join("fe.key"), fp)
}

/// DER of the first certificate in a PEM file.
fn der_of(pem_path: &Path) -> Vec<u8> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(pem_path).expect("pem");
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}

fn b64(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// nginx's `$ssl_client_escaped_cert` form of a PEM file.
fn escaped_pem(pem_path: &Path) -> String {
    let text = std::fs::read_to_string(pem_path).expect("pem");
    let pem: String = text
        .split_inclusive('\n')
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .collect::<String>();
    let end = pem.find("-----END CERTIFICATE-----").expect("end") + 26;
    ferrocore_proto::percent::encode(&pem[..end])
}

/// curl POST to `url`'s check-in endpoint with extra curl args.
fn checkin_curl(srv: &Server, base: &str, args: &[&str]) -> Http {
    let url = format!("{base}/api/v1/checkin");
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["-X", "POST", url.as_str()]);
    srv.curl(&a)
}

fn register_via(srv: &Server, url: &str, state: &Path) -> serde_json::Value {
    let ca = srv.ca_pem();
    let out = srv.agent(
        state,
        &[
            "register",
            "--url",
            url,
            "--ca",
            &s(&ca),
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
        ],
    );
    assert_eq!(out.code, 0, "register via {url}: {out:?}\n{}", srv.log());
    out.json
}

fn current_serial(srv: &Server, state: &Path) -> String {
    let id = agent_state(state)["device_id"]
        .as_str()
        .expect("device_id")
        .to_owned();
    let certs = srv.admin_ok(&["certificates", "list", "--device", &id]);
    let items = certs["items"].as_array().expect("items");
    items
        .iter()
        .find(|c| c["status"] == "active")
        .and_then(|c| c["serial"].as_str())
        .unwrap_or_else(|| panic!("no current certificate: {certs}"))
        .to_owned()
}

/// Every form of forwarded certificate, as curl header arguments, for the cert at `pem`.
fn forms(pem: &Path) -> Vec<(&'static str, String)> {
    let der = der_of(pem);
    vec![
        ("rfc9440", format!("Client-Cert: :{}:", b64(&der))),
        ("nginx", format!("X-SSL-Client-Cert: {}", escaped_pem(pem))),
        ("haproxy", format!("X-SSL-Client-Cert: {}", b64(&der))),
        (
            "envoy",
            format!(
                "X-Forwarded-Client-Cert: By=spiffe://mdm/ferrocore;Hash=00;Cert=\"{}\";Subject=\"CN=x\"",
                escaped_pem(pem)
            ),
        ),
    ]
}

#[test]
fn deployment_doc_shows_the_tested_configurations() {
    let doc = std::fs::read_to_string(docs_file("deployment.md")).expect("docs/deployment.md");
    for name in ["nginx.conf", "haproxy.cfg"] {
        assert!(
            doc.contains(template(name).trim_end()),
            "docs/deployment.md must embed docs/deployment/{name} verbatim"
        );
    }
}

#[test]
fn nginx_in_front_of_the_device_listener() {
    let work = tempfile::tempdir().expect("tempdir");
    let (fe_pem, fe_key, fp) = front_end_cert(work.path());
    let port = free_port();
    let port_s = port.to_string();
    let srv = Server::start_with_env(&[
        ("FERROCORE_FRONT_ENDS_TRUSTED", "127.0.0.1/32"),
        (
            "FERROCORE_FRONT_ENDS_HEADERS",
            "x-ssl-client-cert,client-cert",
        ),
        ("FERROCORE_FRONT_ENDS_CLIENT_CERT_SHA256", &fp),
        ("FERROCORE_SERVER_PUBLIC_DEVICE_PORT", &port_s),
    ]);
    srv.add_user("alice");
    srv.admin_ok(&["settings", "mutual-auth", "enable"]);

    let conf = render(
        "nginx.conf",
        &[
            ("RUN_DIR", s(work.path())),
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("DATA_DIR", s(&srv.data_dir)),
            ("UPSTREAM", format!("127.0.0.1:{}", srv.ports.device)),
            ("UPSTREAM_NAME", "localhost".into()),
            ("FRONT_END_CERT", s(&fe_pem)),
            ("FRONT_END_KEY", s(&fe_key)),
        ],
    );
    let conf_path = work.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write nginx.conf");
    let mut cmd = Command::new("nginx");
    cmd.arg("-p").arg(work.path()).arg("-c").arg(&conf_path);
    let nginx = Proxy::start(cmd, port, work.path().join("nginx.log"));
    let proxy = format!("https://127.0.0.1:{port}");

    // The real agent registers and checks in through nginx: the server announces nginx's port.
    let phone = srv.path("phone");
    let reg = register_via(&srv, &proxy, &phone);
    assert_eq!(reg["mode"], "mutual", "{reg}");
    let c = srv.checkin_ok(&phone);
    assert_eq!(c["checkin"]["port"], port, "{c}");
    assert_eq!(c["mode"], "mutual", "{c}");
    let (cert, key) = (phone.join("cert.pem"), phone.join("key.pem"));
    let with_cert = ["--cert", &s(&cert), "--key", &s(&key)];
    let r = checkin_curl(&srv, &proxy, &with_cert);
    assert_eq!(r.status, 200, "{r:?}\n{}", nginx.log());

    // A client forging the header (and other forms) without a certificate: nginx replaces
    // X-SSL-Client-Cert (empty = absent) and drops the others, so the request has no identity.
    for (form, h) in forms(&cert) {
        let r = checkin_curl(&srv, &proxy, &["-H", &h]);
        assert_eq!(
            (r.status, r.error_code()),
            (401, "client_certificate_required"),
            "forged {form} through nginx: {r:?}"
        );
    }

    // Straight to Ferrocore from the trusted address but without the front end's certificate:
    // not a trusted front end, so the header is refused, not ignored.
    let direct = srv.device_url();
    for (form, h) in forms(&cert) {
        let r = checkin_curl(&srv, &direct, &["-H", &h]);
        assert_eq!(
            (r.status, r.error_code()),
            (403, "untrusted_forwarded_certificate"),
            "{form} straight to ferrocore: {r:?}"
        );
    }
    // With the front end's certificate, the accepted forms work; the others are refused.
    let fe = ["--cert", &s(&fe_pem), "--key", &s(&fe_key)];
    for (form, h) in forms(&cert) {
        let mut args = fe.to_vec();
        args.extend(["-H", h.as_str()]);
        let r = checkin_curl(&srv, &direct, &args);
        if form == "envoy" {
            assert_eq!(r.error_code(), "untrusted_forwarded_certificate", "{r:?}");
        } else {
            assert_eq!(r.status, 200, "{form} from the front end: {r:?}");
        }
    }
    // The front end's own certificate is never a device identity.
    let r = checkin_curl(&srv, &direct, &fe);
    assert_eq!(r.error_code(), "client_certificate_required", "{r:?}");
    // Nor can it be forwarded as one: it is re-verified and not issued by a trusted CA.
    let mut args = fe.to_vec();
    let h = format!("Client-Cert: :{}:", b64(&der_of(&fe_pem)));
    args.extend(["-H", h.as_str()]);
    let r = checkin_curl(&srv, &direct, &args);
    assert_eq!(
        (r.status, r.error_code()),
        (401, "certificate_unknown"),
        "{r:?}"
    );

    // A direct connection with the device's own TLS certificate still works.
    let r = checkin_curl(&srv, &direct, &with_cert);
    assert_eq!(r.status, 200, "direct: {r:?}");

    // Revoked: nginx (no CRL) still passes the certificate; Ferrocore refuses it.
    let serial = current_serial(&srv, &phone);
    srv.admin_ok(&["certificates", "revoke", &serial]);
    let r = checkin_curl(&srv, &proxy, &with_cert);
    assert_eq!(
        (r.status, r.error_code()),
        (403, "certificate_revoked"),
        "revoked through nginx: {r:?}"
    );
    let out = srv.checkin(&phone);
    assert_ne!(out.code, 0, "agent check-in after revocation: {out:?}");
    drop(nginx);
}

#[test]
fn haproxy_in_front_of_the_device_listener() {
    let work = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let port_s = port.to_string();
    let srv = Server::start_with_env(&[
        ("FERROCORE_FRONT_ENDS_TRUSTED", "127.0.0.1"),
        ("FERROCORE_SERVER_PUBLIC_DEVICE_PORT", &port_s),
    ]);
    srv.add_user("alice");
    srv.admin_ok(&["settings", "mutual-auth", "enable"]);

    let tls = srv.data_dir.join("tls");
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(tls.join("server.pem")).expect("server.pem"),
        std::fs::read_to_string(tls.join("server.key")).expect("server.key")
    );
    std::fs::write(work.path().join("server-with-key.pem"), bundle).expect("bundle");
    let conf = render(
        "haproxy.cfg",
        &[
            ("RUN_DIR", s(work.path())),
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("DATA_DIR", s(&srv.data_dir)),
            ("UPSTREAM", format!("127.0.0.1:{}", srv.ports.device)),
            ("UPSTREAM_NAME", "localhost".into()),
        ],
    );
    let conf_path = work.path().join("haproxy.cfg");
    std::fs::write(&conf_path, conf).expect("write haproxy.cfg");
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(&conf_path);
    let haproxy = Proxy::start(cmd, port, work.path().join("haproxy.log"));
    let proxy = format!("https://127.0.0.1:{port}");

    let phone = srv.path("phone");
    let reg = register_via(&srv, &proxy, &phone);
    assert_eq!(reg["mode"], "mutual", "{reg}");
    let c = srv.checkin_ok(&phone);
    assert_eq!(c["checkin"]["port"], port, "{c}");
    let (cert, key) = (phone.join("cert.pem"), phone.join("key.pem"));
    let with_cert = ["--cert", &s(&cert), "--key", &s(&key)];
    let r = checkin_curl(&srv, &proxy, &with_cert);
    assert_eq!(r.status, 200, "{r:?}\n{}", haproxy.log());

    // Forged headers through haproxy are deleted: no identity.
    for (form, h) in forms(&cert) {
        let r = checkin_curl(&srv, &proxy, &["-H", &h]);
        assert_eq!(
            (r.status, r.error_code()),
            (401, "client_certificate_required"),
            "forged {form} through haproxy: {r:?}"
        );
    }

    // From the trusted address (the address alone decides here), every form is accepted
    // and re-verified; malformed values and ambiguity are refused.
    let direct = srv.device_url();
    for (form, h) in forms(&cert) {
        let r = checkin_curl(&srv, &direct, &["-H", &h]);
        assert_eq!(r.status, 200, "{form} from a trusted address: {r:?}");
    }
    // Empty headers count as absent.
    let r = checkin_curl(
        &srv,
        &direct,
        &["-H", "X-SSL-Client-Cert;", "-H", "Client-Cert;"],
    );
    assert_eq!(r.error_code(), "client_certificate_required", "{r:?}");
    for bad in [
        "Client-Cert: AAAA",
        "Client-Cert: :***:",
        "X-SSL-Client-Cert: -----BEGIN%20CERTIFICATE-----%0Azz",
        "X-SSL-Client-Cert: bm90IGEgY2VydA==",
        "X-Forwarded-Client-Cert: By=x;Hash=00",
    ] {
        let r = checkin_curl(&srv, &direct, &["-H", bad]);
        assert_eq!(
            (r.status, r.error_code()),
            (400, "malformed_forwarded_certificate"),
            "{bad}: {r:?}"
        );
    }
    let f = forms(&cert);
    let r = checkin_curl(&srv, &direct, &["-H", &f[0].1, "-H", &f[3].1]);
    assert_eq!(
        (r.status, r.error_code()),
        (400, "ambiguous_client_certificate"),
        "two forms: {r:?}"
    );
    // Both a TLS client certificate and a forwarded one: refused.
    let mut args = with_cert.to_vec();
    args.extend(["-H", f[0].1.as_str()]);
    let r = checkin_curl(&srv, &direct, &args);
    assert_eq!(
        (r.status, r.error_code()),
        (400, "ambiguous_client_certificate"),
        "TLS cert and header: {r:?}"
    );
    // Registration refuses them too.
    let r = srv.curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-H",
        "Client-Cert: :AAAA",
        "--data-binary",
        "{}",
        &format!("{direct}/api/v1/register"),
    ]);
    assert_eq!(r.error_code(), "malformed_forwarded_certificate", "{r:?}");

    // Direct with the device's own certificate still works.
    let r = checkin_curl(&srv, &direct, &with_cert);
    assert_eq!(r.status, 200, "direct: {r:?}");

    // Revoked: haproxy (no CRL) passes it; Ferrocore refuses it.
    let serial = current_serial(&srv, &phone);
    srv.admin_ok(&["certificates", "revoke", &serial]);
    let r = checkin_curl(&srv, &proxy, &with_cert);
    assert_eq!(
        (r.status, r.error_code()),
        (403, "certificate_revoked"),
        "revoked through haproxy: {r:?}"
    );
    drop(haproxy);
}

#[test]
fn forwarded_certificates_from_untrusted_sources_are_refused() {
    // Only 127.0.0.2 is a front end; curl connects from 127.0.0.1.
    let srv = Server::start_with_env(&[("FERROCORE_FRONT_ENDS_TRUSTED", "127.0.0.2")]);
    srv.add_user("alice");
    srv.admin_ok(&["settings", "mutual-auth", "enable"]);
    let phone = srv.path("phone");
    srv.register_ok(&phone, "alice", "android", "agent", "10.1.0");
    let cert = phone.join("cert.pem");
    for (form, h) in forms(&cert) {
        let r = checkin_curl(&srv, &srv.device_url(), &["-H", &h]);
        assert_eq!(
            (r.status, r.error_code()),
            (403, "untrusted_forwarded_certificate"),
            "{form}: {r:?}"
        );
        // Refused on the sync-TLS listener as well (forwarding is a device-listener feature).
        let r = checkin_curl(&srv, &srv.sync_url(), &["-H", &h]);
        assert_eq!(r.error_code(), "untrusted_forwarded_certificate", "{r:?}");
    }
    // An empty header is no forwarded certificate; the agent's own TLS check-in works.
    let r = checkin_curl(&srv, &srv.device_url(), &["-H", "X-SSL-Client-Cert;"]);
    assert_eq!(r.error_code(), "client_certificate_required", "{r:?}");
    srv.checkin_ok(&phone);

    // Defaults deny: a server with no [front_ends] refuses them too.
    let plain = Server::start();
    let h = &forms(&cert)[0].1;
    let r = checkin_curl(&plain, &plain.device_url(), &["-H", h]);
    assert_eq!(r.error_code(), "untrusted_forwarded_certificate", "{r:?}");
}

#[test]
fn invalid_front_end_configuration_names_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (k, v, key) in [
        (
            "FERROCORE_FRONT_ENDS_TRUSTED",
            "10.0.0.0/99",
            "front_ends.trusted",
        ),
        (
            "FERROCORE_FRONT_ENDS_HEADERS",
            "x-ssl-cert",
            "front_ends.headers",
        ),
        (
            "FERROCORE_SERVER_PUBLIC_DEVICE_PORT",
            "0",
            "server.public_device_port",
        ),
    ] {
        let out = serve_expecting_failure(
            &dir.path().join("data"),
            &[],
            &[(k.to_string(), v.to_string())],
        );
        assert!(out.stderr.contains(key), "{k}={v}: {out:?}");
    }
}
