//! SCEP RenewalReq with a device's real identity, black-box:
//!
//! - An agent-registered ECDSA P-256 identity renews over `/scep`: the new key and CSR come
//!   from `openssl req`, curl carries the message, `openssl cms` verifies the CertRep and opens
//!   its envelope (ECDH key agreement to the EC signer certificate), curl checks in over mutual
//!   TLS with the new certificate, and the admin API shows the new serial and the old one
//!   superseded. Only the RenewalReq message (CSR envelope + SignedData) is built by
//!   Ferrocore's own client codec: no installed SCEP client signs with an EC key (see
//!   `certmonger_renews_rsa_but_refuses_ecdsa`).
//! - certmonger renews an RSA identity it enrolled (when the CA announces `Renewal`, its
//!   scep-submit sends a PKCSReq signed with the current certificate — the pre-RFC 8894 form —
//!   with the enrollment's, now used, challenge), and refuses by itself to use an ECDSA
//!   identity for SCEP.
//! - With libfaketime moving the server's clock: renewal in the 30-day grace after expiry
//!   (ECDSA agent and micromdm's `scepclient` for a Windows MDM device), refusal for a client
//!   kind that does not renew (iOS MDM: badRequest), and past the grace badCertId with the
//!   device retired.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::certmonger;
use crate::common::scep;

use scep::{challenge, device_by_serial, scep_url, scepclient, scepclient_at};

use common::{Server, openssl_ok, run};
use ferrocore_pki::cms::{ContentCipher, EcKey, SignerKey};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn pem_der(path: &Path) -> Vec<u8> {
    use base64::Engine;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap()
}

fn serial_of(path: &Path) -> String {
    common::x509::serial_of(path.parent().unwrap(), path.to_str().unwrap())
}

/// A new P-256 key and a PKCS#10 request for it, made by `openssl req`.
fn openssl_csr(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    std::fs::create_dir_all(dir).unwrap();
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    common::x509::p256_csr(
        dir,
        key.to_str().unwrap(),
        csr.to_str().unwrap(),
        "/CN=renewing-device",
        &["-outform", "DER"],
    );
    (key, std::fs::read(csr).unwrap())
}

/// What the server answered a PKIOperation with, as `openssl cms` reads it.
#[derive(Debug)]
struct Reply {
    http: u16,
    /// pkiStatus (0 SUCCESS, 2 FAILURE, 3 PENDING) and failInfo from the signed attributes.
    status: String,
    fail_info: Option<String>,
    /// SUCCESS: the issued certificate (PEM file, leaf first).
    cert: Option<PathBuf>,
}

/// The value of the signed attribute `oid` in `openssl cms -cmsout -print` output.
fn printed_attr(text: &str, oid: &str) -> Option<String> {
    let at = text.find(&format!("({oid})"))?;
    let rest = &text[at..];
    let v = rest.find("PRINTABLESTRING:")?;
    Some(
        rest[v + "PRINTABLESTRING:".len()..]
            .lines()
            .next()?
            .trim()
            .to_owned(),
    )
}

