//! Black-box: changing the enrollment configuration used for mutual authentication. A dry run
//! lists the devices that will have to register again; applying it refuses their check-ins
//! with "register again" while legacy devices carry on; new identities come from the new CA,
//! which is trusted for mutual TLS at once and after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::Server;
use std::process::Command;

fn issuer_of(cert: &std::path::Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-issuer", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn changing_the_enrollment_configuration() {
    let mut s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let legacy = tmp.path().join("legacy");
    let old = tmp.path().join("old");
    let new = tmp.path().join("new");
    s.add_user("alice");
    s.register_ok(&legacy, "alice", "android", "agent", "10.1.0");
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let old_id = s.register_ok(&old, "alice", "android", "agent", "10.1.0")["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(issuer_of(&old.join("cert.pem")).contains("Ferrocore Local CA"));

    let created = s.admin_ok(&["enrollment", "add", "second"]);
    assert_eq!(created["name"], "second", "{created}");
    assert_eq!(created["selected"], false);
    let again = s.admin(&["enrollment", "add", "second"]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("conflict"), "{}", again.stderr);
    let bad = s.admin(&["enrollment", "select", "nope", "--confirm"]);
    assert!(bad.stderr.contains("not_found"), "{}", bad.stderr);

    // Dry run: lists the mutual device, changes nothing.
    let dry = s.admin_ok(&["enrollment", "select", "second"]);
    assert_eq!(dry["applied"], false, "{dry}");
    assert_eq!(dry["devices_to_reregister_total"], 1, "{dry}");
    assert_eq!(
        dry["devices_to_reregister"][0]["device_id"],
        old_id.as_str()
    );
    s.checkin_ok(&old);
    assert_eq!(
        s.admin_ok(&["settings", "show"])["mutual_auth_enrollment_config"],
        "local"
    );

    // Applied: the mutual device must register again; the legacy one carries on.
    let applied = s.admin_ok(&["enrollment", "select", "second", "--confirm"]);
    assert_eq!(applied["applied"], true, "{applied}");
    let out = s.checkin(&old);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("reregistration_required"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("register again"), "{}", out.stderr);
    s.checkin_ok(&legacy);
    assert_eq!(s.device(&old_id)["reregister_required"], true);

    // New identities come from the new CA and work over mutual TLS without a restart.
    s.register_ok(&new, "alice", "android", "agent", "10.1.0");
    assert!(issuer_of(&new.join("cert.pem")).contains("Ferrocore second CA"));
    s.checkin_ok(&new);
    // Registering again brings the old device back.
    s.register_ok(&old, "alice", "android", "agent", "10.1.0");
    s.checkin_ok(&old);
    assert!(issuer_of(&old.join("cert.pem")).contains("second"));

    // The new CA publishes its own CRL, which verifies against it.
    let crl = s.curl(&[&format!("{}/pki/second/crl.pem", s.device_url())]);
    assert_eq!(crl.status, 200, "{crl:?}");
    let crl_path = tmp.path().join("second-crl.pem");
    std::fs::write(&crl_path, &crl.body).unwrap();
    let ca_path = s.data_dir.join("ca").join("second").join("ca.pem");
    let v = Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(&ca_path)
        .arg("-CRLfile")
        .arg(&crl_path)
        .arg(new.join("cert.pem"))
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // Everything survives a restart.
    s.restart();
    s.checkin_ok(&new);
    s.checkin_ok(&old);
    let list = s.admin_ok(&["enrollment", "list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["local", "second"]);
}
