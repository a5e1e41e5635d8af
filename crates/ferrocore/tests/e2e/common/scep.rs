//! SCEP helpers shared by the SCEP test modules: the `/scep` URL,
//! one-time challenges from the admin CLI, and micromdm's `scepclient` run against the
//! server's RA.
#![allow(dead_code)]

use super::{Out, Server, clean_command, openssl_ok, run};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

pub fn scep_url(server: &Server) -> String {
    format!("{}/scep", server.device_url())
}

/// One-time challenge for `user`'s next device on `platform` (`scep-challenge create`).
pub fn challenge(server: &Server, user: &str, platform: &str) -> String {
    let v = server.admin_ok(&[
        "scep-challenge",
        "create",
        "--user",
        user,
        "--platform",
        platform,
    ]);
    assert!(v["expires_at"].as_i64().is_some(), "{v}");
    v["challenge"].as_str().expect("challenge").to_owned()
}

/// SHA-256 of the RA certificate: scepclient encrypts to every GetCACert certificate
/// unless told which one (the default CA is ECDSA, so it must pick the RSA RA).
pub fn ra_fingerprint(server: &Server) -> String {
    let ra = server.data_dir.join("scep").join("ra.pem");
    let der = server.path("ra.der");
    openssl_ok(
        &server.path(""),
        &[
            "x509",
            "-in",
            ra.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ],
    );
    let mut cmd = Command::new("sha256sum");
    cmd.arg(&der);
    let out = run(cmd, None);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout
        .split_whitespace()
        .next()
        .expect("hash")
        .to_owned()
}

/// micromdm's scepclient against `/scep`: PKCSReq with `challenge`, or RenewalReq signed with
/// the certificate already in `dir` (key and certificate live there).
pub fn scepclient(server: &Server, dir: &Path, challenge: Option<&str>) -> Out {
    scepclient_at(server, &scep_url(server), dir, challenge)
}

/// [`scepclient`] against another URL (e.g. through a capturing proxy).
pub fn scepclient_at(server: &Server, url: &str, dir: &Path, challenge: Option<&str>) -> Out {
    std::fs::create_dir_all(dir).unwrap();
    let mut cmd = clean_command("scepclient");
    cmd.env("SSL_CERT_FILE", server.ca_pem())
        .arg("-server-url")
        .arg(url)
        .arg("-private-key")
        .arg(dir.join("key.pem"))
        .arg("-certificate")
        .arg(dir.join("cert.pem"))
        .args(["-cn", "scep-device", "-ca-fingerprint"])
        .arg(ra_fingerprint(server));
    if let Some(c) = challenge {
        cmd.args(["-challenge", c]);
    }
    run(cmd, None)
}

/// The device whose current certificate has `serial`.
pub fn device_by_serial(server: &Server, serial: &str) -> Value {
    let list = server.devices();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["current_cert_serial"] == serial)
        .cloned()
        .unwrap_or_else(|| panic!("no device with certificate {serial}: {list}"))
}