/// A RenewalReq signed with the identity in `state` (agent files `key.pem` + `cert.pem`),
/// for `csr`, enveloped to the server's RA; POSTed with curl; the CertRep verified against
/// the server's CA and opened with the identity's key by `openssl cms`.
fn renew_over_scep(server: &Server, state: &Path, csr: &[u8], work: &Path) -> Reply {
    std::fs::create_dir_all(work).unwrap();
    let key = EcKey::from_pkcs8_der(&pem_der(&state.join("key.pem"))).expect("an EC identity");
    let cert = pem_der(&state.join("cert.pem"));
    let ra = pem_der(&server.data_dir.join("scep").join("ra.pem"));
    let tx = format!("renew-{}", serial_of(&state.join("cert.pem")));
    let (msg, _nonce) = ferrocore_pki::scep::build_renewal_req(
        csr,
        &tx,
        &cert,
        SignerKey::Ec(&key),
        &ra,
        ContentCipher::Aes256Cbc,
    )
    .unwrap();
    std::fs::write(work.join("req.der"), &msg).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "30", "--cacert"])
        .arg(server.ca_pem())
        .args([
            "-H",
            "Content-Type: application/x-pki-message",
            "--data-binary",
        ])
        .arg(format!("@{}", work.join("req.der").display()))
        .arg("-o")
        .arg(work.join("rep.der"))
        .args(["-w", "%{http_code}"])
        .arg(format!("{}?operation=PKIOperation", scep_url(server)));
    let out = run(cmd, None);
    assert_eq!(out.code, 0, "curl: {out:?}");
    let http: u16 = out.stdout.trim().parse().unwrap();
    if http != 200 {
        return Reply {
            http,
            status: String::new(),
            fail_info: None,
            cert: None,
        };
    }
    // The CertRep's signature, by the RA the local CA issued.
    let ca = server.ca_pem();
    openssl_ok(
        work,
        &[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            "rep.der",
            "-CAfile",
            ca.to_str().unwrap(),
            "-purpose",
            "any",
            "-binary",
            "-out",
            "env.der",
        ],
    );
    let printed = openssl_ok(
        work,
        &[
            "cms", "-cmsout", "-print", "-inform", "DER", "-in", "rep.der",
        ],
    )
    .stdout;
    let status = printed_attr(&printed, "2.16.840.1.113733.1.9.3").expect("pkiStatus");
    let fail_info = printed_attr(&printed, "2.16.840.1.113733.1.9.4");
    let cert = (status == "0").then(|| {
        let state_key = state.join("key.pem");
        let state_cert = state.join("cert.pem");
        openssl_ok(
            work,
            &[
                "cms",
                "-decrypt",
                "-inform",
                "DER",
                "-in",
                "env.der",
                "-inkey",
                state_key.to_str().unwrap(),
                "-recip",
                state_cert.to_str().unwrap(),
                "-binary",
                "-out",
                "certs.p7",
            ],
        );
        openssl_ok(
            work,
            &[
                "pkcs7",
                "-inform",
                "DER",
                "-in",
                "certs.p7",
                "-print_certs",
                "-out",
                "issued.pem",
            ],
        );
        work.join("issued.pem")
    });
    Reply {
        http,
        status,
        fail_info,
        cert,
    }
}

fn checkin(server: &Server, cert: &Path, key: &Path) -> common::Http {
    let url = format!("{}/api/v1/checkin", server.device_url());
    server.curl(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "-X",
        "POST",
        &url,
    ])
}

fn cert_entry(server: &Server, device: &str, serial: &str) -> Value {
    let list = server.admin_ok(&["certificates", "list", "--device", device]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["serial"] == serial)
        .cloned()
        .unwrap_or_else(|| panic!("no certificate {serial} on {device}: {list}"))
}

