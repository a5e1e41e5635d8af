//! Black-box tests of the portal HTTPS certificate: upload (PEM and PKCS#12, made with the
//! openssl CLI from a test root + intermediate + leaf), validation errors that leave the
//! served certificate in place, the swap on every listener without dropping a keep-alive
//! connection, and rollback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use crate::common::x509;
use common::*;
use std::path::Path;
use std::process::Command;

/// Writes a test PKI into `dir` with the openssl CLI:
/// root (self-signed CA) -> intermediate CA -> leaf `NAME` for each of `leaves`
/// (`(name, san)`), plus `chain-NAME.pem` = leaf + intermediate + root.
fn make_pki(dir: &Path, leaves: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).expect("pki dir");
    std::fs::write(
        dir.join("ca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .expect("ca.ext");
    x509::p256_ca(dir, "root.key", "root.pem", "/CN=Portal Test Root", 30);
    x509::p256_csr(
        dir,
        "int.key",
        "int.csr",
        "/CN=Portal Test Intermediate",
        &[],
    );
    x509::sign_csr(
        dir,
        "int.csr",
        ("root.pem", "root.key"),
        "int.pem",
        30,
        "ca.ext",
        None,
    );
    for (name, san) in leaves {
        std::fs::write(
            dir.join(format!("{name}.ext")),
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName={san}\n"
            ),
        )
        .expect("leaf ext");
        let csr = format!("{name}.csr");
        x509::p256_csr(
            dir,
            &format!("{name}.key"),
            &csr,
            &format!("/CN={name}.portal.test"),
            &[],
        );
        x509::sign_csr(
            dir,
            &csr,
            ("int.pem", "int.key"),
            &format!("{name}.pem"),
            20,
            &format!("{name}.ext"),
            None,
        );
        let chain = [
            std::fs::read_to_string(dir.join(format!("{name}.pem"))).expect("leaf"),
            std::fs::read_to_string(dir.join("int.pem")).expect("int"),
            std::fs::read_to_string(dir.join("root.pem")).expect("root"),
        ]
        .concat();
        std::fs::write(dir.join(format!("chain-{name}.pem")), chain).expect("chain");
    }
}

/// Serial (lowercase hex) and subject of the leaf certificate a listener serves now, as a
/// fresh `openssl s_client -showcerts` connection sees it.
fn served_leaf(port: u16) -> (String, String) {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-servername",
        "localhost",
        "-showcerts",
    ]);
    let out = run(cmd, Some(b""));
    let pem = out
        .stdout
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END CERTIFICATE-----").next())
        .unwrap_or_else(|| panic!("no certificate from port {port}: {out:?}"));
    let pem = format!("-----BEGIN CERTIFICATE-----{pem}-----END CERTIFICATE-----\n");
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
    let cert = p.parse_x509().expect("x509");
    (
        cert.raw_serial()
            .iter()
            .skip_while(|b| **b == 0)
            .map(|b| format!("{b:02x}"))
            .collect(),
        cert.subject().to_string(),
    )
}

fn file_serial(path: &Path) -> String {
    let out = openssl_ok(
        path.parent().expect("parent"),
        &[
            "x509",
            "-noout",
            "-serial",
            "-in",
            path.to_str().expect("utf-8"),
        ],
    );
    let hex = out
        .stdout
        .trim()
        .trim_start_matches("serial=")
        .to_lowercase();
    hex.trim_start_matches("00").to_owned()
}

fn all_ports(s: &Server) -> [u16; 4] {
    [
        s.ports.device,
        s.ports.sync_tls,
        s.ports.admin,
        s.ports.storefront,
    ]
}