#[test]
fn ecdsa_agent_identity_renews_over_scep_and_checks_in_with_the_new_certificate() {
    let server = Server::start();
    server.add_user("alice");
    server.admin_ok(&["settings", "mutual-auth", "enable"]);
    // 30-day certificates, default 60-day window: renewal is due at once.
    server.admin_ok(&["policies", "set", "default", "--cert-lifetime-days", "30"]);
    let state = server.path("agent");
    let reg = server.register_ok(&state, "alice", "windows", "agent", "10.1.0");
    let device = reg["device_id"].as_str().unwrap().to_owned();
    let text = openssl_ok(&state, &["x509", "-in", "cert.pem", "-noout", "-text"]).stdout;
    assert!(
        text.contains("id-ecPublicKey") && text.contains("P-256"),
        "registration issues ECDSA P-256 identities: {text}"
    );
    let old = serial_of(&state.join("cert.pem"));

    let work = server.path("renew1");
    let (new_key, csr) = openssl_csr(&work, "new");
    let r = renew_over_scep(&server, &state, &csr, &work);
    assert_eq!(
        (r.http, r.status.as_str()),
        (200, "0"),
        "{r:?}\n{}",
        server.log()
    );
    let issued = r.cert.unwrap();
    let ca = server.ca_pem();
    openssl_ok(
        &work,
        &[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            issued.to_str().unwrap(),
        ],
    );
    let new = serial_of(&issued);
    assert_ne!(new, old);

    // Recorded against the same device as a SCEP renewal of the old certificate.
    let d = server.device(&device);
    assert_eq!(d["current_cert_serial"], new.as_str(), "{d}");
    assert_eq!(d["renewal_count"], 1, "{d}");
    let rec = cert_entry(&server, &device, &new);
    assert_eq!(rec["issue_reason"], "scep_renewal", "{rec}");
    // The old one keeps working until the new one is used (lifecycle rule).
    assert_eq!(cert_entry(&server, &device, &old)["status"], "active");

    // Mutual-TLS check-in with the new certificate and key; the old one is then superseded.
    let c = checkin(&server, &issued, &new_key);
    assert_eq!(c.status, 200, "{c:?}\n{}", server.log());
    assert_eq!(c.json["device_id"], device.as_str());
    let old_rec = cert_entry(&server, &device, &old);
    assert_eq!(old_rec["status"], "revoked", "{old_rec}");
    assert_eq!(old_rec["revocation_reason"], "superseded", "{old_rec}");
    let c = checkin(&server, &state.join("cert.pem"), &state.join("key.pem"));
    assert_eq!(c.status, 403, "{c:?}");

    // A RenewalReq signed with the superseded certificate: FAILURE badCertId (4).
    let work2 = server.path("renew2");
    let (_, csr2) = openssl_csr(&work2, "again");
    let r = renew_over_scep(&server, &state, &csr2, &work2);
    assert_eq!(r.http, 200, "{r:?}");
    assert_eq!(r.status, "2", "{r:?}");
    assert_eq!(r.fail_info.as_deref(), Some("4"), "{r:?}");
    assert_eq!(server.device(&device)["current_cert_serial"], new.as_str());
}

#[test]
fn certmonger_renews_rsa_but_refuses_ecdsa() {
    let server = Server::start();
    server.add_user("bob");
    server.admin_ok(&["settings", "mutual-auth", "enable"]);
    server.admin_ok(&["policies", "set", "default", "--cert-lifetime-days", "30"]);
    let cm = certmonger::Certmonger::start(&server.path("certmonger"), &server.ca_pem());
    cm.add_scep_ca("FERRO", &scep_url(&server), Some(&server.ca_pem()));

    // RSA: enrolled with a one-time challenge, then renewed: certmonger resends a PKCSReq
    // signed with its certificate (and the used challenge), which Ferrocore treats as renewal.
    let c = challenge(&server, "bob", "macos");
    let (_, crt) = cm.request("FERRO", "rsa", &c);
    let st = cm.wait_status("rsa", &["MONITORING", "CA_REJECTED", "CA_UNREACHABLE"]);
    assert!(st.contains("status: MONITORING"), "{st}\n{}", server.log());
    let first = serial_of(&crt);
    cm.resubmit_and_wait("rsa", &crt);
    let second = serial_of(&crt);
    assert_ne!(second, first, "certmonger renewed\n{}", server.log());
    let list = server.admin_ok(&["certificates", "list"]);
    let rec = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["serial"] == second.as_str())
        .cloned()
        .unwrap();
    assert_eq!(rec["issue_reason"], "scep_renewal", "{rec}");

    // ECDSA: an agent-registered identity tracked by certmonger. certmonger itself refuses
    // to build SCEP messages with a non-RSA key ("Keys aren't RSA. They won't work with
    // SCEP."): nothing reaches the server and the certificate is unchanged.
    let state = server.path("agent");
    server.register_ok(&state, "bob", "windows", "agent", "10.1.0");
    let ec_key = state.join("key.pem");
    let ec_crt = state.join("cert.pem");
    let before = std::fs::read(&ec_crt).unwrap();
    let pki_ops = server.log().matches("SCEP certificate issued").count();
    let track = cm.getcert(&[
        "start-tracking",
        "-c",
        "FERRO",
        "-k",
        ec_key.to_str().unwrap(),
        "-f",
        ec_crt.to_str().unwrap(),
        "-I",
        "ec",
    ]);
    assert_eq!(track.code, 0, "{track:?}");
    let resub = cm.getcert(&["resubmit", "-i", "ec"]);
    assert_eq!(resub.code, 0, "{resub:?}");
    let st = cm.wait_status(
        "ec",
        &[
            "NEED_SCEP_RSA_CLIENT_KEY",
            "CA_REJECTED",
            "CA_UNREACHABLE",
            "MONITORING",
        ],
    );
    let log = cm.log();
    assert!(
        log.contains("Keys aren't RSA"),
        "certmonger's reason: {st}\n{log}"
    );
    assert_eq!(std::fs::read(&ec_crt).unwrap(), before);
    assert_eq!(
        server.log().matches("SCEP certificate issued").count(),
        pki_ops
    );
}

#[test]
fn scep_renewal_in_the_grace_and_refused_after_it_with_faketime() {
    let dir = tempfile::tempdir().unwrap();
    // 30-day certificates, 10-day window: expiry at day 30, grace until day 60.
    let (clock, server) = common::short_lifetime_server(dir.path(), "carol");
    // Day 0: an ECDSA agent (renews), a second one that stays silent, a Windows MDM device and
    // an iOS MDM device enrolled by scepclient.
    let agent = dir.path().join("agent");
    let silent = dir.path().join("silent");
    let agent_id = server.register_ok(&agent, "carol", "windows", "agent", "10.1.0")["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let silent_id = server.register_ok(&silent, "carol", "windows", "agent", "10.1.0")["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let win = dir.path().join("win");
    let ios = dir.path().join("ios");
    for (d, platform) in [(&win, "windows"), (&ios, "ios")] {
        let c = challenge(&server, "carol", platform);
        let out = scepclient(&server, d, Some(&c));
        assert_eq!(out.code, 0, "{platform}: {out:?}\n{}", server.log());
    }
    let ios_id = device_by_serial(&server, &serial_of(&ios.join("cert.pem")))["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent_old = serial_of(&agent.join("cert.pem"));

    // Day 35: every day-0 certificate expired 5 days ago, inside the grace.
    clock.set_days(35);
    // The expired certificate no longer checks in (only the renewal route is open) ...
    let c = checkin(&server, &agent.join("cert.pem"), &agent.join("key.pem"));
    assert_eq!(c.status, 401, "{c:?}");
    assert_eq!(c.error_code(), "certificate_expired");
    // ... and renews over SCEP: RenewalReq signed with the expired ECDSA certificate.
    let work = dir.path().join("grace");
    let (new_key, csr) = openssl_csr(&work, "grace");
    let r = renew_over_scep(&server, &agent, &csr, &work);
    assert_eq!(
        (r.http, r.status.as_str()),
        (200, "0"),
        "{r:?}\n{}",
        server.log()
    );
    let issued = r.cert.unwrap();
    let new = serial_of(&issued);
    assert_ne!(new, agent_old);
    assert_eq!(
        server.device(&agent_id)["current_cert_serial"],
        new.as_str()
    );
    let c = checkin(&server, &issued, &new_key);
    assert_eq!(c.status, 200, "{c:?}\n{}", server.log());

    // micromdm's scepclient renews the Windows MDM device in the grace too.
    let win_old = serial_of(&win.join("cert.pem"));
    let out = scepclient(&server, &win, None);
    assert_eq!(out.code, 0, "{out:?}\n{}", server.log());
    assert_ne!(serial_of(&win.join("cert.pem")), win_old);

    // The iOS MDM device: its client kind does not renew after expiry (lifecycle rules),
    // so the grace does not apply: FAILURE badRequest, nothing issued, device still active.
    let ios_old = std::fs::read(ios.join("cert.pem")).unwrap();
    let out = scepclient(&server, &ios, None);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("failInfo: badRequest"), "{out:?}");
    assert_eq!(std::fs::read(ios.join("cert.pem")).unwrap(), ios_old);
    assert_eq!(server.device(&ios_id)["status"], "active");

    // Day 61: the silent agent's certificate expired 31 days ago: past the grace. Its
    // RenewalReq is answered badCertId and the device is retired on that contact.
    clock.set_days(61);
    let work = dir.path().join("late");
    let (_, csr) = openssl_csr(&work, "late");
    let r = renew_over_scep(&server, &silent, &csr, &work);
    assert_eq!(r.http, 200, "{r:?}");
    assert_eq!(
        (r.status.as_str(), r.fail_info.as_deref()),
        ("2", Some("4")),
        "{r:?}\n{}",
        server.log()
    );
    assert_eq!(server.device(&silent_id)["status"], "retired");
    // The renewed agent is unaffected.
    assert_eq!(server.device(&agent_id)["status"], "active");
}

/// `fuzz/seeds/capture_scep.py` in front of the server's `/scep`: returns the proxy and its
/// plain-HTTP SCEP URL; messages land in `out` as `<prefix>-<n>.der`.
fn capture_proxy(server: &Server, out: &Path, prefix: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/capture_scep.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg("--upstream")
        .arg(scep_url(server))
        .arg("--ca")
        .arg(server.ca_pem())
        .arg("--out")
        .arg(out)
        .arg("--prefix")
        .arg(prefix)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("proxy port");
    (child, format!("http://127.0.0.1:{port}/scep"))
}

/// Regenerates `fuzz/seeds/scep_message/` from real clients: micromdm's scepclient
/// (PKCSReq, RenewalReq) and certmonger (PKCSReq, and its renewal: a PKCSReq signed with the
/// current certificate), plus an ECDSA-signed RenewalReq from Ferrocore's client codec, and
/// the server's throw-away RA into `fuzz/fixtures/` for the target to decrypt with. Run by hand:
/// `cargo test -p ferrocore --test e2e -- --ignored scep_renew::capture_scep_fuzz_seeds`.
#[test]
#[ignore = "rewrites fuzz/seeds/scep_message; run by hand"]
fn capture_scep_fuzz_seeds() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/scep_message");
    std::fs::create_dir_all(&out).unwrap();
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "der") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let server = Server::start();
    // The fuzz target decrypts with this server's RA: a throw-away key, kept as DER.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fixtures");
    std::fs::create_dir_all(&fixtures).unwrap();
    let ra_dir = server.data_dir.join("scep");
    std::fs::write(
        fixtures.join("scep_ra.der"),
        pem_der(&ra_dir.join("ra.pem")),
    )
    .unwrap();
    std::fs::write(
        fixtures.join("scep_ra.pk8"),
        pem_der(&ra_dir.join("ra.key")),
    )
    .unwrap();
    server.add_user("seed");
    server.admin_ok(&["settings", "mutual-auth", "enable"]);
    server.admin_ok(&["policies", "set", "default", "--cert-lifetime-days", "30"]);

    let (mut proxy, url) = capture_proxy(&server, &out, "scepclient");
    let dev = server.path("scepclient");
    let c = challenge(&server, "seed", "windows");
    let r = scepclient_at(&server, &url, &dev, Some(&c));
    assert_eq!(r.code, 0, "{r:?}");
    let r = scepclient_at(&server, &url, &dev, None);
    assert_eq!(r.code, 0, "{r:?}");
    common::terminate(&mut proxy);

    let (mut proxy, url) = capture_proxy(&server, &out, "certmonger");
    let cm = certmonger::Certmonger::start(&server.path("certmonger"), &server.ca_pem());
    cm.add_scep_ca("SEED", &url, None);
    let c = challenge(&server, "seed", "macos");
    let (_, crt) = cm.request("SEED", "seed", &c);
    let st = cm.wait_status("seed", &["MONITORING", "CA_REJECTED", "CA_UNREACHABLE"]);
    assert!(st.contains("status: MONITORING"), "{st}\n{}", server.log());
    let first = serial_of(&crt);
    cm.resubmit_and_wait("seed", &crt);
    assert_ne!(serial_of(&crt), first, "certmonger renewal");
    drop(cm);
    common::terminate(&mut proxy);

    let state = server.path("agent");
    server.register_ok(&state, "seed", "windows", "agent", "10.1.0");
    let work = server.path("ecdsa");
    let (_, csr) = openssl_csr(&work, "new");
    let r = renew_over_scep(&server, &state, &csr, &work);
    assert_eq!(r.status, "0", "{r:?}");
    std::fs::copy(
        work.join("req.der"),
        out.join("ferrocore-ecdsa-renewal.der"),
    )
    .unwrap();

    let n = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "der")
        })
        .count();
    assert!(n >= 5, "{n} seeds captured");
}