/// `ferrocore admin ... portal-cert upload --pkcs12 F --password-stdin` with `password`.
fn upload_p12(s: &Server, file: &Path, password: &str) -> Out {
    let mut cmd = clean_command(FERROCORE);
    cmd.arg("admin")
        .arg("--url")
        .arg(s.admin_url())
        .arg("--data-dir")
        .arg(&s.data_dir)
        .args(["portal-cert", "upload", "--pkcs12"])
        .arg(file)
        .arg("--password-stdin");
    run(cmd, Some(format!("{password}\n").as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_keeps_keepalive_connections_and_rolls_back() {
    let mut s = Server::start();
    let pki = s.path("pki");
    make_pki(
        &pki,
        &[
            ("good", "DNS:localhost,IP:127.0.0.1"),
            ("other", "DNS:localhost,IP:127.0.0.1"),
            ("narrow", "DNS:example.org"),
            ("wild", "DNS:*.portal.test,DNS:localhost,IP:127.0.0.1"),
        ],
    );
    let (auto_serial, _) = served_leaf(s.ports.admin);
    let shown = s.admin_ok(&["portal-cert", "show"]);
    assert_eq!(shown["source"], "auto-issued", "{shown}");
    assert_eq!(shown["rollback_available"], false, "{shown}");

    // A keep-alive connection to the device listener, opened before the swap.
    let ca = std::fs::read_to_string(s.ca_pem()).expect("ca");
    let client =
        ferrocore_client::TlsClient::new(&ca, None, ferrocore_client::ClientOptions::default())
            .expect("client");
    let mut conn = client
        .connect(&format!("https://localhost:{}", s.ports.device))
        .await
        .expect("connect");
    let r = conn
        .send(ferrocore_client::Method::GET, "/healthz", &[], Vec::new())
        .await
        .expect("first request");
    assert_eq!(r.status, 200);

    // Upload: every listener serves the new certificate to new connections.
    let chain = pki.join("chain-good.pem");
    let key = pki.join("good.key");
    let up = s.admin_ok(&[
        "portal-cert",
        "upload",
        "--chain",
        chain.to_str().expect("utf-8"),
        "--key",
        key.to_str().expect("utf-8"),
    ]);
    let good_serial = file_serial(&pki.join("good.pem"));
    assert_eq!(up["serial"], good_serial.as_str(), "{up}");
    assert_eq!(up["source"], "uploaded", "{up}");
    assert_eq!(up["chain_length"], 3, "{up}");
    assert_eq!(up["rollback_available"], true, "{up}");
    assert_eq!(up["publicly_trusted"], false, "{up}");
    for port in all_ports(&s) {
        let (serial, subject) = served_leaf(port);
        assert_eq!(serial, good_serial, "port {port}");
        assert!(subject.contains("good.portal.test"), "{subject}");
    }
    // The connection opened before the swap carries on.
    for _ in 0..3 {
        let r = conn
            .send(ferrocore_client::Method::GET, "/healthz", &[], Vec::new())
            .await
            .expect("request after the swap on the old keep-alive connection");
        assert_eq!(r.status, 200);
    }
    assert!(!conn.is_closed());
    assert_eq!(mode_of(&s.data_dir.join("tls/server.key")), 0o600);
    assert_eq!(mode_of(&s.data_dir.join("tls/previous.key")), 0o600);

    // Refused uploads say why and leave the served certificate alone.
    let refused = |args: &[&str], code: &str| {
        let out = s.admin(args);
        assert_eq!(out.code, 2, "{args:?} should be refused: {out:?}");
        assert!(
            out.stderr.contains(&format!("error: {code}:")),
            "{args:?}: expected {code}: {out:?}"
        );
        assert_eq!(served_leaf(s.ports.admin).0, good_serial);
    };
    let p = |n: &str| pki.join(n).to_str().expect("utf-8").to_owned();
    refused(
        &[
            "portal-cert",
            "upload",
            "--chain",
            &p("chain-good.pem"),
            "--key",
            &p("other.key"),
        ],
        "portal_cert_key_mismatch",
    );
    refused(
        &[
            "portal-cert",
            "upload",
            "--chain",
            &p("good.pem"),
            "--key",
            &p("good.key"),
        ],
        "portal_cert_chain_incomplete",
    );
    refused(
        &[
            "portal-cert",
            "upload",
            "--chain",
            &p("chain-narrow.pem"),
            "--key",
            &p("narrow.key"),
        ],
        "portal_cert_hostname_not_covered",
    );
    refused(
        &[
            "portal-cert",
            "upload",
            "--chain",
            &p("ca.ext"),
            "--key",
            &p("good.key"),
        ],
        "portal_cert_malformed",
    );
    refused(
        &[
            "portal-cert",
            "upload",
            "--chain",
            &p("chain-good.pem"),
            "--key",
            &p("good.pem"),
        ],
        "portal_cert_malformed",
    );

    // Mutual auth enabled: a private root is accepted with a warning.
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let up = s.admin_ok(&[
        "portal-cert",
        "upload",
        "--chain",
        &p("chain-wild.pem"),
        "--key",
        &p("wild.key"),
    ]);
    let warnings = up["warnings"].as_array().expect("warnings").clone();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap_or("").contains("publicly trusted")),
        "{up}"
    );
    let wild_serial = file_serial(&pki.join("wild.pem"));
    assert_eq!(served_leaf(s.ports.device).0, wild_serial);

    // Rollback: the previous certificate again; twice: forward again.
    let rb = s.admin_ok(&["portal-cert", "rollback"]);
    assert_eq!(rb["serial"], good_serial.as_str(), "{rb}");
    for port in all_ports(&s) {
        assert_eq!(served_leaf(port).0, good_serial, "port {port}");
    }
    // The keep-alive connection still works.
    let r = conn
        .send(ferrocore_client::Method::GET, "/healthz", &[], Vec::new())
        .await
        .expect("request after rollback");
    assert_eq!(r.status, 200);

    // A restart serves the stored certificate.
    drop(conn);
    s.restart();
    assert_eq!(served_leaf(s.ports.storefront).0, good_serial);
    let shown = s.admin_ok(&["portal-cert", "show"]);
    assert_eq!(shown["serial"], good_serial.as_str(), "{shown}");
    assert_ne!(auto_serial, good_serial);
}

#[test]
fn pkcs12_uploads_modern_and_legacy_and_refuses_a_wrong_password() {
    let s = Server::start();
    let pki = s.path("pki");
    make_pki(&pki, &[("p12", "DNS:localhost,IP:127.0.0.1")]);
    let ints = [
        std::fs::read_to_string(pki.join("int.pem")).expect("int"),
        std::fs::read_to_string(pki.join("root.pem")).expect("root"),
    ]
    .concat();
    std::fs::write(pki.join("ints.pem"), ints).expect("ints");
    let export = |out: &str, legacy: bool| {
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            "p12.key",
            "-in",
            "p12.pem",
            "-certfile",
            "ints.pem",
            "-passout",
            "pass:Sekret-1",
            "-out",
            out,
        ];
        if legacy {
            args.push("-legacy");
        }
        openssl(&pki, &args)
    };
    export("modern.p12", false);
    assert!(pki.join("modern.p12").exists());
    let serial = file_serial(&pki.join("p12.pem"));

    let wrong = upload_p12(&s, &pki.join("modern.p12"), "wrong-password");
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(
        wrong.stderr.contains("error: pkcs12_bad_password:"),
        "{wrong:?}"
    );

    let up = upload_p12(&s, &pki.join("modern.p12"), "Sekret-1");
    assert_eq!(up.code, 0, "{up:?}\n{}", s.log());
    assert_eq!(up.json["serial"], serial.as_str(), "{up:?}");
    assert_eq!(up.json["chain_length"], 3, "{up:?}");
    assert_eq!(served_leaf(s.ports.admin).0, serial);

    // -legacy (RC2/3DES + SHA-1 MAC) needs OpenSSL's legacy provider (Debian 12: in libssl3;
    // Debian 13: openssl-provider-legacy; `.ci/run` installs it).
    let legacy = export("legacy.p12", true);
    assert_eq!(
        legacy.code, 0,
        "openssl pkcs12 -export -legacy failed: OpenSSL's legacy provider is missing \
         (`openssl list -providers -provider legacy`): {legacy:?}"
    );
    s.admin_ok(&["portal-cert", "rollback"]);
    let up = upload_p12(&s, &pki.join("legacy.p12"), "Sekret-1");
    assert_eq!(up.code, 0, "legacy PKCS#12: {up:?}\n{}", s.log());
    assert_eq!(up.json["serial"], serial.as_str());
    let wrong = upload_p12(&s, &pki.join("legacy.p12"), "nope");
    assert!(
        wrong.stderr.contains("error: pkcs12_bad_password:"),
        "{wrong:?}"
    );
    // Not a PKCS#12 file at all.
    let bad = upload_p12(&s, &pki.join("p12.pem"), "Sekret-1");
    assert!(
        bad.stderr.contains("error: portal_cert_malformed:"),
        "{bad:?}"
    );
}
